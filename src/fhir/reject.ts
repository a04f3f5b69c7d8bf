import type { DiagnosticReport, Provenance } from '@medplum/fhirtypes';
import { OperationOutcomeError } from '../util/operation-outcome.js';
import type { FhirGateway } from './client.js';
import { REVIEW_REQUIRED, System } from './codes.js';
import { presentedForm, xhtmlDiv, type ReportDocument } from './presented.js';
import { moveTask } from './review-task.js';
import { DEFAULT_SIGN_OPTIONS, DRAFT_STATUSES, conflict, readDraft, updateIfMatch, type ReviewedDraft, type SignOptions, type Signer } from './sign.js';

const REJECTED_TAG = { system: System.workflow, code: 'rejected', display: 'Rejected by a radiologist' };

/**
 * R4 `cancelled`: "the report is unavailable because the measurement was not started or not completed". A rejected
 * draft was never released as a result, so `entered-in-error` ("withdrawn following a previous final release") does
 * not describe it; no report came out of this reading.
 */
const REJECTED_STATUS = 'cancelled';

function statement(signer: Signer, at: string, reason: string, language: string): ReportDocument {
  const who = signer.display ?? signer.reference;
  return {
    headline: [`AI DRAFT REJECTED by ${who} on ${at}.`, 'The AI-generated text was removed: no report was issued from this draft.', `Reason: ${reason}`],
    findings: '(none: the draft was rejected)',
    impression: '(none: the draft was rejected)',
    title: `Rejected AI-generated draft — rejected by ${who}`,
    language,
    creation: at,
  };
}

/**
 * The report as it stands after rejection: status cancelled, and nothing of the AI's text left in the current version
 * (conclusion, coded conclusion, attachments and narrative replaced by the statement that it was rejected). The AI's
 * version stays in the history, where the rejection Provenance points.
 */
function rejectedReport(report: DiagnosticReport & { id: string }, signer: Signer, at: string, reason: string, language: string): DiagnosticReport & { id: string } {
  const doc = statement(signer, at, reason, language);
  const { conclusion: _conclusion, conclusionCode: _codes, ...rest } = report;
  return {
    ...rest,
    meta: {
      ...report.meta,
      tag: [...(report.meta?.tag ?? []).filter((c) => c.system !== System.workflow && c.code !== REVIEW_REQUIRED.code), REJECTED_TAG],
    },
    status: REJECTED_STATUS,
    issued: at,
    presentedForm: presentedForm(doc),
    text: { status: 'generated', div: xhtmlDiv(doc) },
  };
}

function rejectionProvenance(id: string, version: string | undefined, draft: ReviewedDraft, reviewed: string, signer: Signer, at: string, reason: string, options: SignOptions): Provenance {
  const ref = `DiagnosticReport/${id}`;
  return {
    resourceType: 'Provenance',
    meta: { tag: [{ system: System.provenanceKey, code: `reject-${id}` }] },
    target: [{ reference: version ? `${ref}/_history/${version}` : ref }],
    recorded: at,
    reason: [{ text: reason }],
    activity: { coding: [{ system: System.v3DataOperation, code: 'UPDATE', display: 'revise' }], text: 'AI draft rejected' },
    agent: [{
      type: { coding: [{ system: System.provenanceParticipantType, code: 'performer', display: 'Performer' }] },
      who: { reference: signer.reference, ...(signer.display ? { display: signer.display } : {}) },
      ...(signer.reference.startsWith('Practitioner/') ? { onBehalfOf: options.onBehalfOf } : {}),
    }],
    // The AI's text is taken out of the current version; the version that held it stays in the history.
    entity: [{ role: 'removal', what: { reference: `${ref}/_history/${draft.aiVersion ?? reviewed}`, display: 'the rejected AI-generated draft' } }],
  };
}

/**
 * Rejects a draft: the report is `cancelled` with no AI text left (If-Match on the reviewed version), a Provenance
 * records who rejected it, when and why, and the review Task ends `rejected` (R4: the performer decided not to carry
 * out the task — here, not to approve the draft).
 */
export async function rejectDraft(
  fhir: FhirGateway,
  id: string,
  decision: { reason: string; version: string },
  signer: Signer,
  now = new Date(),
  options: SignOptions = DEFAULT_SIGN_OPTIONS,
): Promise<{ reportRef: string; version: string | undefined; draft: ReviewedDraft }> {
  const draft = await readDraft(fhir, id);
  const { report } = draft;
  const at = now.toISOString();
  let current: DiagnosticReport = report;
  if (report.status !== REJECTED_STATUS) {
    if (!DRAFT_STATUSES.includes(report.status)) {
      throw new OperationOutcomeError(409, 'conflict', `DiagnosticReport/${id} is ${report.status}; only an unverified draft can be rejected`);
    }
    if (report.meta?.versionId !== decision.version) throw conflict(decision.version, report.meta?.versionId);
    current = await updateIfMatch(fhir, rejectedReport(report, signer, at, decision.reason, options.language), decision.version);
  }
  const version = current.meta?.versionId;
  await fhir.createIfNoneExist(rejectionProvenance(id, version, draft, decision.version, signer, at, decision.reason, options), `_tag=${encodeURIComponent(`${System.provenanceKey}|reject-${id}`)}`);
  if (draft.task) await moveTask(fhir, draft.task, { status: 'rejected', reason: decision.reason }, signer, at);
  return { reportRef: `DiagnosticReport/${id}`, version, draft };
}
