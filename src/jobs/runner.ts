import { rm } from 'node:fs/promises';
import type { Logger } from '../log.js';
import { drainOrAbort, Waiters } from './waiters.js';
import { jobLogger, phi } from '../log.js';
import { backoffMs } from '../util/concurrency.js';
import { faultOf } from '../util/faults.js';
import { ModelUnavailableError } from '../model/lingshu.js';
import { isDeadLocalOwner, leaseOwner } from './lease-owner.js';
import { FINAL_STATES, LeaseLostError, type Job, type JobStore } from './job-store.js';
import { workDir, type Pipeline } from './pipeline.js';

/** Told when a job reaches a final state (for metrics). */
export type FinishObserver = (job: Job) => void;

export interface RunnerOptions {
  onFinished?: FinishObserver;
  workers: number;
  leaseMs?: number;
  idleMs?: number;
  retryBaseMs: number;
  retryCapMs?: number;
  dataDir: string;
}

/**
 * Workers that claim jobs under a lease, run them through the pipeline and record the outcome. A failure becomes
 * `failed` with a reason and a jittered, exponentially growing wait, or `dead` once the retry budget is spent.
 */
export class JobRunner {
  readonly owner = leaseOwner();
  private running = false;
  private readonly loops: Promise<void>[] = [];
  private readonly idle = new Waiters();
  private readonly controller = new AbortController();
  private readonly active = new Set<string>();

  constructor(
    private readonly store: JobStore,
    private readonly pipeline: Pipeline,
    private readonly log: Logger,
    private readonly options: RunnerOptions,
  ) {}

  private get leaseMs(): number {
    return this.options.leaseMs ?? 60_000;
  }

  get busy(): number {
    return this.active.size;
  }

  /** Frees jobs held by earlier processes of this host that died (kill -9, power loss). */
  async recoverOrphans(): Promise<number> {
    const freed = await this.store.expireLeases(isDeadLocalOwner);
    if (freed > 0) this.log.warn({ jobs: freed }, 'took over jobs left by a stopped raddraft process');
    return freed;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    for (let i = 0; i < this.options.workers; i++) this.loops.push(this.loop());
  }

  /** Lets idle workers look for work now rather than at their next tick. */
  wake(): void {
    this.idle.wake();
  }

  /** Stops claiming; waits up to `drainMs` for running jobs, then interrupts them and gives their leases back. */
  async stop(drainMs = 30_000): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wake();
    await drainOrAbort(this.loops, drainMs, this.controller, () => {
      this.log.warn({ jobs: [...this.active] }, 'jobs still running at shutdown; interrupting and releasing them');
    });
  }

  /** Runs one named job now, whatever its stability deadline or retry time; undefined if another worker holds it. */
  async processNow(jobId: string): Promise<Job | undefined> {
    const job = await this.store.claim(this.owner, this.leaseMs, { jobId });
    if (!job) return undefined;
    await this.process(job);
    return this.store.get(jobId);
  }

  /** Processes runnable jobs until none is left (for `raddraft draft` and tests). */
  async runUntilIdle(): Promise<void> {
    for (;;) {
      const job = await this.store.claim(this.owner, this.leaseMs);
      if (!job) return;
      await this.process(job);
    }
  }

  private async loop(): Promise<void> {
    const idleMs = this.options.idleMs ?? 1000;
    while (this.running) {
      let job: Job | undefined;
      try {
        job = await this.store.claim(this.owner, this.leaseMs);
      } catch (err) {
        this.log.error({ err }, 'cannot claim jobs from the job store');
      }
      if (!job) {
        await this.idle.sleep(idleMs);
        continue;
      }
      await this.process(job);
    }
  }

  async process(job: Job): Promise<void> {
    const log = jobLogger(this.log, job);
    this.active.add(job.id);
    const renew = setInterval(() => {
      this.store.renewLease(job.id, this.owner, this.leaseMs).catch((err: unknown) => log.warn({ err }, 'lease renewal failed'));
    }, Math.max(1000, this.leaseMs / 3));
    try {
      const end = await this.pipeline.run(job, this.owner, log, this.controller.signal);
      if (['drafted', 'posted', 'shadowed', 'ineligible'].includes(end.state)) this.options.onFinished?.(end);
      if (this.controller.signal.aborted && !FINAL_STATES.includes(end.state)) {
        await this.store.release(job.id, this.owner);
      }
    } catch (err) {
      await this.recordFailure(job, err, log);
    } finally {
      clearInterval(renew);
      this.active.delete(job.id);
    }
  }

  private async recordFailure(job: Job, err: unknown, log: Logger): Promise<void> {
    if (err instanceof LeaseLostError) {
      log.warn('another worker took this job over; leaving it');
      return;
    }
    if (this.controller.signal.aborted) {
      await this.store.release(job.id, this.owner).catch(() => undefined);
      return;
    }
    const reason = phi.scrub((err as Error)?.message ?? String(err));
    const fault = faultOf(err);
    if (fault.kind === 'wait') {
      // The fault is elsewhere (model, PACS or FHIR server unreachable): the job waits without using up an attempt.
      const until = fault.until ?? Date.now() + Math.max(1000, this.options.retryBaseMs);
      await this.store.defer(job.id, this.owner, until, reason).catch((e: unknown) => log.warn({ err: e }, 'cannot put the job aside'));
      log.warn({ until: new Date(until).toISOString(), reason }, err instanceof ModelUnavailableError ? 'job waits for the model endpoint' : 'job waits for an endpoint that does not answer');
      return;
    }
    const current = await this.store.get(job.id);
    const attempt = (current?.attempts ?? job.attempts) + 1;
    const final = fault.kind === 'permanent';
    const retryAt = Date.now() + backoffMs(attempt, this.options.retryBaseMs, this.options.retryCapMs ?? 60 * 60_000);
    try {
      const failed = await this.store.fail(job.id, this.owner, reason, final ? { final: true } : { retryAt });
      if (failed.state === 'dead') {
        this.options.onFinished?.(failed);
        log.error({ state: failed.state, attempts: failed.attempts, reason }, 'job is dead; it needs attention');
        await rm(workDir(this.options.dataDir, job.id), { recursive: true, force: true });
      } else {
        log.warn({ attempts: failed.attempts, retryInMs: retryAt - Date.now(), reason }, 'job attempt failed; will retry');
      }
    } catch (e) {
      if (e instanceof LeaseLostError) log.warn('lease lost while recording a failure');
      else log.error({ err: e }, 'cannot record the job failure');
    }
  }
}
