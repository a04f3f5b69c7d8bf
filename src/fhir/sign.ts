import type { DiagnosticReport, Provenance, ProvenanceAgent, Task } from '@medplum/fhirtypes';
import { OperationOutcomeError } from '../util/operation-outcome.js';
import { parseReport } from '../report/sections.js';
import { editDistance, reportText } from '../report/edit-distance.js';
import { FhirError, type FhirGateway } from './client.js';
import { AIAST, AI_DEVICE_TYPE, DRAFT_BANNER, REVIEW_REQUIRED, System } from './codes.js';

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
}

const SIGNED_TAG = { system: System.workflow, code: 'signed', display: 'Reviewed and signed by a radiologist' };
const REJECTED_TAG = { system: System.workflow, code: 'rejected', display: 'Rejected by a radiologist' };

const escapeXml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

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
    const parsed = parseReport(text.replace(/^[\s\S]*?(?=FINDINGS:)/, '').replace(/\nREVIEW FLAGS \(raddraft checks\):[\s\S]*$/, ''));
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
  const [tasks, provenances] = await Promise.all([
    fhir.search<Task>('Task', { focus: `DiagnosticReport/${id}`, code: `${System.taskCode}|approve` }),
    fhir.search<Provenance>('Provenance', { target: `DiagnosticReport/${id}` }),
  ]);
  const aiAuthor = provenances
    .flatMap((p) => p.agent)
    .find((a) => a.role?.some((r) => r.coding?.some((c) => c.code === AI_DEVICE_TYPE.code)) && a.who.reference)?.who;
  const task = tasks.find((t) => t.id) as (Task & { id: string }) | undefined;
  return {
    report: report as DiagnosticReport & { id: string },
    findings,
    impression,
    ...draftOrigin(text),
    studyUid: key.slice(0, key.indexOf('_')),
    task,
    aiAuthor,
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

function signedText(draft: ReviewedDraft, edit: { findings: string; impression: string }, signer: Signer, at: string): string {
  return [
    `AI-ASSISTED REPORT — drafted by ${draft.model} (prompt ${draft.promptVersion}), reviewed and signed by ${signer.display ?? signer.reference} on ${at}.`,
    '',
    'FINDINGS:',
    edit.findings,
    '',
    'IMPRESSION:',
    edit.impression,
    '',
  ].join('\n');
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

/**
 * Signs a draft: the report becomes `final` with the signer as results interpreter (written with If-Match on the
 * version the radiologist reviewed), then a signature Provenance is added and the review Task completed. The
 * report update is the gate: the later steps are repeated safely if they fail, by signing again.
 */
export async function signDraft(
  fhir: FhirGateway,
  id: string,
  edit: { findings: string; impression: string; version: string },
  signer: Signer,
  now = new Date(),
): Promise<SignOutcome> {
  const draft = await readDraft(fhir, id);
  const { report } = draft;
  const at = now.toISOString();
  let current: DiagnosticReport = report;
  const alreadySigned = report.status === 'final' && report.resultsInterpreter?.some((r) => r.reference === signer.reference);
  if (alreadySigned && !sameText(draft, edit)) throw alreadySignedDifferently(id);
  if (!alreadySigned) {
    if (report.status === 'final') throw alreadySignedDifferently(id);
    if (report.status !== 'preliminary') {
      throw new OperationOutcomeError(409, 'conflict', `DiagnosticReport/${id} is ${report.status}; only a preliminary draft can be signed`);
    }
    if (report.meta?.versionId !== edit.version) throw conflict(edit.version, report.meta?.versionId);
    const text = signedText(draft, edit, signer, at);
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
      presentedForm: [{
        contentType: 'text/plain; charset=utf-8',
        language: 'en',
        title: `AI-assisted report, signed by ${signer.display ?? signer.reference}`,
        data: Buffer.from(text, 'utf8').toString('base64'),
        creation: at,
      }],
      text: {
        status: 'generated',
        div:
          '<div xmlns="http://www.w3.org/1999/xhtml">' +
          `<p><b>AI-ASSISTED REPORT</b> — drafted by ${escapeXml(draft.model)}, reviewed and signed by ${escapeXml(signer.display ?? signer.reference)} on ${at}.</p>` +
          `<p><b>Findings:</b> ${escapeXml(edit.findings).replace(/\n/g, '<br/>')}</p>` +
          `<p><b>Impression:</b> ${escapeXml(edit.impression).replace(/\n/g, '<br/>')}</p></div>`,
      },
    };
    if (!signed.conclusion) delete signed.conclusion;
    current = await updateIfMatch(fhir, signed, edit.version);
  }

  const provenance: Provenance = {
    resourceType: 'Provenance',
    meta: { tag: [{ system: System.provenanceKey, code: `sign-${id}` }] },
    target: [{ reference: `DiagnosticReport/${id}` }],
    recorded: at,
    reason: [{ coding: [AIAST] }],
    activity: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-DocumentCompletion', code: 'LA', display: 'legally authenticated' }] },
    agent: [
      {
        type: { coding: [{ system: System.provenanceParticipantType, code: 'verifier', display: 'Verifier' }] },
        who: { reference: signer.reference, ...(signer.display ? { display: signer.display } : {}) },
      },
      {
        type: { coding: [{ system: System.provenanceParticipantType, code: 'author', display: 'Author' }] },
        role: [{ coding: [AI_DEVICE_TYPE] }],
        who: draft.aiAuthor ?? { display: draft.model },
      },
    ],
  };
  await fhir.createIfNoneExist(provenance, `_tag=${encodeURIComponent(`${System.provenanceKey}|sign-${id}`)}`);
  if (draft.task && draft.task.status !== 'completed') {
    await completeTask(fhir, draft.task, 'completed', signer, at);
  }
  const before = reportText(draft.findings, draft.impression);
  const after = reportText(edit.findings, edit.impression);
  return {
    reportRef: `DiagnosticReport/${id}`,
    version: current.meta?.versionId,
    editDistance: alreadySigned ? 0 : editDistance(before, after),
    draftChars: before.length,
    finalChars: after.length,
    draft,
  };
}

async function completeTask(fhir: FhirGateway, task: Task & { id: string }, status: 'completed' | 'rejected', signer: Signer, at: string, reason?: string): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const fresh = attempt === 0 ? task : await fhir.read<Task>('Task', task.id);
    if (fresh.status === status) return;
    const updated: Task & { id: string } = {
      ...fresh,
      id: task.id,
      status,
      owner: { reference: signer.reference, ...(signer.display ? { display: signer.display } : {}) },
      lastModified: at,
      executionPeriod: { ...(fresh.executionPeriod ?? {}), end: at },
      ...(reason ? { statusReason: { text: reason } } : {}),
    };
    try {
      await fhir.update(updated, fresh.meta?.versionId);
      return;
    } catch (err) {
      // The task changed under us (a worklist touched it): read it again and retry.
      if (!(err instanceof FhirError && err.status === 412) || attempt === 2) throw err;
    }
  }
}

