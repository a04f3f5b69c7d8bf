import type { DiagnosticReport, Provenance, ProvenanceAgent, Task } from '@medplum/fhirtypes';
import { OperationOutcomeError } from '../util/operation-outcome.js';
import { parseReport } from '../report/sections.js';
import { editDistance, reportText } from '../report/edit-distance.js';
import { FhirError, type FhirGateway } from './client.js';
import { AIAST, AI_DEVICE_TYPE, REVIEW_REQUIRED, System } from './codes.js';
import { presentedForm, xhtmlDiv, type ReportDocument } from './presented.js';
import { moveTask } from './review-task.js';

export interface Signer {
  /** Practitioner/<id> or PractitionerRole/<id>, from the signer's token, never from a request body. */
  reference: string;
  display: string | undefined;
}

export interface ReviewedDraft {
  report: DiagnosticReport & { id: string };
  findings: string;
  impression: string;
  model: string;
  promptVersion: string;
  studyUid: string;
  task: (Task & { id: string }) | undefined;
  aiAuthor: ProvenanceAgent['who'] | undefined;
  /** The report version the AI Provenance points at: the AI's own text. */
  aiVersion: string | undefined;
}

/** Where raddraft's Provenances attach: to a version of the report, and on whose behalf its agents act. */
export interface SignOptions {
  language: string;
  /** US Core provenance-1: a Practitioner or Device agent names on whose behalf it acted. */
  onBehalfOf: { reference?: string; display?: string };
}

export const DEFAULT_SIGN_OPTIONS: SignOptions = { language: 'en', onBehalfOf: { display: 'the organization running raddraft' } };

/** R4 statuses of a draft nobody has verified: `partial` (raddraft's default) or `preliminary` (by site choice). */
export const DRAFT_STATUSES: readonly string[] = ['partial', 'preliminary'];

export const SIGNED_TAG = { system: System.workflow, code: 'signed', display: 'Reviewed and signed by a radiologist' };

function fromBase64(data: string | undefined): string {
  return data ? Buffer.from(data, 'base64').toString('utf8') : '';
}

/** Model and prompt version as the draft's attachment states them ("Drafted by <model> (prompt <version>)"). */
export function draftOrigin(text: string): { model: string; promptVersion: string } {
  const m = /Drafted by (\S+) \(prompt ([^)]+)\)/.exec(text);
  return { model: m?.[1] ?? 'unknown', promptVersion: m?.[2] ?? 'unknown' };
}

/**
 * Findings and impression of a report raddraft wrote (draft or signed): the sections of its text attachment, after
 * the banner lines and before raddraft's review flags; the impression falls back to `conclusion`. A text without
 * sections gives empty findings (the radiologist writes them).
 */
export function reportSections(report: DiagnosticReport): { text: string; findings: string; impression: string } {
  const text = fromBase64(report.presentedForm?.[0]?.data);
  let findings = '';
  let impression = report.conclusion ?? '';
  try {
    const parsed = parseReport(text.replace(/^[\s\S]*?(?=FINDINGS:)/, '').replace(/\n(REVIEW FLAGS \(raddraft checks\)|ADDENDUM \d+):[\s\S]*$/, ''));
    findings = parsed.findings;
    impression = parsed.impression || impression;
  } catch {
    // No sections: findings stay empty.
  }
  return { text, findings, impression };
}

