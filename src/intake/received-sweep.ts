import { FINAL_STATES, type Job, type JobStore } from '../jobs/job-store.js';
import type { Logger } from '../log.js';
import type { ReceivedStore } from './received-store.js';

/** How often pushed instances no job needs are looked for. */
export const SWEEP_EVERY_MS = 10 * 60_000;
/** Instances no job knows of (their job was never recorded) are kept this long, in case one is about to be. */
export const ORPHAN_AFTER_MS = 60 * 60_000;

/**
 * Whether a study's pushed instances will be read again: no while its job runs, nor once it has ended — except a
 * drafted job whose draft is still being delivered, since posting it reads the study's details (from the pushed
 * instances when RADDRAFT_PUSH_VERIFY=none). Undefined when no job knows the study.
 */
export async function stillNeeded(store: JobStore, job: Job | undefined): Promise<boolean | undefined> {
  if (!job) return undefined;
  if (!FINAL_STATES.includes(job.state)) return true;
  if (job.state !== 'drafted') return false;
  return (await store.outbox.deliveriesOfJob(job.id)).some((d) => d.kind === 'drafted' && d.state === 'pending');
}

/** Removes a study's pushed instances if its job no longer needs them; says whether it did. */
export async function releaseIfUnneeded(received: ReceivedStore, store: JobStore, job: Job, log: Logger): Promise<boolean> {
  // Most studies were never pushed: a look at the directory spares them a query.
  if (!(await received.has(job.studyUid))) return false;
  if ((await stillNeeded(store, job)) !== false) return false;
  await received.remove(job.studyUid);
  log.info({ studyUid: job.studyUid, state: job.state }, 'pushed instances removed: their job no longer needs them');
  return true;
}

/**
 * Sweeps the received store now and then every SWEEP_EVERY_MS: studies whose job no longer needs them, and
 * instances no job knows that are older than ORPHAN_AFTER_MS. Returns a function that stops the sweeps.
 */
export async function keepReceivedTidy(received: ReceivedStore, store: JobStore, log: Logger): Promise<() => void> {
  const sweep = async () => {
    try {
      const removed = await received.sweep(async (studyUid) => {
        const needed = await stillNeeded(store, await store.findByStudy(studyUid));
        return needed === undefined ? undefined : !needed;
      }, ORPHAN_AFTER_MS);
      if (removed) log.info({ removed }, 'removed pushed instances no job needs');
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'cannot sweep the received instances');
    }
  };
  await sweep();
  const timer = setInterval(() => void sweep(), SWEEP_EVERY_MS);
  timer.unref();
  return () => clearInterval(timer);
}
