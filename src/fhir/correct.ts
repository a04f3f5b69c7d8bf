import type { DiagnosticReport, Provenance } from '@medplum/fhirtypes';
import { OperationOutcomeError } from '../util/operation-outcome.js';
import type { CorrectionMode } from '../report/report.js';
import type { FhirGateway } from './client.js';
import { AIAST, System } from './codes.js';
import { presentedForm, xhtmlDiv, type ReportDocument } from './presented.js';
import { DEFAULT_SIGN_OPTIONS, SIGNED_STATUSES, SIGNED_TAG, conflict, readDraft, updateIfMatch, type SignOptions, type Signer, verifierAgents } from './sign.js';

export { SIGNED_STATUSES as SIGNED_REPORT_STATUSES } from './sign.js';

export interface Change {
  /** The raddraft report event this change is: tagged on the report, so a retry sees it landed. */
  eventId: string;
  mode: CorrectionMode;
  findings: string;
  impression: string;
  addenda: string[];
  reason: string;
  /** The version the radiologist read (If-Match). */
  version: string;
}

/**
 * R4: `corrected` — "modified to correct an error in the report"; `appended` — "modified by adding new content. The
 * existing content is unchanged". Both are kinds of `amended`, which raddraft does not write: every change it makes
 * is one or the other.
 */
const STATUS: Record<CorrectionMode, 'corrected' | 'appended'> = { correction: 'corrected', addendum: 'appended' };

function document(change: Change, origin: { model: string; promptVersion: string }, signer: Signer, at: string, language: string): ReportDocument {
  const who = signer.display ?? signer.reference;
  const what = change.mode === 'correction' ? `CORRECTED by ${who} on ${at}` : `ADDENDUM by ${who} on ${at}`;
  return {
    headline: [`AI-ASSISTED REPORT — ${what}.`, `Reason: ${change.reason}`, `First drafted by ${origin.model} (prompt ${origin.promptVersion}); every version is kept in the report's history.`],
    findings: change.findings,
    impression: change.impression,
    addenda: change.addenda,
    title: change.mode === 'correction' ? `AI-assisted report, corrected and signed by ${who}` : `AI-assisted report with addendum, signed by ${who}`,
    language,
    creation: at,
  };
}

function eventTag(eventId: string) {
  return { system: System.reportEvent, code: eventId };
}

/**
 * Writes a correction or addendum to a signed report: the report's new text and status (If-Match on the version the
 * radiologist read), then a verifier Provenance for the new version that names the version it revises. A retry
 * finds its own event's tag on the report and only completes what is missing.
 */
export async function correctReport(fhir: FhirGateway, id: string, change: Change, signer: Signer, now = new Date(), options: SignOptions = DEFAULT_SIGN_OPTIONS): Promise<{ reportRef: string; version: string | undefined; subject: DiagnosticReport['subject'] }> {
  const draft = await readDraft(fhir, id);
  const { report } = draft;
  const at = now.toISOString();
  let current: DiagnosticReport = report;
  const landed = report.meta?.tag?.some((t) => t.system === System.reportEvent && t.code === change.eventId);
  if (!landed) {
    if (!SIGNED_STATUSES.includes(report.status)) {
      throw new OperationOutcomeError(409, 'conflict', `DiagnosticReport/${id} is ${report.status}; only a signed report can be corrected or given an addendum`);
    }
    if (report.meta?.versionId !== change.version) throw conflict(change.version, report.meta?.versionId);
    const doc = document(change, draft, signer, at, options.language);
    const interpreters = change.mode === 'addendum' ? (report.resultsInterpreter ?? []).filter((r) => r.reference !== signer.reference) : [];
    const updated: DiagnosticReport & { id: string } = {
      ...report,
      meta: {
        ...report.meta,
        // Still signed (the workflow tag worklists and eval --production search by); the status says how it changed.
        tag: [...(report.meta?.tag ?? []).filter((c) => c.system !== System.workflow && c.system !== System.reportEvent), SIGNED_TAG, eventTag(change.eventId)],
      },
      status: STATUS[change.mode],
      issued: at,
      resultsInterpreter: [...interpreters, { reference: signer.reference, ...(signer.display ? { display: signer.display } : {}) }],
      conclusion: change.impression || undefined,
      presentedForm: presentedForm(doc),
      text: { status: 'generated', div: xhtmlDiv(doc) },
    };
    if (!updated.conclusion) delete updated.conclusion;
    current = await updateIfMatch(fhir, updated, change.version);
  }
  const version = current.meta?.versionId;
  await fhir.createIfNoneExist(changeProvenance(id, version, change, signer, draft.aiAuthor ?? { display: draft.model }, at, options), `_tag=${encodeURIComponent(`${System.provenanceKey}|${provenanceKey(change.eventId)}`)}`);
  return { reportRef: `DiagnosticReport/${id}`, version, subject: report.subject };
}

const provenanceKey = (eventId: string) => `change-${eventId}`;

function changeProvenance(id: string, version: string | undefined, change: Change, signer: Signer, aiAuthor: NonNullable<Provenance['agent'][number]['who']>, at: string, options: SignOptions): Provenance {
  const ref = `DiagnosticReport/${id}`;
  return {
    resourceType: 'Provenance',
    meta: { tag: [{ system: System.provenanceKey, code: provenanceKey(change.eventId) }] },
    target: [{ reference: version ? `${ref}/_history/${version}` : ref }],
    recorded: at,
    reason: [{ coding: [AIAST] }, { text: change.reason }],
    activity: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-DocumentCompletion', code: 'LA', display: 'legally authenticated' }] },
    agent: verifierAgents(signer, aiAuthor, options),
    entity: [{ role: 'revision', what: { reference: `${ref}/_history/${change.version}` } }],
  };
}
