import type { ChosenView, SkippedView } from '../dicom/views.js';
import type { DraftRecord, RenderedRecord } from '../report/report.js';
import type { NewReportEvent, Outbox } from './outbox.js';
import type { RisReports } from './ris-reports.js';

export type { DraftRecord, RenderedRecord };

/**
 * A job is one study on its way to a posted report. Every state change is recorded (job_events), so a restart
 * resumes each job from its last recorded state and nothing leaves the store silently.
 */
export const JOB_STATES = [
  'discovered', 'ineligible', 'queued', 'fetching', 'rendering', 'drafting', 'drafted', 'shadowed', 'failed', 'dead',
  // Kept so jobs finished by an earlier raddraft still read: it posted the draft to FHIR as the last job step.
  'publishing', 'posted',
] as const;
export type JobState = (typeof JOB_STATES)[number];

/** States in which a worker holds the job under a lease. */
export const WORKING_STATES: readonly JobState[] = ['queued', 'fetching', 'rendering', 'drafting', 'publishing'];
/**
 * `drafted`: the draft is recorded as a report event and its deliveries are in the outbox. `shadowed`: drafted in
 * shadow mode (RADDRAFT_MODE=shadow) and kept in the store; no output receives it.
 */
export const FINAL_STATES: readonly JobState[] = ['ineligible', 'drafted', 'posted', 'shadowed', 'dead'];

export function isJobState(value: unknown): value is JobState {
  return typeof value === 'string' && (JOB_STATES as readonly string[]).includes(value);
}

export interface Job {
  id: string;
  studyUid: string;
  state: JobState;
  /** Where a failed job picks up again. */
  resumeState: JobState | undefined;
  attempts: number;
  reason: string | undefined;
  source: string;
  instanceCount: number | undefined;
  stableAfter: number;
  nextAttemptAt: number | undefined;
  leaseOwner: string | undefined;
  leaseUntil: number | undefined;
  views: ChosenView[] | undefined;
  /** Instances of the study not sent to the model, each with the reason. */
  skippedViews: SkippedView[] | undefined;
  images: RenderedRecord[] | undefined;
  draft: DraftRecord | undefined;
  reportRef: string | undefined;
  createdAt: number;
  updatedAt: number;
}

export interface JobEvent {
  at: number;
  from: JobState | undefined;
  to: JobState;
  note: string | undefined;
}

export interface JobPatch {
  reason?: string | null;
  views?: ChosenView[];
  skippedViews?: SkippedView[];
  images?: RenderedRecord[] | null;
  draft?: DraftRecord | null;
  reportRef?: string;
}

export interface Observation {
  studyUid: string;
  source: string;
  instanceCount?: number;
  /** Epoch ms; the job becomes claimable once the study has been unchanged until then. */
  stableAfter: number;
}

/** What the job store holds of a study that a sighting could change. */
export interface KnownStudy {
  state: JobState;
  instanceCount?: number;
}

/**
 * Whether a sighting changes a known study's job: only a `discovered` one, whose instance count differs (its
 * stability deadline then moves). A study no job knows always does.
 */
export function sightingChanges(known: KnownStudy | undefined, instanceCount: number | undefined): boolean {
  if (!known) return true;
  return known.state === 'discovered' && instanceCount !== undefined && known.instanceCount !== instanceCount;
}

export interface ListQuery {
  state?: JobState;
  limit?: number;
  offset?: number;
}

/** A radiologist's decision on a draft, kept for quality monitoring (no patient data, no report text). */
export interface ReviewRecord {
  reportRef: string;
  studyUid: string;
  model: string;
  promptVersion: string;
  outcome: 'signed' | 'rejected';
  /** Characters inserted, deleted or replaced between the draft and the signed text (Levenshtein). */
  editDistance: number | undefined;
  draftChars: number;
  finalChars: number | undefined;
  signer: string;
  at: number;
}

