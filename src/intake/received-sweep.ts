import { FINAL_STATES, type Job, type JobStore } from '../jobs/job-store.js';
import type { Logger } from '../log.js';
import type { ReceivedStore } from './received-store.js';

/** How often pushed instances no job needs are looked for. */
export const SWEEP_EVERY_MS = 10 * 60_000;
/** Instances no job knows of (their job was never recorded) are kept this long, in case one is about to be. */
export const ORPHAN_AFTER_MS = 60 * 60_000;

const ended = (job: Job | undefined) => (job ? FINAL_STATES.includes(job.state) : undefined);

/** Removes the instances of a study whose job has already ended: nothing will read them again. */
export async function dropIfEnded(received: ReceivedStore, job: Job, log: Logger): Promise<void> {
  if (!ended(job)) return;
  await received.remove(job.studyUid);
  log.info({ studyUid: job.studyUid, state: job.state }, 'instances pushed for a study whose job has ended were removed');
}

/**
 * Sweeps the received store now and then every SWEEP_EVERY_MS: studies whose job ended, and instances no job knows
 * that are older than ORPHAN_AFTER_MS. Returns a function that stops the sweeps.
 */
export async function keepReceivedTidy(received: ReceivedStore, store: JobStore, log: Logger): Promise<() => void> {
  const sweep = async () => {
    try {
      const removed = await received.sweep(async (studyUid) => ended(await store.findByStudy(studyUid)), ORPHAN_AFTER_MS);
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
