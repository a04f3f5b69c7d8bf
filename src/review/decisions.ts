import type { DiagnosticReport } from '@medplum/fhirtypes';
import type { FhirGateway } from '../fhir/client.js';
import { System } from '../fhir/codes.js';
import { SIGNED_REPORT_STATUSES } from '../fhir/correct.js';
import { alreadySignedDifferently, conflict, readDraft, sameText, type ReviewedDraft } from '../fhir/sign.js';
import type { DeliveryRunner } from '../jobs/delivery-runner.js';
import type { JobStore } from '../jobs/job-store.js';
import { StaleEventError, type Delivery, type NewReportEvent } from '../jobs/outbox.js';
import type { Logger } from '../log.js';
import type { Actor, DraftedEvent, ReportEvent, SignedEvent } from '../report/report.js';
import { faultOf } from '../util/faults.js';
import { OperationOutcomeError } from '../util/operation-outcome.js';
import { editDistance, reportText } from '../report/edit-distance.js';

export type Decision =
  | { kind: 'signed'; findings: string; impression: string; version: string }
  | { kind: 'rejected'; reason: string; version: string }
  /** A signed report's text put right (`correction`), or new text added to it (`addendum`). */
  | { kind: 'corrected'; mode: 'correction'; findings: string; impression: string; reason: string; version: string }
  | { kind: 'corrected'; mode: 'addendum'; addendum: string; reason: string; version: string };

export interface DecisionDeps {
  fhir: FhirGateway;
  store: JobStore;
  deliveries: DeliveryRunner;
  log: Logger;
}

export interface DecisionResult {
  reportRef: string;
  /** The report's FHIR status once the FHIR server has the decision; `recorded` while its delivery is pending. */
  status: 'final' | 'cancelled' | 'corrected' | 'appended' | 'recorded';
  version: string | undefined;
  editDistance?: number;
  /** Outputs still to receive the decision, with why, when the FHIR server could not take it at once. */
  pending: { output: string; reason: string | undefined }[];
}

/** Other outputs wait this long for the FHIR server to accept a decision before they receive it anyway. */
const HOLD_MS = 60_000;

/** What the radiologist decided on, read from the FHIR server, or from raddraft's own record while it is down. */
interface Basis {
  reportKey: string;
  studyUid: string;
  jobId: string;
  draft: { findings: string; impression: string; model: string; promptVersion: string };
  /** The FHIR report as it is now, and its text's sections, when the server answered. */
  report: DiagnosticReport | undefined;
  current?: { findings: string; impression: string };
  events: ReportEvent[];
}

const reportRefOf = (id: string) => `DiagnosticReport/${id}`;
const unversioned = (ref: string) => ref.replace(/\/_history\/.*$/, '');

async function basisFromServer(deps: DecisionDeps, id: string, read: ReviewedDraft): Promise<Basis> {
  const key = read.report.identifier?.find((i) => i.system === System.draftReport)?.value ?? '';
  const events = await deps.store.outbox.events(key);
  const job = await deps.store.findByStudy(read.studyUid);
  // The AI's text and origin as raddraft recorded them; the FHIR report's text only for a report it has no record of.
  const recorded = events.find((e): e is DraftedEvent => e.kind === 'drafted')?.draft ?? job?.draft;
  const { findings, impression, model, promptVersion } = recorded ?? read;
  return {
    reportKey: key, studyUid: read.studyUid, jobId: job?.id ?? events[0]?.jobId ?? `report-${id}`,
    draft: { findings, impression, model, promptVersion },
    report: read.report, current: { findings: read.findings, impression: read.impression }, events,
  };
}

async function basisFromRecord(deps: DecisionDeps, id: string, why: string): Promise<Basis> {
  const key = await deps.store.outbox.reportKeyByReference('fhir', reportRefOf(id));
  const events = key ? await deps.store.outbox.events(key) : [];
  const drafted = events.find((e): e is DraftedEvent => e.kind === 'drafted');
  if (!key || !drafted) throw new OperationOutcomeError(503, 'transient', `${why}, and raddraft has no record of DiagnosticReport/${id}; try again when the FHIR server answers`);
  const { findings, impression, model, promptVersion } = drafted.draft;
  return { reportKey: key, studyUid: drafted.studyUid, jobId: drafted.jobId, draft: { findings, impression, model, promptVersion }, report: undefined, events };
}