export interface QualityRow {
  model: string;
  promptVersion: string;
  signed: number;
  signedUnchanged: number;
  rejected: number;
  meanEditDistance: number | undefined;
  /** Mean of edit distance divided by draft length. */
  meanEditRatio: number | undefined;
}

/** Thrown when a worker touches a job whose lease it no longer holds (another worker took it over). */
export class LeaseLostError extends Error {
  constructor(jobId: string) {
    super(`job ${jobId}: lease lost to another worker`);
    this.name = 'LeaseLostError';
  }
}

export interface JobStore {
  /** Report events and their deliveries, in the same database. */
  readonly outbox: Outbox;
  /** Final reports the RIS sent over HL7, and the messages it sent that raddraft could not use. */
  readonly risReports: RisReports;
  /**
   * Records a sighting of a study. A new study becomes a `discovered` job; a `discovered` job whose instance count
   * changed has its stability deadline pushed back. Other jobs are left as they are.
   */
  observe(o: Observation): Promise<{ job: Job; created: boolean }>;
  /**
   * The jobs of those of `studyUids` that have one, by study, with what a sighting could change: a poll seeing the
   * same day's studies again and again passes over the unchanged ones with one query, not a transaction each.
   */
  knownStudies(studyUids: readonly string[]): Promise<Map<string, KnownStudy>>;
  /** Records a study that is ineligible before anything was fetched (e.g. a CT by its QIDO modalities). */
  recordIneligible(studyUid: string, source: string, reason: string): Promise<{ job: Job; created: boolean }>;
  /**
   * Takes the next runnable job under a lease, or undefined. With `jobId`, takes that job if it is unfinished and
   * free, without waiting for its stability deadline or retry time (a `raddraft draft` request).
   */
  claim(owner: string, leaseMs: number, opts?: { now?: number; jobId?: string }): Promise<Job | undefined>;
  /** With `event`, the report event and its deliveries are recorded in the same transaction as the move. */
  transition(id: string, owner: string, to: JobState, patch?: JobPatch, note?: string, event?: { event: NewReportEvent; outputs: readonly string[] }): Promise<Job>;
  renewLease(id: string, owner: string, leaseMs: number): Promise<void>;
  /** A failed attempt: `failed` with the next attempt time, or `dead` when the budget is spent or `final`. */
  fail(id: string, owner: string, reason: string, opts: { retryAt?: number; final?: boolean }): Promise<Job>;
  /**
   * Ends at once the leases of owners that are known to be gone (a process of this host that no longer runs), so
   * their jobs are taken over without waiting for the leases to run out. Returns the number of jobs freed.
   */
  expireLeases(isGone: (owner: string) => boolean): Promise<number>;
  /**
   * Puts a job aside until `until` in its current state, without using up an attempt: the fault is elsewhere (the
   * model endpoint is down) and the job must simply wait.
   */
  defer(id: string, owner: string, until: number, reason: string): Promise<Job>;
  /** Gives a job back untouched (shutdown), so another worker may take it at once. */
  release(id: string, owner: string): Promise<void>;
  /** Requeues a failed or dead job from where it stopped. */
  retry(id: string): Promise<Job | undefined>;
  /** Notes the report's reference at the FHIR server once its draft is delivered there. */
  setReportRef(id: string, reportRef: string): Promise<void>;
  get(id: string): Promise<Job | undefined>;
  findByStudy(studyUid: string): Promise<Job | undefined>;
  list(q?: ListQuery): Promise<Job[]>;
  countByState(): Promise<Record<JobState, number>>;
  events(id: string): Promise<JobEvent[]>;
  /** Records a sign-off or rejection once; a second record for the same report is ignored. */
  recordReview(review: ReviewRecord): Promise<void>;
  qualitySummary(): Promise<QualityRow[]>;
  getCheckpoint(name: string): Promise<string | undefined>;
  setCheckpoint(name: string, value: string): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
