/**
 * What a report is, in raddraft's own terms: the study it reads, the images the model saw, the text, and who made
 * each version. Every output (FHIR, DICOM SR, HL7) and every consumer (review, eval) reads these fields; nothing is
 * parsed back out of narrative text. This folder stands on the ground floor: it imports nothing of raddraft's.
 */

/** One image as the model received it. */
export interface RenderedRecord {
  sopUid: string;
  seriesUid: string;
  view: string;
  /** File name in the job's work directory (the PNG sent to the model). */
  file: string;
  sha256: string;
  width: number;
  height: number;
  sourceWidth: number;
  sourceHeight: number;
  window: { center: number; width: number; source: string };
  photometric: string;
  transferSyntaxUid: string;
}

/** The model's draft: sections, the reply as received, and who wrote it with which prompt. */
export interface DraftRecord {
  findings: string;
  impression: string;
  text: string;
  model: string;
  promptVersion: string;
  requestId: string | undefined;
  draftedAt: string;
  /** What the reviewer should look at twice: a missing section, a reply cut off at the token limit. */
  flags?: string[];
  /**
   * Critical findings the draft asserts (pneumothorax, free air, a malpositioned line…), from a configurable list.
   * An unverified AI suspicion: it raises the review priority and is labelled as such wherever it is shown.
   * Absent when the draft asserts none.
   */
  urgent?: { findings: string[] };
  /** Safety flags tied to one sentence of the draft, each with why; absent when none were raised. */
  sentenceFlags?: SentenceFlag[];
}

export const SENTENCE_FLAG_KINDS = ['unstable', 'contradiction', 'comparison', 'view', 'urgent'] as const;
export type SentenceFlagKind = (typeof SENTENCE_FLAG_KINDS)[number];

/** One flag at one sentence: the sentence as it stands in the section, what kind of doubt, and why in words. */
export interface SentenceFlag {
  section: 'findings' | 'impression';
  sentence: string;
  kind: SentenceFlagKind;
  why: string;
}

/** A person acting on a report: `Practitioner/<id>` (or PractitionerRole) from a token or session, never a body. */
export interface Actor {
  reference: string;
  display: string | undefined;
}

export const REPORT_EVENT_KINDS = ['drafted', 'signed', 'corrected', 'rejected'] as const;
export type ReportEventKind = (typeof REPORT_EVENT_KINDS)[number];

interface EventBase {
  /** `<reportKey>:<seq>`: unique, stable across retries, and the idempotency key at every receiver. */
  id: string;
  /** The report's own key (the Study Instance UID and a suffix); all events of one report share it. */
  reportKey: string;
  /** 0 for the draft, then 1, 2, … in the order they were recorded. */
  seq: number;
  studyUid: string;
  jobId: string;
  /** ISO date-time the event was recorded. */
  at: string;
}

/** The unverified AI draft. */
export interface DraftedEvent extends EventBase {
  kind: 'drafted';
  images: RenderedRecord[];
  draft: DraftRecord;
}

/** How a signed report changed: its text corrected (an error put right), or new text appended (the rest unchanged). */
export type CorrectionMode = 'correction' | 'addendum';

/**
 * A radiologist's text and signature (`signed`), or a change to a signed report (`corrected`). Every event carries
 * the whole report as it stands after it, so an output never has to piece a report together from earlier events:
 * `findings` and `impression` (for an addendum: the signed text, unchanged) and, after any addendum, `addenda`.
 */
export interface SignedEvent extends EventBase {
  kind: 'signed' | 'corrected';
  findings: string;
  impression: string;
  by: Actor;
  /** The version of the report the radiologist reviewed, as the FHIR server numbers it (If-Match). */
  reviewedVersion: string;
  /** Why a signed report was changed; always present on `corrected`. */
  reason?: string;
  /** `corrected` only: what kind of change this is (absent on `signed`; a `corrected` without it is a correction). */
  mode?: CorrectionMode;
  /** Addenda appended since signing, oldest first; an addendum event's own text is the last. */
  addenda?: string[];
}

/** What a `corrected` event is: a correction unless it says it is an addendum. */
export function correctionMode(event: Pick<SignedEvent, 'kind' | 'mode'>): CorrectionMode | undefined {
  return event.kind === 'corrected' ? (event.mode ?? 'correction') : undefined;
}

export interface RejectedEvent extends EventBase {
  kind: 'rejected';
  reason: string;
  by: Actor;
  reviewedVersion: string;
}

export type ReportEvent = DraftedEvent | SignedEvent | RejectedEvent;

export function isReportEventKind(value: unknown): value is ReportEventKind {
  return typeof value === 'string' && (REPORT_EVENT_KINDS as readonly string[]).includes(value);
}

/** Characters FHIR search and HL7 treat specially never appear in a key. */
export function keySafe(text: string): string {
  return text.replace(/[^A-Za-z0-9._-]+/g, '-');
}

/** One report per study and model: the key every event and every receiver's identifier is derived from. */
export function reportKey(studyUid: string, model: string): string {
  return `${studyUid}_${keySafe(model)}`;
}

export function eventId(reportKey: string, seq: number): string {
  return `${reportKey}:${seq}`;
}
