import type { DicomWebClient } from '../dicom/dicomweb.js';
import type { JobStore } from '../jobs/job-store.js';
import type { Logger } from '../log.js';
import { QIDO_FIELDS, dicomDay, recordSightings, type Sightings } from './qido-poller.js';

export interface BackfillProgress extends Sightings {
  day: string;
  daysDone: number;
  days: number;
}

/** Every calendar day from `since` to `until`, inclusive, as YYYYMMDD. */
export function daysBetween(since: Date, until: Date): string[] {
  const out: string[] = [];
  for (let d = new Date(since.getFullYear(), since.getMonth(), since.getDate()); d <= until; d.setDate(d.getDate() + 1)) {
    out.push(dicomDay(d));
  }
  return out;
}

/**
 * `raddraft backfill`: queues the studies of past days, one QIDO-RS search per day. Progress is kept in the job
 * store after each day, so an interrupted backfill started again with the same dates resumes where it stopped.
 * Past studies are complete, so their jobs can be claimed at once by `raddraft serve`.
 */
export async function backfill(
  dicomweb: DicomWebClient,
  store: JobStore,
  range: { since: Date; until: Date },
  log: Logger,
  progress: (p: BackfillProgress) => void,
): Promise<BackfillProgress> {
  const days = daysBetween(range.since, range.until);
  const key = `backfill.${days[0]}-${days.at(-1)}`;
  const doneThrough = await store.getCheckpoint(key);
  const total: BackfillProgress = { day: '', daysDone: 0, days: days.length, seen: 0, discovered: 0, ineligible: 0 };
  for (const day of days) {
    total.day = day;
    if (doneThrough && day <= doneThrough) {
      total.daysDone += 1;
      progress({ ...total });
      continue;
    }
    const studies = await dicomweb.searchStudies({ StudyDate: day, includefield: QIDO_FIELDS });
    const s = await recordSightings(store, studies, 'backfill', Date.now(), log);
    total.seen += s.seen;
    total.discovered += s.discovered;
    total.ineligible += s.ineligible;
    total.daysDone += 1;
    await store.setCheckpoint(key, day);
    progress({ ...total });
  }
  return total;
}
