import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { JobStore } from './job-store.js';
import { FINAL_STATES } from './job-store.js';

/**
 * Removes what a stopped process left behind: half-received instances in the spool, and working directories of
 * jobs that are finished or no longer known. Returns the number of entries removed.
 */
export async function cleanLeftovers(dataDir: string, store: JobStore): Promise<number> {
  let removed = 0;
  const spool = path.join(dataDir, 'received', '.spool');
  for (const name of await readdir(spool).catch(() => [] as string[])) {
    await rm(path.join(spool, name), { force: true });
    removed++;
  }
  const work = path.join(dataDir, 'work');
  for (const id of await readdir(work).catch(() => [] as string[])) {
    const job = await store.get(id);
    if (!job || FINAL_STATES.includes(job.state)) {
      await rm(path.join(work, id), { recursive: true, force: true });
      removed++;
    }
  }
  return removed;
}