/** Reads a report raddraft drafted, with its review task and the AI author of its provenance. */
export async function readDraft(fhir: FhirGateway, id: string): Promise<ReviewedDraft> {
  if (!/^[A-Za-z0-9\-.]{1,64}$/.test(id)) throw new OperationOutcomeError(400, 'invalid', `"${id}" is not a FHIR resource id`);
  let report: DiagnosticReport;
  try {
    report = await fhir.read<DiagnosticReport>('DiagnosticReport', id);
  } catch (err) {
    if (err instanceof FhirError && (err.status === 404 || err.status === 410)) {
      throw new OperationOutcomeError(404, 'not-found', `DiagnosticReport/${id} does not exist on the FHIR server`);
    }
    throw err;
  }
  const key = report.identifier?.find((i) => i.system === System.draftReport)?.value;
  if (!key) throw new OperationOutcomeError(404, 'not-found', `DiagnosticReport/${id} was not drafted by raddraft`);
  const { text, findings, impression } = reportSections(report);
  // The AI Provenance points at a version of the report, so it is found by its key (older ones by the report).
  const [tasks, tagged, untagged] = await Promise.all([
    fhir.search<Task>('Task', { focus: `DiagnosticReport/${id}`, code: `${System.taskCode}|approve` }),
    fhir.search<Provenance>('Provenance', { _tag: `${System.provenanceKey}|${key}` }),
    fhir.search<Provenance>('Provenance', { target: `DiagnosticReport/${id}` }),
  ]);
  const isAi = (a: ProvenanceAgent) => a.role?.some((r) => r.coding?.some((c) => c.code === AI_DEVICE_TYPE.code)) && a.who.reference;
  const ai = [...tagged, ...untagged].find((p) => p.activity?.coding?.some((c) => c.code === 'CREATE') && p.agent.some(isAi));
  const aiAuthor = ai?.agent.find(isAi)?.who;
  const aiVersion = ai?.target.map((t) => /\/_history\/([^/]+)$/.exec(t.reference ?? '')?.[1]).find(Boolean);
  const task = tasks.find((t) => t.id) as (Task & { id: string }) | undefined;
  return {
    report: report as DiagnosticReport & { id: string },
    findings,
    impression,
    ...draftOrigin(text),
    studyUid: key.slice(0, key.indexOf('_')),
    task,
    aiAuthor,
    aiVersion,
  };
}

export function conflict(seen: string, now: string | undefined): OperationOutcomeError {
  return new OperationOutcomeError(
    409,
    'conflict',
    `Someone changed this draft after you opened it (you reviewed version ${seen}, it is now version ${now ?? 'newer'}). ` +
      'Nothing was saved and your text is kept on the page: reload the draft, compare, and sign again.',
  );
}

/** Whether a signature repeats the text already signed (a retry), ignoring surrounding white space. */
export function sameText(a: { findings: string; impression: string }, b: { findings: string; impression: string }): boolean {
  const norm = (t: string) => t.replace(/\s+/g, ' ').trim();
  return norm(a.findings) === norm(b.findings) && norm(a.impression) === norm(b.impression);
}

export function alreadySignedDifferently(id: string): OperationOutcomeError {
  return new OperationOutcomeError(
    409,
    'conflict',
    `DiagnosticReport/${id} is already signed (final) with different text. Nothing was saved: a signed report is changed by a correction, not by signing it again.`,
  );
}

function signedDocument(draft: ReviewedDraft, edit: { findings: string; impression: string }, signer: Signer, at: string, language: string): ReportDocument {
  const who = signer.display ?? signer.reference;
  return {
    headline: [`AI-ASSISTED REPORT — drafted by ${draft.model} (prompt ${draft.promptVersion}), reviewed and signed by ${who} on ${at}.`],
    findings: edit.findings,
    impression: edit.impression,
    title: `AI-assisted report, signed by ${who}`,
    language,
    creation: at,
  };
}

export interface SignOutcome {
  reportRef: string;
  version: string | undefined;
  editDistance: number;
  draftChars: number;
  finalChars: number;
  draft: ReviewedDraft;
}

/** Updates with If-Match on the reviewed version; the server's 409/412 becomes the "someone changed it" answer. */
export async function updateIfMatch(fhir: FhirGateway, resource: DiagnosticReport & { id: string }, version: string): Promise<DiagnosticReport> {
  try {
    return await fhir.update(resource, version);
  } catch (err) {
    if (err instanceof FhirError && (err.status === 409 || err.status === 412)) throw conflict(version, undefined);
    throw err;
  }
}

function signedReport(draft: ReviewedDraft, edit: { findings: string; impression: string }, signer: Signer, at: string, language: string): DiagnosticReport & { id: string } {
  const { report } = draft;
  const doc = signedDocument(draft, edit, signer, at, language);
  const signed: DiagnosticReport & { id: string } = {
    ...report,
    meta: {
      ...report.meta,
      security: [...(report.meta?.security ?? []).filter((c) => c.code !== AIAST.code), AIAST],
      tag: [...(report.meta?.tag ?? []).filter((c) => !(c.system === System.workflow)), SIGNED_TAG],
    },
    status: 'final',
    issued: at,
    resultsInterpreter: [{ reference: signer.reference, ...(signer.display ? { display: signer.display } : {}) }],
    conclusion: edit.impression || undefined,
    presentedForm: presentedForm(doc),
    text: { status: 'generated', div: xhtmlDiv(doc) },
  };
  if (!signed.conclusion) delete signed.conclusion;
  return signed;
}

