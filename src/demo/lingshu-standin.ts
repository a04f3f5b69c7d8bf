import { randomUUID } from 'node:crypto';
import express, { type Response } from 'express';
import sharp from 'sharp';
import { listen } from '../http/listen.js';

/**
 * An OpenAI-compatible stand-in for Lingshu served by vLLM, for the demo and the tests (no GPU or weights here).
 * It checks each request as the real server would see it — images decodable, sides multiples of 28, at most four
 * images, the report prompt with `<image_N>: ` labels — and answers in Lingshu's "Findings: … Impression: …" form
 * (or JSON when structured output is asked for). Tests can script it to be slow, fail, answer garbage, go down, or
 * behave like vLLM's continuous batching: latency rising with the sequences in flight, and 429 above a limit.
 * Sampled requests (temperature above 0) are answered from their own script, so a test can plant claims that the
 * greedy draft makes and the samples do not; `n` is honoured as vLLM honours it, or ignored, as some servers do.
 */
export type Behaviour =
  | { kind: 'report'; text?: string; delayMs?: number }
  | { kind: 'garbage'; text?: string; delayMs?: number }
  | { kind: 'error'; status: number; delayMs?: number; retryAfterSeconds?: number };

export interface ReceivedImage {
  mime: string;
  width: number;
  height: number;
  bytes: Buffer;
}

export interface ReceivedRequest {
  at: number;
  model: string;
  temperature: unknown;
  maxTokens: unknown;
  structured: boolean;
  texts: string[];
  images: ReceivedImage[];
  /** Requests in flight when this one arrived, itself included. */
  inFlight: number;
  /** Choices asked for (`n`; 1 when absent). */
  n: number;
  rejected: string | undefined;
  answered: Behaviour['kind'] | 'overloaded' | 'outage';
  /** How the body came: its Content-Length header and Transfer-Encoding as sent, and the bytes read. */
  framing: { contentLength: string | undefined; transferEncoding: string | undefined; bytes: number };
}

/**
 * vLLM-like batching: each request takes baseMs (reading the images and prompt, once per request) + perRequestMs ×
 * (sequences being decoded: a request with `n` decodes n of them in the same batch); above maxConcurrent requests, 429.
 */
export interface BatchingModel {
  maxConcurrent: number;
  baseMs: number;
  perRequestMs: number;
  retryAfterSeconds?: number;
}

export const STANDIN_REPORT =
  'Findings: The cardiomediastinal silhouette is within normal limits. The lungs are clear without focal consolidation, ' +
  'pleural effusion or pneumothorax. No acute osseous abnormality.\nImpression: No acute cardiopulmonary process.';

const GARBAGE = 'I am unable to comment on this image.';
const MAX_PIXELS = 1280 * 28 * 28;
const MAX_IMAGES = 4;

export interface LingshuStandIn {
  url: string;
  model: string;
  requests: ReceivedRequest[];
  /** Behaviours for the next requests, in order; afterwards the default applies. */
  script(...behaviours: Behaviour[]): void;
  setDefault(behaviour: Behaviour): void;
  /** Continuous-batching behaviour (undefined: answer at once, without limit). */
  batching(model: BatchingModel | undefined): void;
  /** Until `untilMs` (epoch), answer every request with 503, or drop its connection. */
  outage(kind: '503' | 'drop', untilMs: number): void;
  /** Trickle each response body over `ms` (a slow stream). */
  slowBody(ms: number): void;
  /** Answer 400 to requests asking for structured output, as a server without it does. */
  rejectStructured(reject: boolean): void;
  /** Texts for the next sampled choices (requests with temperature above 0), one per choice, in order; afterwards the default report. */
  scriptSamples(...texts: string[]): void;
  /** `honour` (vLLM), `ignore` (answer one choice) or `reject` (answer 400) requests with `n` above 1. */
  nSupport(mode: 'honour' | 'ignore' | 'reject'): void;
  readonly maxInFlightSeen: number;
  /** Forgets the requests seen so far and the peak in flight. */
  reset(): void;
  stop(): Promise<void>;
}

function vllmError(status: number, message: string) {
  return { object: 'error', message, type: status === 404 ? 'NotFoundError' : 'BadRequestError', param: null, code: status };
}

