/**
 * Adaptive concurrency for the model endpoint (AIMD), never above `max` (RADDRAFT_MAX_IN_FLIGHT).
 *
 * vLLM batches requests continuously: more in flight means more throughput until the server's batch is full, after
 * which requests queue (latency climbs) or a gateway answers 429. The limit therefore grows by one per window of
 * successful requests while latency stays near its baseline; on a 429 it drops to just below the concurrency that
 * was refused and holds that ceiling for a while before probing above it — two seconds at first, twice as long
 * each time a probe is refused again soon, up to two minutes — so it neither overruns a server whose limit is
 * fixed nor stays low after a passing squeeze; when latency runs far above the baseline it shrinks by a tenth.
 */
export interface LimiterOptions {
  max: number;
  initial?: number;
  /** Latency this many times the baseline counts as the server queueing. */
  latencyTolerance?: number;
  /** How long a learnt 429 ceiling first holds before probing above it. */
  ceilingHoldMs?: number;
  maxCeilingHoldMs?: number;
  now?: () => number;
}

const SAME_SQUEEZE_MS = 1000;

export class AdaptiveLimiter {
  private limitValue: number;
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private baselineMs: number | undefined;
  private successes = 0;
  private ceiling: { value: number; at: number } | undefined;
  private readonly max: number;
  private readonly tolerance: number;
  private readonly baseHoldMs: number;
  private readonly maxHoldMs: number;
  private holdMs: number;
  private readonly now: () => number;
  /** The highest number of requests that were in flight at once. */
  peak = 0;
  /** Told how long each request waited for a slot (for measurement). */
  onWait: ((ms: number) => void) | undefined;

  constructor(options: LimiterOptions) {
    this.max = options.max;
    this.limitValue = Math.min(options.max, options.initial ?? Math.max(1, Math.ceil(options.max / 2)));
    this.tolerance = options.latencyTolerance ?? 3;
    this.baseHoldMs = options.ceilingHoldMs ?? 2_000;
    this.maxHoldMs = options.maxCeilingHoldMs ?? 120_000;
    this.holdMs = this.baseHoldMs;
    this.now = options.now ?? Date.now;
  }

  get limit(): number {
    return Math.floor(this.limitValue);
  }

  get inFlight(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Waits for a slot; returns the function that gives it back. */
  async acquire(): Promise<() => void> {
    const asked = this.onWait ? Date.now() : 0;
    if (this.active < this.limit && this.waiting.length === 0) this.active += 1;
    // Otherwise pump() counts the slot as taken when it hands it over.
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.onWait?.(Date.now() - asked);
    this.peak = Math.max(this.peak, this.active);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active -= 1;
      this.pump();
    };
  }

  private pump(): void {
    while (this.waiting.length > 0 && this.active < this.limit) {
      this.active += 1;
      this.waiting.shift()!();
    }
  }

  /** A request finished normally in `latencyMs`. */
  succeeded(latencyMs: number): void {
    this.baselineMs = this.baselineMs === undefined ? latencyMs : Math.min(latencyMs, this.baselineMs * 0.99 + latencyMs * 0.01);
    if (latencyMs > this.tolerance * this.baselineMs) {
      this.limitValue = Math.max(1, this.limitValue * 0.9);
      this.successes = 0;
      return;
    }
    this.successes += 1;
    if (this.successes < this.limit) return;
    this.successes = 0;
    const cap = this.ceiling && this.now() - this.ceiling.at < this.holdMs ? this.ceiling.value : this.max;
    if (this.limitValue < cap) {
      this.limitValue = Math.min(cap, this.limitValue + 1);
      this.pump();
    }
  }

  /** The server refused a request for load (429) while `inFlightAtRefusal` were in flight. */
  overloaded(inFlightAtRefusal: number): void {
    const value = Math.max(1, Math.min(this.limitValue, inFlightAtRefusal - 1));
    const now = this.now();
    const since = this.ceiling ? now - this.ceiling.at : Infinity;
    if (since < SAME_SQUEEZE_MS) {
      // Requests that were already in flight refused together: one event, not a failed probe.
      this.ceiling = { value: Math.min(this.ceiling!.value, value), at: this.ceiling!.at };
    } else {
      // A refusal after the hold ran out answers a probe above the ceiling: refused again soon, the limit is real,
      // so the next probe waits longer. One within the hold means the server tightened while the limit stayed
      // under the ceiling: a new, lower ceiling, not a failed probe, so a passing squeeze is not held for minutes.
      if (since >= this.holdMs) this.holdMs = since < 2 * this.holdMs ? Math.min(this.maxHoldMs, this.holdMs * 2) : this.baseHoldMs;
      this.ceiling = { value, at: now };
    }
    this.limitValue = this.ceiling.value;
    this.successes = 0;
  }
}