/** The version of the report as raddraft last delivered it to the FHIR server (for checks while that server is down). */
async function deliveredVersion(deps: DecisionDeps, basis: Basis, seq = 0): Promise<string | undefined> {
  const ds = await deps.store.outbox.deliveriesOfJob(basis.jobId);
  const ref = ds.find((d) => d.reportKey === basis.reportKey && d.seq === seq && d.output === 'fhir' && d.state === 'delivered')?.reference;
  return ref ? /\/_history\/(.+)$/.exec(ref)?.[1] : undefined;
}

/** The checks a decision must pass before it is recorded: the same ones whether the FHIR server answers or not. */
/** The report's latest event that still stands: a decision the FHIR server refused (called off everywhere) does not. */
async function standingLatest(deps: DecisionDeps, basis: Basis): Promise<ReportEvent | undefined> {
  const deliveries = await deps.store.outbox.deliveriesOfJob(basis.jobId);
  const calledOff = (e: ReportEvent) => {
    const mine = deliveries.filter((d) => d.eventId === e.id);
    return e.kind !== 'drafted' && mine.length > 0 && mine.every((d) => d.state === 'cancelled');
  };
  return [...basis.events].reverse().find((e) => !calledOff(e));
}

async function check(deps: DecisionDeps, id: string, basis: Basis, decision: Decision, by: Actor, latest: ReportEvent | undefined): Promise<'new' | 'repeat'> {
  if (decision.kind === 'corrected') return checkCorrection(deps, id, basis, decision, by, latest);
  const report = basis.report;
  if (report) {
    if (decision.kind === 'signed' && SIGNED_REPORT_STATUSES.includes(report.status)) {
      const same = report.resultsInterpreter?.some((r) => r.reference === by.reference) && !!basis.current && sameText(basis.current, decision);
      if (same) return 'repeat';
      throw alreadySignedDifferently(id);
    }
    if (decision.kind === 'rejected' && report.status === 'cancelled') return 'repeat';
    if (report.status !== 'preliminary' && report.status !== 'partial') {
      throw new OperationOutcomeError(409, 'conflict', `DiagnosticReport/${id} is ${report.status}; only an unverified draft can be ${decision.kind === 'signed' ? 'signed' : 'rejected'}`);
    }
    if (report.meta?.versionId !== decision.version) throw conflict(decision.version, report.meta?.versionId);
  } else {
    const known = await deliveredVersion(deps, basis);
    if (known !== undefined && known !== decision.version) throw conflict(decision.version, known);
  }
  if (latest && latest.kind !== 'drafted') {
    const same = latest.kind === decision.kind && 'by' in latest && latest.by.reference === by.reference &&
      (decision.kind === 'rejected' || (latest.kind === 'signed' && sameText(latest, decision)));
    if (same) return 'repeat';
    throw new OperationOutcomeError(409, 'conflict', `DiagnosticReport/${id} already has a ${latest.kind === 'signed' ? 'signature' : 'decision'} recorded (${latest.kind} at ${latest.at}) that is still being delivered. Nothing was saved: reload the draft.`);
  }
  return 'new';
}

type Correction = Extract<Decision, { kind: 'corrected' }>;

/** The text of a correction or addendum, as the report will stand after it. */
function correctedText(latest: ReportEvent | undefined, basis: Basis, decision: Correction): { findings: string; impression: string; addenda: string[] } {
  const signed = latest && (latest.kind === 'signed' || latest.kind === 'corrected') ? latest : undefined;
  const addenda = signed?.addenda ?? [];
  if (decision.mode === 'correction') return { findings: decision.findings, impression: decision.impression, addenda };
  const standing = signed ?? basis.current ?? { findings: '', impression: '' };
  return { findings: standing.findings, impression: standing.impression, addenda: [...addenda, decision.addendum] };
}

/**
 * A correction or addendum applies to a signed report, at the version the radiologist read, once every earlier
 * decision has reached the FHIR server; the same one sent again (its answer was lost) is a repeat.
 */