async function checkRequest(body: unknown, model: string, record: ReceivedRequest): Promise<{ status: number; message: string } | undefined> {
  const b = body as { model?: unknown; messages?: unknown };
  if (b?.model !== model) return { status: 404, message: `The model \`${String(b?.model)}\` does not exist.` };
  if (!Array.isArray(b.messages) || b.messages.length === 0) return { status: 400, message: 'messages must be a non-empty list' };
  const user = b.messages[b.messages.length - 1] as { role?: unknown; content?: unknown };
  if (user?.role !== 'user' || !Array.isArray(user.content)) return { status: 400, message: 'the last message must be a user message with a list of content parts' };
  const parts = user.content as { type?: unknown; text?: unknown; image_url?: { url?: unknown } }[];
  let expectImage = 0;
  for (const part of parts) {
    if (part.type === 'text' && typeof part.text === 'string') {
      record.texts.push(part.text);
      const label = /^<image_(\d+)>: $/.exec(part.text);
      if (label) {
        if (Number(label[1]) !== record.images.length + 1) return { status: 400, message: `image label ${part.text.trim()} is out of order` };
        expectImage = 1;
      }
      continue;
    }
    if (part.type === 'image_url' && typeof part.image_url?.url === 'string') {
      if (!expectImage) return { status: 400, message: `image ${record.images.length + 1} is not preceded by its <image_N>: label` };
      expectImage = 0;
      const m = /^data:(image\/(?:png|jpeg));base64,(.+)$/s.exec(part.image_url.url);
      if (!m) return { status: 400, message: 'images must be data: URLs of PNG or JPEG' };
      const bytes = Buffer.from(m[2]!, 'base64');
      let meta;
      try {
        meta = await sharp(bytes).metadata();
      } catch {
        return { status: 400, message: `image ${record.images.length + 1} cannot be decoded` };
      }
      const width = meta.width ?? 0;
      const height = meta.height ?? 0;
      record.images.push({ mime: m[1]!, width, height, bytes });
      if (width % 28 !== 0 || height % 28 !== 0) return { status: 400, message: `image ${record.images.length} is ${width}x${height}; sides must be multiples of 28` };
      if (width * height > MAX_PIXELS) return { status: 400, message: `image ${record.images.length} has ${width * height} pixels, above ${MAX_PIXELS}` };
      continue;
    }
    return { status: 400, message: 'unknown content part' };
  }
  if (record.images.length === 0) return { status: 400, message: 'no image in the request' };
  if (record.images.length > MAX_IMAGES) return { status: 400, message: `At most ${MAX_IMAGES} image(s) may be provided in one request.` };
  const prompt = record.texts[record.texts.length - 1] ?? '';
  if (!prompt.includes('Please generate a report for the given images')) return { status: 400, message: 'the last text part is not the report prompt' };
  return undefined;
}

/** "Findings: … Impression: …" as the JSON object structured output asks for. */
function asJson(report: string): string {
  const m = /Findings:\s*([\s\S]*?)\s*Impression:\s*([\s\S]*)$/i.exec(report);
  return JSON.stringify({ findings: m?.[1] ?? report, impression: m?.[2] ?? '' });
}

