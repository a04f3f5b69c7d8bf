import OpenAI from 'openai';
import type { Fault } from '../util/faults.js';
import type { Draft, Drafter, DraftRequest } from './drafter.js';
import { Ajv } from 'ajv';
import type { Config } from '../config/load.js';
import type { Logger } from '../log.js';
import { AdaptiveLimiter } from './adaptive-limit.js';
import { CircuitBreaker } from './breaker.js';
import { backoffMs, sleep } from '../util/concurrency.js';
import { parseReport, ReplyFormatError, type ParsedReport } from '../report/sections.js';
import { buildReportMessages, PROMPT_VERSIONS } from './prompt.js';
import { BodyBuffers, chatRequestBody } from './chat-body.js';
import { buildProfileMessages, LINGSHU_PROFILE, profileSetting, type ChatMessage, type ModelProfile } from './profiles.js';
import { checkDraft } from './safety.js';
import { Sampler, type SampleReply } from './sampling.js';
import { checkClaims, flagText } from './draft-checks.js';

/** A model call that gave no usable draft; `retryable` says whether the job may try again later (fault `retry`). */
export class ModelError extends Error implements Fault {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'ModelError';
  }

  get fault(): 'retry' | 'permanent' {
    return this.retryable ? 'retry' : 'permanent';
  }
}

/**
 * The endpoint cannot take work now (down, overloaded, refusing the key). The job waits until `until` without
 * using up an attempt: an outage of any length loses nothing.
 */
export class ModelUnavailableError extends Error implements Fault {
  readonly fault = 'wait';

  constructor(
    message: string,
    readonly until: number,
  ) {
    super(message);
    this.name = 'ModelUnavailableError';
  }

  get waitUntil(): number {
    return this.until;
  }
}

export type { Draft, DraftRequest };

/** Told about each model request (for metrics). */
export type RequestObserver = (outcome: 'ok' | 'bad_reply' | 'overloaded' | 'unavailable' | 'rejected', seconds: number) => void;

export interface LingshuOptions {
  observe?: RequestObserver;
  /** Tries per job attempt for replies without a usable report. */
  replyAttempts?: number;
  /** Tries per job attempt for an endpoint that fails (5xx, no connection) before the job waits. */
  transportAttempts?: number;
  retryBaseMs?: number;
  breaker?: CircuitBreaker;
  /** How this model is asked; unset: chosen by the served model's name (profiles.ts). */
  profile?: ModelProfile;
}

/**
 * MedEvalKit's generation limit. Sent as `max_tokens`, which vLLM and every OpenAI-compatible server read;
 * `max_completion_tokens` is newer and not understood everywhere.
 */
const MAX_TOKENS: Record<string, number> = { max_tokens: 1024 };

const REPORT_SCHEMA = {
  type: 'object',
  properties: { findings: { type: 'string' }, impression: { type: 'string' } },
  required: ['findings', 'impression'],
  additionalProperties: false,
} as const;
const validateStructured = new Ajv().compile<{ findings: string; impression: string }>(REPORT_SCHEMA);

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

/** A structured reply is JSON {findings, impression}; anything else is read as text, as without structured output. */
function parseReply(text: string, structured: boolean): ParsedReport {
  if (structured) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (validateStructured(json)) {
      return parseReport(`Findings: ${json.findings}\nImpression: ${json.impression}`);
    }
  }
  return parseReport(text);
}

