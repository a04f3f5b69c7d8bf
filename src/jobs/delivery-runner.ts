import type { Logger } from '../log.js';
import { drainOrAbort, Waiters } from './waiters.js';
import { phi } from '../log.js';
import type { DeliveryOutcome, ReportOutput } from '../report/output.js';
import type { ReportEvent } from '../report/report.js';
import { backoffMs } from '../util/concurrency.js';
import { isDeadLocalOwner, leaseOwner } from './lease-owner.js';
import type { Delivery, Outbox } from './outbox.js';

export interface DeliveryRunnerOptions {
  /** Deliveries carried out at once, over all outputs. */
  concurrency: number;
  leaseMs?: number;
  idleMs?: number;
  retryBaseMs: number;
  retryCapMs?: number;
  /** Told of every finished attempt (metrics, the job's report reference). */
  onFinished?: (delivery: Delivery) => void | Promise<void>;
}

/** An output that throws instead of answering: a bug or an unforeseen fault, tried again like any passing fault. */
function fromThrown(err: unknown): DeliveryOutcome {
  return { kind: 'retry', reason: phi.scrub((err as Error)?.message ?? String(err)) };
}

/**
 * Workers that claim deliveries from the outbox under a lease, hand each event to its output, and record what the
 * receiver said. An output that is down waits (no attempt used) while the others go on; one report's events reach
 * one output in order, because the outbox only offers a delivery once the earlier ones of its report are done.
 */
