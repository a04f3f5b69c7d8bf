/**
 * A circuit breaker for the model endpoint. After `threshold` consecutive failures that say the endpoint is down
 * (no connection, 5xx, timeouts) it opens: no request is sent and drafting waits until `retryAt`, when one probe is
 * let through. A success closes it; a failed probe opens it again for twice as long, up to `maxOpenMs`.
 */
export class CircuitBreaker {
  private failures = 0;
  private openUntil = 0;
  private openFor: number;
  private probing = false;

  constructor(
    private readonly threshold = 5,
    private readonly firstOpenMs = 5_000,
    private readonly maxOpenMs = 300_000,
    private readonly now: () => number = Date.now,
  ) {
    this.openFor = firstOpenMs;
  }

  get state(): 'closed' | 'open' | 'half-open' {
    if (this.failures < this.threshold) return 'closed';
    return this.now() < this.openUntil ? 'open' : 'half-open';
  }

  /** When a request may next be sent, or undefined if one may be sent now (and is then the probe). */
  blockedUntil(): number | undefined {
    const state = this.state;
    if (state === 'closed') return undefined;
    if (state === 'open' || this.probing) return Math.max(this.openUntil, this.now() + 1000);
    this.probing = true;
    return undefined;
  }

  succeeded(): void {
    this.failures = 0;
    this.probing = false;
    this.openFor = this.firstOpenMs;
  }

  failed(): void {
    this.failures += 1;
    if (this.failures >= this.threshold) {
      if (this.probing || this.failures === this.threshold) {
        this.openUntil = this.now() + this.openFor;
        if (this.probing) this.openFor = Math.min(this.maxOpenMs, this.openFor * 2);
      }
      this.probing = false;
    }
  }
}