/** Retry-After (seconds or HTTP date) or OpenAI's retry-after-ms, in milliseconds. */
function retryAfterMs(headers: Headers | undefined): number | undefined {
  const ms = Number(headers?.get('retry-after-ms'));
  if (Number.isFinite(ms) && ms > 0) return ms;
  const value = headers?.get('retry-after');
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

type Outcome = { kind: 'reply'; body: unknown } | { kind: 'error'; err: unknown };

/** Every choice's text of a reply with several (`n`); choices without text are left out. */
function choiceTexts(body: unknown): string[] {
  const choices = (body as { choices?: unknown })?.choices;
  if (!Array.isArray(choices)) return [];
  return choices.map((c: { message?: { content?: unknown } }) => c?.message?.content).filter((t): t is string => typeof t === 'string');
}

export class LingshuClient implements Drafter {
  private readonly client: OpenAI;
  readonly limiter: AdaptiveLimiter;
  /** One body per request in flight, reused (see BodyBuffers). */
  private readonly bodies: BodyBuffers;
  readonly breaker: CircuitBreaker;
  private structured: boolean;
  private readonly replyAttempts: number;
  private readonly transportAttempts: number;
  private readonly retryBaseMs: number;
  private readonly observe: RequestObserver;
  readonly profile: ModelProfile;
  readonly sampler: Sampler;

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
    this.limiter = new AdaptiveLimiter({ max: config.maxInFlight });
    this.bodies = new BodyBuffers(Math.min(config.maxInFlight, 8));
    this.breaker = options.breaker ?? new CircuitBreaker();
    this.structured = config.structuredOutput;
    this.replyAttempts = options.replyAttempts ?? 3;
    this.transportAttempts = options.transportAttempts ?? 4;
    this.retryBaseMs = options.retryBaseMs ?? 1000;
    this.observe = options.observe ?? (() => undefined);
    this.profile = options.profile ?? profileSetting(config.model, config.profile);
    this.sampler = new Sampler(config.consistency.samples, config.consistency.temperature);
  }

  get inFlight(): number {
    return this.limiter.inFlight;
  }

  get promptVersion(): string {
    return this.profile === LINGSHU_PROFILE ? PROMPT_VERSIONS[this.config.prompt] : this.profile.promptVersion;
  }

  private async send(messages: ChatMessage[], signal?: AbortSignal, sampling: { temperature: number; n?: number } = { temperature: 0 }): Promise<Outcome & { latencyMs: number; inFlight: number }> {
    const release = await this.limiter.acquire();
    const inFlight = this.limiter.inFlight;
    const started = Date.now();
    // The client's own timeout stops at the response headers; this one also covers a body that stalls.
    const deadline = AbortSignal.timeout(this.config.timeoutMs);
    const abort = signal ? AbortSignal.any([signal, deadline]) : deadline;
    try {
      const structured: Record<string, unknown> = this.structured
        ? { structured_outputs: { json: REPORT_SCHEMA }, guided_json: REPORT_SCHEMA }
        : {};
      const bytes = chatRequestBody({ model: this.config.model, messages, ...sampling, ...MAX_TOKENS, ...structured }, (size) => this.bodies.take(size));
      const body: unknown = await this.client.post('/chat/completions', {
        // As a stream of its one buffer, with its length: fetch copies a buffer body before sending it, a megabyte or
        // two per draft (the client does not retry, so the body is read once).
        body: new ReadableStream({ start: (controller) => { controller.enqueue(bytes); controller.close(); } }),
        headers: { 'content-type': 'application/json', 'content-length': String(bytes.length) },
        signal: abort,
      });
      // Answered in full, so the server has read all of it: its memory may carry the next request.
      this.bodies.give(bytes);
      return { kind: 'reply', body, latencyMs: Date.now() - started, inFlight };
    } catch (err) {
      const timedOut = deadline.aborted && !signal?.aborted;
      return { kind: 'error', err: timedOut ? new OpenAI.APIConnectionTimeoutError() : err, latencyMs: Date.now() - started, inFlight };
    } finally {
      release();
    }
  }

  /**
   * Drafts findings and impression for the images (frontal first). Unusable replies are tried again a few times;
   * an endpoint that is down, overloaded or refusing the key makes the job wait (ModelUnavailableError) rather than
   * fail. Every draft is checked (safety.ts) and carries its flags.
   */
  async draft(request: DraftRequest, log: Logger = this.log, signal?: AbortSignal): Promise<Draft> {
    // Lingshu's messages are MedEvalKit's byte for byte (with the clinical-context variant); other profiles their own.
    const priorGiven = request.prior !== undefined && this.profile === LINGSHU_PROFILE && this.config.prompt === 'prior-report';
    const messages: ChatMessage[] = this.profile === LINGSHU_PROFILE
      ? buildReportMessages(request.images, {
        variant: this.config.prompt,
        ...(request.context ? { context: request.context } : {}),
        ...(priorGiven ? { prior: request.prior } : {}),
      })
      : await buildProfileMessages(this.profile, request.images);
    // The samples are asked for alongside the greedy draft, so they add GPU time but little waiting.
    const samples = this.sampler.sample((extra) => this.sampleOnce(messages, extra, signal));
    try {
      return this.checked(await this.greedy(messages, { ...request, priorGiven }, log, signal), await samples, log);
    } finally {
      await samples;
    }
  }

  /** One request for consistency samples; never throws: a failure is reported in the reply. */
  private async sampleOnce(messages: ChatMessage[], extra: { temperature: number; n?: number }, signal?: AbortSignal): Promise<SampleReply> {
    const outcome = await this.send(messages, signal, extra);
    if (outcome.kind === 'reply') {
      // Samples are read like the draft: JSON from structured output becomes the two sections again.
      const texts = choiceTexts(outcome.body).map((t) => {
        try {
          const p = parseReply(t, this.structured);
          return `Findings: ${p.findings}\nImpression: ${p.impression}`;
        } catch {
          return t;
        }
      });
      return texts.length ? { texts } : { texts: [], failed: { status: undefined, reason: 'a reply without text' } };
    }
    const status = outcome.err instanceof OpenAI.APIError && typeof outcome.err.status === 'number' ? outcome.err.status : undefined;
    return { texts: [], failed: { status, reason: status !== undefined ? `HTTP ${status}` : 'no answer' } };
  }

  /** The draft with the claim checks (contradictions, urgent findings, consistency with the samples) added. */
  private checked(draft: Draft, samples: { texts: string[]; shortfall: string | undefined }, log: Logger): Draft {
    const asked = this.sampler.samples;
    const claims = checkClaims(draft, { urgent: this.config.urgentFindings, ...(asked ? { samples: samples.texts } : {}) });
    if (samples.shortfall) log.warn({ asked, received: samples.texts.length }, 'fewer consistency samples than asked');
    const flags = [
      ...draft.flags,
      ...claims.sentenceFlags.map(flagText),
      ...(samples.shortfall ? [`consistency check incomplete: ${samples.shortfall}`] : []),
    ];
    return {
      ...draft,
      flags,
      sentenceFlags: [...draft.sentenceFlags, ...claims.sentenceFlags],
      ...(claims.urgent ? { urgent: claims.urgent } : {}),
      ...(asked ? { samples: { asked, received: samples.texts.length } } : {}),
    };
  }

  private async greedy(messages: ChatMessage[], request: DraftRequest & { priorGiven: boolean }, log: Logger, signal?: AbortSignal): Promise<Draft> {
    let badReplies = 0;
    let transportFailures = 0;
    let overloads = 0;
    let lastReplyError = '';
    for (;;) {
      const blocked = this.breaker.blockedUntil();
      if (blocked !== undefined) {
        throw new ModelUnavailableError(`waiting for Lingshu at ${this.config.url}: it failed repeatedly and is paused until ${new Date(blocked).toISOString()}`, blocked);
      }
      const outcome = await this.send(messages, signal);
      if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
      if (outcome.kind === 'reply') {
        this.breaker.succeeded();
        this.limiter.succeeded(outcome.latencyMs);
        try {
          const reply = replyText(outcome.body);
          const parsed = parseReply(reply.text, this.structured);
          const safety = checkDraft(
            { ...parsed, finishReason: reply.finishReason, views: request.views, language: this.config.language, priorGiven: request.priorGiven },
            this.config.safety,
          );
          this.observe('ok', outcome.latencyMs / 1000);
          return {
            ...parsed,
            findings: safety.findings,
            impression: safety.impression,
            text: reply.text,
            model: this.config.model,
            promptVersion: this.promptVersion,
            requestId: reply.id,
            finishReason: reply.finishReason,
            flags: [...(parsed.repetitionCut ? ['the reply repeated itself and was cut at the first repetition'] : []), ...safety.flags],
            sentenceFlags: safety.sentenceFlags,
            priorGiven: request.priorGiven,
          };
        } catch (err) {
          if (!(err instanceof ReplyFormatError)) throw err;
          this.observe('bad_reply', outcome.latencyMs / 1000);
          badReplies += 1;
          lastReplyError = err.message;
          log.warn({ attempt: badReplies, of: this.replyAttempts, err: err.message }, 'model call gave no usable draft');
          if (badReplies >= this.replyAttempts) throw new ModelError(err.message, true);
          await sleep(backoffMs(badReplies, this.retryBaseMs, 30_000), signal);
          continue;
        }
      }
      const { err } = outcome;
      const status = err instanceof OpenAI.APIError && typeof err.status === 'number' ? err.status : undefined;
      const headers = err instanceof OpenAI.APIError ? (err.headers as Headers | undefined) : undefined;
      this.observe(status === 429 ? 'overloaded' : status !== undefined && status < 500 ? 'rejected' : 'unavailable', outcome.latencyMs / 1000);
      if (status === 429) {
        this.limiter.overloaded(outcome.inFlight);
        overloads += 1;
        const wait = retryAfterMs(headers) ?? backoffMs(overloads, 250, 10_000);
        if (overloads > 20) throw new ModelUnavailableError(`waiting for Lingshu at ${this.config.url}: it keeps answering 429 (too busy)`, Date.now() + Math.max(wait, 30_000));
        await sleep(wait, signal);
        continue;
      }
      if (status === 400 && this.structured) {
        this.structured = false;
        log.warn({ err: (err as Error).message.slice(0, 200) }, 'the model endpoint refused structured output; continuing with text replies');
        continue;
      }
      if (status === 400) throw new ModelError(`Lingshu at ${this.config.url} rejected the request (HTTP 400): ${(err as Error).message.slice(0, 300)}`, false);
      if (status === 401 || status === 403 || status === 404) {
        const hint = status === 404 ? 'check RADDRAFT_LINGSHU_URL (it should end in /v1) and RADDRAFT_LINGSHU_MODEL' : 'check RADDRAFT_LINGSHU_API_KEY';
        throw new ModelUnavailableError(`waiting for Lingshu at ${this.config.url}: it answered HTTP ${status}; ${hint}`, Date.now() + 300_000);
      }
      // No connection, timeout or 5xx: the endpoint is (for now) down.
      this.breaker.failed();
      transportFailures += 1;
      const why = status !== undefined ? `answered HTTP ${status}` : err instanceof OpenAI.APIConnectionTimeoutError ? 'did not answer in time' : 'cannot be reached';
      log.warn({ attempt: transportFailures, err: why }, 'model endpoint failed');
      const wait = retryAfterMs(headers) ?? backoffMs(transportFailures, this.retryBaseMs, 60_000);
      if (transportFailures >= this.transportAttempts || this.breaker.state !== 'closed') {
        throw new ModelUnavailableError(`waiting for Lingshu at ${this.config.url}: it ${why}${lastReplyError ? `; before that: ${lastReplyError}` : ''}`, Date.now() + wait);
      }
      await sleep(wait, signal);
    }
  }

  /** The model names the endpoint serves (`GET /models`). */
  async listModels(): Promise<string[]> {
    try {
      const page = await this.client.models.list();
      return page.data.map((m) => m.id).filter((id): id is string => typeof id === 'string');
    } catch (err) {
      const status = err instanceof OpenAI.APIError && typeof err.status === 'number' ? err.status : undefined;
      if (status === 401 || status === 403) throw new ModelError(`Lingshu at ${this.config.url} refused the key (HTTP ${status}); check RADDRAFT_LINGSHU_API_KEY`, false);
      if (status !== undefined) throw new ModelError(`Lingshu at ${this.config.url} answered HTTP ${status} to GET /models; check RADDRAFT_LINGSHU_URL (it should end in /v1)`, false);
      throw new ModelError(`cannot reach Lingshu at ${this.config.url}`, true);
    }
  }
}