/** Rejects a draft: the report is `cancelled` (If-Match on the reviewed version) and its Task `rejected`. */
export async function rejectDraft(
  fhir: FhirGateway,
  id: string,
  decision: { reason: string; version: string },
  signer: Signer,
  now = new Date(),
): Promise<{ reportRef: string; draft: ReviewedDraft }> {
  const draft = await readDraft(fhir, id);
  const { report } = draft;
  const at = now.toISOString();
  if (report.status !== 'cancelled') {
    if (report.status !== 'preliminary') {
      throw new OperationOutcomeError(409, 'conflict', `DiagnosticReport/${id} is ${report.status}; only a preliminary draft can be rejected`);
    }
    if (report.meta?.versionId !== decision.version) throw conflict(decision.version, report.meta?.versionId);
    const cancelled: DiagnosticReport & { id: string } = {
      ...report,
      meta: { ...report.meta, tag: [...(report.meta?.tag ?? []).filter((c) => c.system !== System.workflow), REJECTED_TAG] },
      status: 'cancelled',
      text: {
        status: 'generated',
        div: `<div xmlns="http://www.w3.org/1999/xhtml"><p><b>${escapeXml(DRAFT_BANNER.toUpperCase())} — REJECTED</b> by ${escapeXml(signer.display ?? signer.reference)} on ${at}: ${escapeXml(decision.reason)}</p></div>`,
      },
    };
    await updateIfMatch(fhir, cancelled, decision.version);
  }
  if (draft.task && draft.task.status !== 'rejected') await completeTask(fhir, draft.task, 'rejected', signer, at, decision.reason);
  return { reportRef: `DiagnosticReport/${id}`, draft };
}

export { REVIEW_REQUIRED };