export async function startLingshuStandIn(options: { model?: string; port?: number; host?: string } = {}): Promise<LingshuStandIn> {
  const model = options.model ?? 'lingshu-medical-mllm/Lingshu-7B';
  const requests: ReceivedRequest[] = [];
  const queue: Behaviour[] = [];
  let fallback: Behaviour = { kind: 'report' };
  let batching: BatchingModel | undefined;
  let outage: { kind: '503' | 'drop'; until: number } | undefined;
  let slowMs = 0;
  let refuseStructured = false;
  const sampleQueue: string[] = [];
  let nMode: 'honour' | 'ignore' | 'reject' = 'honour';
  let inFlight = 0;
  let sequences = 0;
  let maxInFlightSeen = 0;
  const app = express();
  const bodyBytes = new WeakMap<object, number>();
  app.use(express.json({ limit: '64mb', verify: (req, _res, buf) => bodyBytes.set(req, buf.length) }));

  app.get('/v1/models', (_req, res) => {
    res.json({ object: 'list', data: [{ id: model, object: 'model', created: 0, owned_by: 'raddraft-standin', root: model, max_model_len: 32768 }] });
  });

  const send = async (res: Response, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.status(status).set({ 'content-type': 'application/json', ...headers });
    if (slowMs <= 0) {
      res.send(text);
      return;
    }
    const pieces = 10;
    const size = Math.ceil(text.length / pieces);
    for (let i = 0; i < pieces; i++) {
      res.write(text.slice(i * size, (i + 1) * size));
      await new Promise((r) => setTimeout(r, slowMs / pieces));
    }
    res.end();
  };

  app.post('/v1/chat/completions', async (req, res) => {
    const body = req.body as { model?: unknown; temperature?: unknown; max_tokens?: unknown; structured_outputs?: unknown; guided_json?: unknown; n?: unknown };
    const asked = typeof body?.n === 'number' && Number.isInteger(body.n) && body.n >= 1 && body.n <= 16 ? body.n : 1;
    const n = nMode === 'honour' ? asked : 1;
    inFlight += 1;
    sequences += n;
    maxInFlightSeen = Math.max(maxInFlightSeen, inFlight);
    const record: ReceivedRequest = {
      at: Date.now(), model: String(body?.model), temperature: body?.temperature, maxTokens: body?.max_tokens,
      structured: body?.structured_outputs !== undefined || body?.guided_json !== undefined,
      texts: [], images: [], inFlight, n: asked, rejected: undefined, answered: 'report',
      framing: { contentLength: req.headers['content-length'], transferEncoding: req.headers['transfer-encoding'], bytes: bodyBytes.get(req) ?? 0 },
    };
    requests.push(record);
    try {
      if (outage && Date.now() < outage.until) {
        record.answered = 'outage';
        if (outage.kind === 'drop') {
          req.socket.destroy();
          return;
        }
        await send(res, 503, vllmError(503, 'the model server is restarting'));
        return;
      }
      if (batching && inFlight > batching.maxConcurrent) {
        record.answered = 'overloaded';
        await send(res, 429, vllmError(429, 'too many requests in flight'), { 'retry-after': String(batching.retryAfterSeconds ?? 1) });
        return;
      }
      const problem = await checkRequest(req.body, model, record);
      if (problem) {
        record.rejected = problem.message;
        record.answered = 'error';
        await send(res, problem.status, vllmError(problem.status, problem.message));
        return;
      }
      if (record.structured && refuseStructured) {
        record.rejected = 'structured output is not supported';
        record.answered = 'error';
        await send(res, 400, vllmError(400, 'structured_outputs is not supported by this server'));
        return;
      }
      if (asked > 1 && nMode === 'reject') {
        record.rejected = 'n above 1 is not supported';
        record.answered = 'error';
        await send(res, 400, vllmError(400, 'n > 1 is not supported by this server'));
        return;
      }
      const sampled = typeof body?.temperature === 'number' && body.temperature > 0;
      // Sampled requests never take the greedy script's behaviours: a test scripts the two apart.
      const behaviour = sampled ? { kind: 'report' as const } : queue.shift() ?? fallback;
      record.answered = behaviour.kind;
      const delay = (behaviour.delayMs ?? 0) + (batching ? batching.baseMs + batching.perRequestMs * sequences : 0);
      if (delay) await new Promise((r) => setTimeout(r, delay).unref());
      if (behaviour.kind === 'error') {
        await send(res, behaviour.status, vllmError(behaviour.status, `stand-in answering ${behaviour.status}`),
          behaviour.retryAfterSeconds !== undefined ? { 'retry-after': String(behaviour.retryAfterSeconds) } : {});
        return;
      }
      const report = behaviour.kind === 'garbage' ? behaviour.text ?? GARBAGE : behaviour.text ?? (fallback.kind === 'report' ? fallback.text : undefined) ?? STANDIN_REPORT;
      const texts = sampled ? Array.from({ length: n }, () => sampleQueue.shift() ?? report) : [report];
      await send(res, 200, {
        id: `chatcmpl-${randomUUID()}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model,
        choices: texts.map((text, index) => ({ index, message: { role: 'assistant', content: record.structured && behaviour.kind === 'report' ? asJson(text) : text }, finish_reason: 'stop' })),
        usage: { prompt_tokens: 1300 * record.images.length + 60, completion_tokens: 60 * n, total_tokens: 1300 * record.images.length + 60 + 60 * n },
      });
    } finally {
      inFlight -= 1;
      sequences -= n;
    }
  });

  const http = await listen(app, options.port ?? 0, options.host ?? '127.0.0.1');
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${http.port}/v1`,
    model,
    requests,
    script: (...behaviours) => void queue.push(...behaviours),
    setDefault: (b) => void (fallback = b),
    batching: (m) => void (batching = m),
    outage: (kind, until) => void (outage = { kind, until }),
    slowBody: (ms) => void (slowMs = ms),
    rejectStructured: (reject) => void (refuseStructured = reject),
    scriptSamples: (...texts) => void sampleQueue.push(...texts),
    nSupport: (mode) => void (nMode = mode),
    get maxInFlightSeen() {
      return maxInFlightSeen;
    },
    reset: () => {
      requests.length = 0;
      maxInFlightSeen = inFlight;
    },
    stop: () => http.close(),
  };
}