export class DeliveryRunner {
  readonly owner = leaseOwner();
  private running = false;
  private readonly loops: Promise<void>[] = [];
  private readonly idle = new Waiters();
  private readonly controller = new AbortController();
  /** Deliveries this runner's workers carry out now, by output. */
  private readonly inFlight = new Map<string, number>();
  private claiming: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly outbox: Outbox,
    private readonly outputs: ReadonlyMap<string, ReportOutput>,
    private readonly log: Logger,
    private readonly options: DeliveryRunnerOptions,
  ) {}

  private get leaseMs(): number {
    return this.options.leaseMs ?? 60_000;
  }

  get outputNames(): string[] {
    return [...this.outputs.keys()];
  }

  /** Each output's share of the workers: one that hangs holds up its own deliveries, never the others'. */
  private get perOutput(): number {
    return Math.max(1, Math.floor(this.options.concurrency / Math.max(1, this.outputs.size)));
  }

  /** The next delivery for a worker, from an output below its share; claims go one at a time so shares hold. */
  private claimNext(): Promise<Delivery | undefined> {
    const next = this.claiming.then(async () => {
      const full = [...this.inFlight].filter(([, count]) => count >= this.perOutput).map(([output]) => output);
      const delivery = await this.outbox.claim(this.owner, this.leaseMs, undefined, full);
      if (delivery) this.inFlight.set(delivery.output, (this.inFlight.get(delivery.output) ?? 0) + 1);
      return delivery;
    });
    this.claiming = next.catch(() => undefined);
    return next;
  }

  async recoverOrphans(): Promise<number> {
    const freed = await this.outbox.expireDeliveryLeases(isDeadLocalOwner);
    if (freed > 0) this.log.warn({ deliveries: freed }, 'took over deliveries left by a stopped raddraft process');
    return freed;
  }

  start(): void {
    if (this.running || this.outputs.size === 0) return;
    this.running = true;
    for (let i = 0; i < this.options.concurrency; i++) this.loops.push(this.loop());
  }

  wake(): void {
    this.idle.wake();
  }

  async stop(drainMs = 30_000): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wake();
    await drainOrAbort(this.loops, drainMs, this.controller);
  }

  /** Delivers until nothing is due (for `raddraft draft` and tests). */
  async runUntilIdle(): Promise<void> {
    for (let d = await this.outbox.claim(this.owner, this.leaseMs); d; d = await this.outbox.claim(this.owner, this.leaseMs)) {
      await this.deliver(d);
    }
  }

  /** Carries out one delivery this runner holds, now; returns it as recorded afterwards. */
  async deliver(delivery: Delivery): Promise<Delivery> {
    const log = this.log.child({ delivery: delivery.id, jobId: delivery.jobId, output: delivery.output });
    const output = this.outputs.get(delivery.output);
    let outcome: DeliveryOutcome;
    if (!output) {
      outcome = { kind: 'wait', until: Date.now() + 60_000, reason: `output ${delivery.output} is not configured here (RADDRAFT_OUTPUTS); waiting for a raddraft that has it` };
    } else {
      outcome = await this.attempt(output, delivery).catch(fromThrown);
    }
    if (this.controller.signal.aborted && outcome.kind !== 'delivered') {
      await this.outbox.releaseDelivery(delivery.id, this.owner);
      return delivery;
    }
    const retryAt = Date.now() + backoffMs(delivery.attempts + 1, this.options.retryBaseMs, this.options.retryCapMs ?? 60 * 60_000);
    const done = await this.outbox.finish(delivery.id, this.owner, outcome, retryAt);
    // A radiologist's decision reaches the other outputs only once the FHIR server has accepted it (they are held
    // when it is recorded): a decision the FHIR server refuses is taken back before anyone else has it.
    if (done.output === 'fhir' && done.kind !== 'drafted') {
      if (done.state === 'delivered') await this.outbox.releaseHeld(done.eventId);
      // The FHIR server refused the decision for good (the report changed meanwhile): it is called off everywhere it
      // has not gone yet, and the radiologist may decide again on the report as it now is.
      if (done.state === 'dead') await this.outbox.cancel(done.eventId, `the FHIR server refused it: ${done.lastError ?? 'no reason given'}`);
    }
    if (done.state === 'delivered') log.info({ reference: done.reference, kind: done.kind }, 'delivered');
    else if (done.state === 'dead') log.error({ reason: done.lastError, attempts: done.attempts }, 'delivery is dead; it needs attention');
    else log.warn({ reason: done.lastError, nextAttemptAt: done.nextAttemptAt, outcome: outcome.kind }, 'delivery not done yet');
    await this.options.onFinished?.(done);
    return done;
  }

  private async attempt(output: ReportOutput, delivery: Delivery): Promise<DeliveryOutcome> {
    const events = await this.outbox.events(delivery.reportKey);
    const event = events.find((e) => e.seq === delivery.seq);
    if (!event) return { kind: 'permanent', reason: `event ${delivery.eventId} is missing from the outbox` };
    // A report's first event (its draft) has nothing before it.
    const delivered = (delivery.seq === 0 ? [] : await this.outbox.deliveriesOfJob(delivery.jobId))
      .filter((d) => d.reportKey === delivery.reportKey && d.output === delivery.output && d.seq < delivery.seq && d.state === 'delivered' && d.reference);
    const earlier = delivered.map((d) => ({ kind: kindOf(events, d.seq), seq: d.seq, reference: d.reference! }));
    return this.withinLease(output, (signal) => output.deliver(event, { earlier, signal }));
  }

  /**
   * An attempt ends well inside its lease: past the lease another worker takes the delivery, and two hand-overs of
   * one event at once could leave two copies at a receiver that checks before it writes. The output is told to stop
   * (its signal) and the attempt counts as one that failed; an answer that comes later is not recorded.
   */
  private async withinLease(output: ReportOutput, run: (signal: AbortSignal) => Promise<DeliveryOutcome>): Promise<DeliveryOutcome> {
    const limitMs = Math.floor(this.leaseMs * 0.9);
    const timeout = new AbortController();
    const late = new Promise<DeliveryOutcome>((resolve) => {
      timeout.signal.addEventListener('abort', () => resolve({ kind: 'retry', reason: `${output.name} did not answer within ${Math.round(limitMs / 1000)} s` }), { once: true });
    });
    const timer = setTimeout(() => timeout.abort(new Error(`${output.name} did not answer in time`)), limitMs);
    try {
      return await Promise.race([run(AbortSignal.any([this.controller.signal, timeout.signal])), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async loop(): Promise<void> {
    const idleMs = this.options.idleMs ?? 1000;
    while (this.running) {
      let delivery: Delivery | undefined;
      try {
        delivery = await this.claimNext();
      } catch (err) {
        this.log.error({ err }, 'cannot claim deliveries from the job store');
      }
      if (delivery) {
        const { output } = delivery;
        await this.deliver(delivery).catch((err: unknown) => this.log.error({ err, delivery: delivery.id }, 'cannot record a delivery'));
        this.inFlight.set(output, (this.inFlight.get(output) ?? 1) - 1);
        continue;
      }
      await this.idle.sleep(idleMs);
    }
  }
}

function kindOf(events: ReportEvent[], seq: number): ReportEvent['kind'] {
  return events.find((e) => e.seq === seq)?.kind ?? 'drafted';
}
