import { sleep } from '../util/concurrency.js';

/** Idle workers waiting for work: each sleeps until its next tick, or until `wake` says there is work now. */
export class Waiters {
  private readonly waiting = new Set<() => void>();

  wake(): void {
    const all = [...this.waiting];
    this.waiting.clear();
    for (const w of all) w();
  }

  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiting.add(done);
    });
  }
}

/**
 * Lets worker loops finish for up to `drainMs`; past that, aborts what they are doing (their work sees the signal
 * and gives its leases back) and waits for them to end. Says whether they finished in time.
 */
export async function drainOrAbort(loops: Promise<void>[], drainMs: number, controller: AbortController, onOverrun: () => void = () => undefined): Promise<boolean> {
  const drained = Promise.all(loops).then(() => true);
  if (await Promise.race([drained, sleep(drainMs).then(() => false)])) return true;
  onOverrun();
  controller.abort(new Error('raddraft is shutting down'));
  await drained;
  return false;
}