async function checkCorrection(deps: DecisionDeps, id: string, basis: Basis, decision: Correction, by: Actor, latest: ReportEvent | undefined): Promise<'new' | 'repeat'> {
  const what = decision.mode === 'correction' ? 'corrected' : 'given an addendum';
  if (latest?.kind === 'corrected' && latest.by.reference === by.reference && latest.reviewedVersion === decision.version &&
    (latest.mode ?? 'correction') === decision.mode && latest.reason === decision.reason) {
    const again = correctedText(basis.events.filter((e) => e.seq < latest.seq).at(-1), basis, decision);
    if (sameText(latest, again) && (latest.addenda ?? []).join('\n') === again.addenda.join('\n')) return 'repeat';
  }
  const report = basis.report;
  if (report) {
    if (!SIGNED_REPORT_STATUSES.includes(report.status)) {
      throw new OperationOutcomeError(409, 'conflict', `DiagnosticReport/${id} is ${report.status}; only a signed report can be ${what}${report.status === 'partial' || report.status === 'preliminary' ? ': sign the draft instead' : ''}`);
    }
    if (report.meta?.versionId !== decision.version) throw conflict(decision.version, report.meta?.versionId);
  } else if (latest) {
    const known = await deliveredVersion(deps, basis, latest.seq);
    if (known === undefined) throw new OperationOutcomeError(409, 'conflict', `DiagnosticReport/${id} has a ${latest.kind} event (at ${latest.at}) that has not reached the FHIR server yet. Nothing was saved: try again when it has.`);
    if (known !== decision.version) throw conflict(decision.version, known);
  }
  if (latest && latest.kind !== 'signed' && latest.kind !== 'corrected' && !report) {
    throw new OperationOutcomeError(409, 'conflict', `DiagnosticReport/${id} is not signed; only a signed report can be ${what}`);
  }
  return 'new';
}

/** The FHIR status a decision gives the report. */
function statusAfter(decision: Decision): Exclude<DecisionResult['status'], 'recorded'> {
  if (decision.kind === 'corrected') return decision.mode === 'correction' ? 'corrected' : 'appended';
  return decision.kind === 'signed' ? 'final' : 'cancelled';
}

/** Makes sure a report drafted before the outbox existed has its draft event, so decisions follow it. */
async function adopt(deps: DecisionDeps, basis: Basis): Promise<Basis> {
  if (basis.events.length > 0) return basis;
  const job = await deps.store.findByStudy(basis.studyUid);
  const at = new Date().toISOString();
  const draft = job?.draft ?? { ...basis.draft, text: '', requestId: undefined, draftedAt: at };
  const event: NewReportEvent = { kind: 'drafted', reportKey: basis.reportKey, studyUid: basis.studyUid, jobId: basis.jobId, at, images: job?.images ?? [], draft };
  // The draft is on the FHIR server already: no output receives it again.
  const { event: recorded } = await deps.store.outbox.record(event, [], -1);
  return { ...basis, events: [recorded] };
}

function newEvent(basis: Basis, decision: Decision, by: Actor, latest: ReportEvent | undefined): NewReportEvent {
  const base = { reportKey: basis.reportKey, studyUid: basis.studyUid, jobId: basis.jobId, at: new Date().toISOString(), by, reviewedVersion: decision.version };
  if (decision.kind === 'corrected') {
    const text = correctedText(latest, basis, decision);
    const corrected: Omit<SignedEvent, 'id' | 'seq'> = {
      ...base, kind: 'corrected', mode: decision.mode, reason: decision.reason, findings: text.findings, impression: text.impression,
      ...(text.addenda.length ? { addenda: text.addenda } : {}),
    };
    return corrected;
  }
  return decision.kind === 'signed'
    ? { ...base, kind: 'signed', findings: decision.findings, impression: decision.impression }
    : { ...base, kind: 'rejected', reason: decision.reason };
}

/**
 * Records a radiologist's signature or rejection as a report event, then delivers it to the FHIR server in this
 * request (the radiologist learns at once whether it was accepted); the other outputs receive it from the outbox.
 * A conflict at the FHIR server withdraws the event before any other output has it. With the FHIR server down, the
 * decision is checked against raddraft's own record, recorded, and delivered when the server answers.
 */
