import type { DicomWebClient } from '../dicom/dicomweb.js';
import { Tag, isUid, num, str, strings, type DicomJson } from '../dicom/tags.js';
import { eligibleByModalities } from '../dicom/eligibility.js';
import { sightingChanges, type JobStore } from '../jobs/job-store.js';
import type { Logger } from '../log.js';

export interface QidoPollerOptions {
  pollSeconds: number;
  stableSeconds: number;
  lookbackDays: number;
  /** Days the wider, slower sweep reaches back (StudyDate); none when not beyond `lookbackDays`. */
  sweepDays?: number;
  sweepMinutes?: number;
}

export const CHECKPOINT = 'qido.since';

/** YYYYMMDD of the local calendar day `days` before `now`. */
export function dicomDay(now: Date, days = 0): string {
  const d = new Date(now.getFullYear(), now.getMonth(), now.getDate() - days);
  return `${d.getFullYear()}${String(d.getMonth() + 1).padStart(2, '0')}${String(d.getDate()).padStart(2, '0')}`;
}

export interface Sightings {
  seen: number;
  discovered: number;
  ineligible: number;
}

export interface PollResult extends Sightings {
  since: string;
}

export interface SweepResult extends Sightings {
  /** The StudyDate range searched, as sent (YYYYMMDD-YYYYMMDD); empty when there is nothing beyond the look-back. */
  range: string;
}

/**
 * Records the studies a QIDO-RS search returned: a study whose modalities rule it out is recorded as ineligible at
 * once; any other becomes (or updates) a job that waits until `stableAfter`.
 */
export async function recordSightings(store: JobStore, studies: DicomJson[], source: string, stableAfter: number, log: Logger): Promise<Sightings> {
  const result: Sightings = { seen: 0, discovered: 0, ineligible: 0 };
  const known = await store.knownStudies(studies.map((ds) => str(ds, Tag.StudyInstanceUID)).filter((uid): uid is string => isUid(uid)));
  for (const ds of studies) {
    const studyUid = str(ds, Tag.StudyInstanceUID);
    if (!isUid(studyUid)) {
      log.warn('QIDO-RS returned a study without a valid Study Instance UID; skipped');
      continue;
    }
    result.seen += 1;
    const count = num(ds, Tag.NumberOfStudyRelatedInstances);
    if (!sightingChanges(known.get(studyUid), count)) continue;
    const verdict = eligibleByModalities(strings(ds, Tag.ModalitiesInStudy));
    if (!verdict.eligible) {
      const { created } = await store.recordIneligible(studyUid, source, verdict.reason);
      if (created) {
        result.ineligible += 1;
        log.info({ studyUid, reason: verdict.reason }, 'study is not eligible');
      }
      continue;
    }
    const { created } = await store.observe({ studyUid, source, stableAfter, ...(count !== undefined ? { instanceCount: count } : {}) });
    if (created) {
      result.discovered += 1;
      log.info({ studyUid, instances: count }, 'new study discovered');
    }
  }
  return result;
}

/** The study-level attributes raddraft asks QIDO-RS for besides the defaults. */
export const QIDO_FIELDS = [Tag.ModalitiesInStudy, Tag.NumberOfStudyRelatedInstances];

/**
 * Watches the PACS with QIDO-RS. Each poll asks for every study dated from the checkpoint on; a study becomes a
 * job once its instance count has stopped changing for `stableSeconds` (late images would otherwise make a report
 * on half a study). The checkpoint only moves after a complete poll, so a study that arrived while raddraft was
 * down is still found when it comes back.
 *
 * A study can arrive long after its StudyDate — an outside study imported today, a modality with a wrong clock —
 * and the poll, which searches by StudyDate, never sees it. QIDO-RS cannot search by arrival time (Orthanc does
 * not expose it), so a wider sweep searches the days from `sweepDays` ago up to the poll's window, on a slower
 * schedule. Studies dated earlier still are invisible to polling; they need a push (STOW-RS, C-STORE) or FHIR.
 * Known studies are left as they are: the job store keeps one job per Study Instance UID.
 */
export class QidoPoller {
  private timer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private wideSweeping: Promise<void> | undefined;
  private lastSuccess: number | undefined;
  private lastError: string | undefined;

