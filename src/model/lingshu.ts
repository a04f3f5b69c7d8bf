import OpenAI from 'openai';
import type { Config } from '../config/load.js';
import type { Logger } from '../log.js';
import { Semaphore, backoffMs, sleep } from './concurrency.js';
import { parseReport, ReplyFormatError, type ParsedReport } from './parse.js';
import { buildReportMessages, PROMPT_VERSION } from './prompt.js';

/** A model call that did not give a usable draft. `retryable` says whether the job may try again later. */
export class ModelError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'ModelError';
  }
}

export interface Draft extends ParsedReport {
  text: string;
  model: string;
  promptVersion: string;
  requestId: string | undefined;
  finishReason: string | undefined;
}

export interface LingshuOptions {
  /** Attempts per draft within one job attempt (garbage replies, 429, 5xx, timeouts). */
  attempts?: number;
  retryBaseMs?: number;
}

/**
 * MedEvalKit's generation limit. Sent as `max_tokens`, which vLLM and every OpenAI-compatible server read;
 * `max_completion_tokens` is newer and not understood everywhere.
 */
const MAX_TOKENS: Record<string, number> = { max_tokens: 1024 };

/** What a chat completion reply must hold; a proxy need not send exactly what OpenAI sends, so each field is checked. */
function replyText(body: unknown): { text: string; finishReason: string | undefined; id: string | undefined } {
  const choices = (body as { choices?: unknown })?.choices;
  if (!Array.isArray(choices) || choices.length === 0) throw new ReplyFormatError('the model reply has no choices');
  const choice: { message?: { content?: unknown }; finish_reason?: unknown } = (choices as unknown[])[0] ?? {};
  const content = choice?.message?.content;
  if (typeof content !== 'string') throw new ReplyFormatError('the model reply has no text content');
  const id = (body as { id?: unknown }).id;
  return {
    text: content,
    finishReason: typeof choice.finish_reason === 'string' ? choice.finish_reason : undefined,
    id: typeof id === 'string' ? id : undefined,
  };
}

function describeApiError(err: unknown, endpoint: string): ModelError {
  if (err instanceof OpenAI.APIConnectionTimeoutError) return new ModelError(`Lingshu at ${endpoint} did not answer in time`, true);
  if (err instanceof OpenAI.APIConnectionError) return new ModelError(`cannot reach Lingshu at ${endpoint}`, true);
  if (err instanceof OpenAI.APIError) {
    const status: number | undefined = typeof err.status === 'number' ? err.status : undefined;
    if (status === 401 || status === 403) return new ModelError(`Lingshu at ${endpoint} refused the key (HTTP ${status}); check RADDRAFT_LINGSHU_API_KEY`, false);
    if (status === 404) return new ModelError(`Lingshu at ${endpoint} answered HTTP 404; check RADDRAFT_LINGSHU_URL (it should end in /v1) and RADDRAFT_LINGSHU_MODEL`, false);
    if (status === 400) return new ModelError(`Lingshu at ${endpoint} rejected the request (HTTP 400): ${err.message.slice(0, 300)}`, false);
    return new ModelError(`Lingshu at ${endpoint} answered HTTP ${status ?? 'error'}`, status === undefined || status === 408 || status === 429 || status >= 500);
  }
  return new ModelError(`Lingshu call failed: ${(err as Error).message}`, true);
}

export class LingshuClient {
  private readonly client: OpenAI;
  private readonly gate: Semaphore;
  private readonly attempts: number;
  private readonly retryBaseMs: number;

  constructor(
    private readonly config: Config['lingshu'],
    private readonly log: Logger,
    options: LingshuOptions = {},
  ) {
    this.client = new OpenAI({
      baseURL: config.url,
      apiKey: config.apiKey ?? 'not-needed',
      timeout: config.timeoutMs,
      maxRetries: 0,
    });
    this.gate = new Semaphore(config.maxInFlight);
    this.attempts = options.attempts ?? 3;
    this.retryBaseMs = options.retryBaseMs ?? 1000;
  }

  get inFlight(): number {
    return this.gate.inFlight;
  }

  /** Drafts findings and impression for the images (frontal first), retrying unusable replies a few times. */
  async draft(images: { png: Buffer }[], log: Logger = this.log, signal?: AbortSignal): Promise<Draft> {
    const messages = buildReportMessages(images);
    let last: ModelError | undefined;
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      if (attempt > 1) await sleep(backoffMs(attempt - 1, this.retryBaseMs, 30_000), signal);
      try {
        const body: unknown = await this.gate.run(() =>
          this.client.chat.completions.create(
            { model: this.config.model, messages, temperature: 0, ...MAX_TOKENS },
            signal ? { signal } : {},
          ),
        );
        const reply = replyText(body);
        const parsed = parseReport(reply.text);
        return {
          ...parsed,
          text: reply.text,
          model: this.config.model,
          promptVersion: PROMPT_VERSION,
          requestId: reply.id,
          finishReason: reply.finishReason,
        };
      } catch (err) {
        if (signal?.aborted) throw err;
        last = err instanceof ReplyFormatError
          ? new ModelError(err.message, true)
          : describeApiError(err, this.config.url);
        log.warn({ attempt, of: this.attempts, err: last.message }, 'model call gave no usable draft');
        if (!last.retryable) break;
      }
    }
    throw last ?? new ModelError('no model attempt was made', true);
  }

  /** The model names the endpoint serves (`GET /models`). */
  async listModels(): Promise<string[]> {
    try {
      const page = await this.client.models.list();
      return page.data.map((m) => m.id).filter((id): id is string => typeof id === 'string');
    } catch (err) {
      throw describeApiError(err, this.config.url);
    }
  }
}