/**
 * The two agents of every version a radiologist legally authenticates: the radiologist as verifier and the model as
 * author of the text it started from. US Core provenance-1: a Practitioner or Device agent acts on behalf of the
 * organization.
 */
export function verifierAgents(signer: Signer, aiAuthor: NonNullable<ProvenanceAgent['who']>, options: SignOptions): ProvenanceAgent[] {
  return [
    {
      type: { coding: [{ system: System.provenanceParticipantType, code: 'verifier', display: 'Verifier' }] },
      who: { reference: signer.reference, ...(signer.display ? { display: signer.display } : {}) },
      ...(signer.reference.startsWith('Practitioner/') ? { onBehalfOf: options.onBehalfOf } : {}),
    },
    {
      type: { coding: [{ system: System.provenanceParticipantType, code: 'author', display: 'Author' }] },
      role: [{ coding: [AI_DEVICE_TYPE] }],
      who: aiAuthor,
      ...(aiAuthor.reference?.startsWith('Device/') ? { onBehalfOf: options.onBehalfOf } : {}),
    },
  ];
}

/** The verifier Provenance of a version a radiologist signed: the AI's version is the `revision` it was made from. */
export function verifierProvenance(ref: string, version: string | undefined, draft: ReviewedDraft, signer: Signer, at: string, options: SignOptions): Provenance {
  return {
    resourceType: 'Provenance',
    meta: { tag: [{ system: System.provenanceKey, code: `sign-${ref.split('/')[1]}` }] },
    target: [{ reference: version ? `${ref}/_history/${version}` : ref }],
    recorded: at,
    reason: [{ coding: [AIAST] }],
    activity: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-DocumentCompletion', code: 'LA', display: 'legally authenticated' }] },
    agent: verifierAgents(signer, draft.aiAuthor ?? { display: draft.model }, options),
    ...(draft.aiVersion ? { entity: [{ role: 'revision' as const, what: { reference: `${ref}/_history/${draft.aiVersion}`, display: 'the AI-generated draft' } }] } : {}),
  };
}

/**
 * Signs a draft: the report becomes `final` with the signer as results interpreter (written with If-Match on the
 * version the radiologist reviewed), then a verifier Provenance on the signed version, and the review Task completed
 * with the report as its output. The report update is the gate: the later steps are repeated safely by signing again.
 */
export async function signDraft(
  fhir: FhirGateway,
  id: string,
  edit: { findings: string; impression: string; version: string },
  signer: Signer,
  now = new Date(),
  options: SignOptions = DEFAULT_SIGN_OPTIONS,
): Promise<SignOutcome> {
  const draft = await readDraft(fhir, id);
  const { report } = draft;
  const at = now.toISOString();
  let current: DiagnosticReport = report;
  const alreadySigned = report.status === 'final' && report.resultsInterpreter?.some((r) => r.reference === signer.reference);
  if (alreadySigned && !sameText(draft, edit)) throw alreadySignedDifferently(id);
  if (!alreadySigned) {
    if (SIGNED_STATUSES.includes(report.status)) throw alreadySignedDifferently(id);
    if (!DRAFT_STATUSES.includes(report.status)) {
      throw new OperationOutcomeError(409, 'conflict', `DiagnosticReport/${id} is ${report.status}; only an unverified draft can be signed`);
    }
    if (report.meta?.versionId !== edit.version) throw conflict(edit.version, report.meta?.versionId);
    current = await updateIfMatch(fhir, signedReport(draft, edit, signer, at, options.language), edit.version);
  }
  const ref = `DiagnosticReport/${id}`;
  const version = current.meta?.versionId;
  await fhir.createIfNoneExist(verifierProvenance(ref, version, draft, signer, at, options), `_tag=${encodeURIComponent(`${System.provenanceKey}|sign-${id}`)}`);
  if (draft.task) await moveTask(fhir, draft.task, { status: 'completed', output: version ? `${ref}/_history/${version}` : ref }, signer, at);
  const before = reportText(draft.findings, draft.impression);
  const after = reportText(edit.findings, edit.impression);
  return {
    reportRef: ref,
    version,
    editDistance: alreadySigned ? 0 : editDistance(before, after),
    draftChars: before.length,
    finalChars: after.length,
    draft,
  };
}

/** Statuses of a signed report (R4 `final`, and `amended` with its kinds `corrected` and `appended`). */
export const SIGNED_STATUSES: readonly string[] = ['final', 'amended', 'corrected', 'appended'];

export { REVIEW_REQUIRED };