  constructor(
    private readonly dicomweb: DicomWebClient,
    private readonly store: JobStore,
    private readonly options: QidoPollerOptions,
    private readonly log: Logger,
    private readonly onNewWork: () => void = () => undefined,
  ) {}

  get health(): { lastSuccess: number | undefined; lastError: string | undefined } {
    return { lastSuccess: this.lastSuccess, lastError: this.lastError };
  }

  start(): void {
    const tick = () => {
      this.sweeping = this.pollOnce()
        .then(() => undefined, () => undefined)
        .finally(() => {
          this.sweeping = undefined;
          if (this.timer !== undefined) this.timer = setTimeout(tick, this.options.pollSeconds * 1000);
        });
    };
    this.timer = setTimeout(tick, 0);
    if (this.sweepRange(new Date()) === undefined) return;
    const sweepTick = () => {
      this.wideSweeping = this.sweepOnce()
        .then(() => undefined, () => undefined)
        .finally(() => {
          this.wideSweeping = undefined;
          if (this.sweepTimer !== undefined) this.sweepTimer = setTimeout(sweepTick, (this.options.sweepMinutes ?? 60) * 60_000);
        });
    };
    // The first sweep runs at start, so studies that arrived late while raddraft was down are found at once.
    this.sweepTimer = setTimeout(sweepTick, 0);
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    this.timer = undefined;
    this.sweepTimer = undefined;
    await Promise.all([this.sweeping, this.wideSweeping]);
  }

  /** The StudyDate days the wider sweep covers: from `sweepDays` ago to the day before the poll's window. */
  private sweepRange(now: Date): { from: string; to: string } | undefined {
    const { sweepDays = 0, lookbackDays } = this.options;
    if (sweepDays <= lookbackDays) return undefined;
    return { from: dicomDay(now, sweepDays), to: dicomDay(now, lookbackDays + 1) };
  }

  /** One wider sweep (see the class comment). */
  async sweepOnce(now = new Date()): Promise<SweepResult> {
    const range = this.sweepRange(now);
    if (!range) return { seen: 0, discovered: 0, ineligible: 0, range: '' };
    const dates = `${range.from}-${range.to}`;
    try {
      const studies = await this.dicomweb.searchStudies({ StudyDate: dates, includefield: QIDO_FIELDS });
      const stableAfter = now.getTime() + this.options.stableSeconds * 1000;
      const result: SweepResult = { ...(await recordSightings(this.store, studies, 'qido-sweep', stableAfter, this.log)), range: dates };
      if (result.discovered > 0) {
        this.log.info({ range: dates, discovered: result.discovered }, 'the wider QIDO-RS sweep found studies dated before the look-back');
        this.onNewWork();
      }
      return result;
    } catch (err) {
      this.log.warn({ err: (err as Error).message, range: dates }, 'the wider QIDO-RS sweep failed; will try again at the next sweep');
      throw err;
    }
  }

  /** Closes a gap in what raddraft was told (a lost notification): a poll, then the wider sweep. */
  async catchUp(now = new Date()): Promise<void> {
    await this.pollOnce(now);
    await this.sweepOnce(now);
  }

  async pollOnce(now = new Date()): Promise<PollResult> {
    const floor = dicomDay(now, this.options.lookbackDays);
    const checkpoint = await this.store.getCheckpoint(CHECKPOINT);
    const since = checkpoint && checkpoint < floor ? checkpoint : floor;
    try {
      const studies = await this.dicomweb.searchStudies({ StudyDate: `${since}-`, includefield: QIDO_FIELDS });
      const stableAfter = now.getTime() + this.options.stableSeconds * 1000;
      const result: PollResult = { ...(await recordSightings(this.store, studies, 'qido', stableAfter, this.log)), since };
      await this.store.setCheckpoint(CHECKPOINT, floor);
      this.lastSuccess = Date.now();
      this.lastError = undefined;
      if (result.discovered > 0) this.onNewWork();
      // Studies seen earlier become claimable as they settle; workers poll the store for them.
      return result;
    } catch (err) {
      this.lastError = (err as Error).message;
      this.log.warn({ err: (err as Error).message }, 'QIDO-RS sweep failed; will try again at the next poll');
      throw err;
    }
  }
}