export async function decide(deps: DecisionDeps, id: string, decision: Decision, by: Actor): Promise<DecisionResult> {
  if (!/^[A-Za-z0-9\-.]{1,64}$/.test(id)) throw new OperationOutcomeError(400, 'invalid', `"${id}" is not a FHIR resource id`);
  let basis: Basis;
  try {
    basis = await basisFromServer(deps, id, await readDraft(deps.fhir, id));
  } catch (err) {
    if (faultOf(err).kind !== 'wait') throw err;
    basis = await basisFromRecord(deps, id, (err as Error).message);
  }
  const latest = await standingLatest(deps, basis);
  const verdict = await check(deps, id, basis, decision, by, latest);
  const distance = decision.kind === 'signed' ? editDistance(reportText(basis.draft.findings, basis.draft.impression), reportText(decision.findings, decision.impression)) : undefined;
  if (verdict === 'repeat') return repeated(deps, id, basis, decision, distance);
  basis = await adopt(deps, basis);
  const outputs = deps.deliveries.outputNames;
  const owner = deps.deliveries.owner;
  let recorded: { event: ReportEvent; deliveries: Delivery[] };
  try {
    recorded = await deps.store.outbox.record(newEvent(basis, decision, by, latest), outputs, basis.events.at(-1)!.seq, {
      holdUntil: Date.now() + HOLD_MS,
      ...(outputs.includes('fhir') ? { claimFor: { output: 'fhir', owner, leaseMs: HOLD_MS } } : {}),
    });
  } catch (err) {
    if (err instanceof StaleEventError) throw new OperationOutcomeError(409, 'conflict', `Another decision on DiagnosticReport/${id} was recorded a moment ago. Nothing was saved: reload the draft.`);
    throw err;
  }
  const fhirDelivery = recorded.deliveries.find((d) => d.output === 'fhir');
  const done = fhirDelivery ? await deps.deliveries.deliver(fhirDelivery) : undefined;
  if (done?.state === 'dead') {
    await deps.store.outbox.withdraw(recorded.event.id);
    throw new OperationOutcomeError(409, 'conflict', done.lastError ?? 'the FHIR server refused the change');
  }
  // The other outputs receive the decision once the FHIR server has it (the runner lets them go when it delivers
  // it later), or when the hold runs out.
  if (!fhirDelivery) await deps.store.outbox.releaseHeld(recorded.event.id);
  deps.deliveries.wake();
  if (decision.kind !== 'corrected') await recordQuality(deps, id, basis, decision, by, distance);
  const pending = (await deps.store.outbox.deliveriesOfJob(basis.jobId))
    .filter((d) => d.eventId === recorded.event.id && d.state === 'pending')
    .map((d) => ({ output: d.output, reason: d.lastError }));
  const delivered = done?.state === 'delivered';
  deps.log.info({ reportRef: reportRefOf(id), studyUid: basis.studyUid, signer: by.reference, event: recorded.event.id, delivered }, LOG_WORDS[statusAfter(decision)]);
  return {
    reportRef: reportRefOf(id),
    status: delivered ? statusAfter(decision) : 'recorded',
    version: delivered && done.reference ? /\/_history\/(.+)$/.exec(done.reference)?.[1] : undefined,
    ...(distance !== undefined ? { editDistance: distance } : {}),
    pending,
  };
}

const LOG_WORDS = { final: 'draft signed', cancelled: 'draft rejected', corrected: 'signed report corrected', appended: 'addendum appended to a signed report' } as const;

/**
 * The answer to a decision sent again (its answer was lost): the same as the first, so a decision the FHIR server
 * does not have yet is `recorded`, never `final`.
 */
async function repeated(deps: DecisionDeps, id: string, basis: Basis, decision: Decision, distance: number | undefined): Promise<DecisionResult> {
  const done = statusAfter(decision);
  const atServer = basis.report?.status === done;
  const latest = basis.events.at(-1);
  const pending = atServer || !latest ? [] : (await deps.store.outbox.deliveriesOfJob(basis.jobId))
    .filter((d) => d.eventId === latest.id && d.state === 'pending')
    .map((d) => ({ output: d.output, reason: d.lastError }));
  return {
    reportRef: reportRefOf(id), status: atServer ? done : 'recorded', version: atServer ? basis.report?.meta?.versionId : undefined,
    ...(distance !== undefined ? { editDistance: 0 } : {}), pending,
  };
}

async function recordQuality(deps: DecisionDeps, id: string, basis: Basis, decision: Decision, by: Actor, distance: number | undefined): Promise<void> {
  const before = reportText(basis.draft.findings, basis.draft.impression);
  await deps.store.recordReview({
    reportRef: unversioned(reportRefOf(id)), studyUid: basis.studyUid, model: basis.draft.model, promptVersion: basis.draft.promptVersion,
    outcome: decision.kind === 'signed' ? 'signed' : 'rejected', editDistance: distance, draftChars: before.length,
    finalChars: decision.kind === 'signed' ? reportText(decision.findings, decision.impression).length : undefined,
    signer: by.reference, at: Date.now(),
  });
}
