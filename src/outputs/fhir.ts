import type { DiagnosticReport, Reference } from '@medplum/fhirtypes';
import type { StudySource } from '../dicom/study-source.js';
import type { FhirGateway } from '../fhir/client.js';
import { System } from '../fhir/codes.js';
import { publishDraft, resolveLinks, studyEffective } from '../fhir/publish.js';
import { recordAudit, type AuditAction, type AuditInput } from '../fhir/audit.js';
import { correctReport } from '../fhir/correct.js';
import { rejectDraft } from '../fhir/reject.js';
import { DEFAULT_SIGN_OPTIONS, signDraft, type SignOptions } from '../fhir/sign.js';
import { phi } from '../log.js';
import { PROMPT_VERSIONS, promptTemplate } from '../model/prompt.js';
import type { DeliveryContext, DeliveryOutcome, ReportOutput } from '../report/output.js';
import { correctionMode, type DraftedEvent, type RejectedEvent, type ReportEvent, type SignedEvent } from '../report/report.js';
import { PermanentError } from '../util/faults.js';
import { modelRevision } from './model-revision.js';
import { outcomeOf } from './outcome.js';

/** How reports are written: the draft status, the report language, and the model Device's card, owner and contact. */
export interface FhirReportSettings {
  draftStatus: 'partial' | 'preliminary';
  language: string;
  modelCardUrl: string;
  organization: string | undefined;
  modelContact: string | undefined;
}

export const DEFAULT_REPORT_SETTINGS: FhirReportSettings = {
  draftStatus: 'partial', language: 'en', modelCardUrl: 'https://huggingface.co/lingshu-medical-mllm/Lingshu-7B', organization: undefined, modelContact: undefined,
};

export interface FhirOutputDeps {
  fhir: FhirGateway;
  studies: StudySource;
  software: { name: string; version: string };
  modelEndpoint: string;
  /** Defaults: DEFAULT_REPORT_SETTINGS. */
  report?: FhirReportSettings;
  /** Bearer key of the model server, to ask it for the model's revision. */
  modelApiKey?: string;
  /** Where AuditEvents go (RADDRAFT_AUDIT_URL); the FHIR server itself when absent. */
  audit?: FhirGateway;
  /** How long to wait for a FHIR server (or PACS) that does not answer before trying again. */
  waitMs: number;
}

const versioned = (ref: string, version: string | undefined) => (version ? `${ref}/_history/${version}` : ref);

/**
 * The FHIR server: the draft as one transaction of conditional creates (DiagnosticReport, AI Device, prompt,
 * Provenance, review Task), then the radiologist's signature or rejection as updates with If-Match on the version
 * they reviewed. Idempotent by the report's identifier (conditional create) and by the signature Provenance's tag.
 */
export function fhirOutput(deps: FhirOutputDeps): ReportOutput {
  const { fhir } = deps;
  const settings = deps.report ?? DEFAULT_REPORT_SETTINGS;
  const owner = settings.organization;
  const signOptions: SignOptions = {
    language: settings.language,
    onBehalfOf: owner?.startsWith('Organization/') ? { reference: owner } : { display: owner ?? DEFAULT_SIGN_OPTIONS.onBehalfOf.display! },
  };

  const audit = (action: AuditAction, event: ReportEvent, report: string, patient: Reference | undefined, who: AuditInput['who'], detail: string) =>
    recordAudit(deps.audit ?? fhir, { action, key: event.id, report, patient, who, software: deps.software, at: event.at, detail });

  async function drafted(event: DraftedEvent): Promise<{ reference: string; note: string }> {
    const ctx = await deps.studies.studyContext(event.studyUid);
    return phi.during([ctx.patientId, ctx.accession], async () => {
      const links = await resolveLinks(fhir, ctx);
      if (!links.subject) {
        throw new PermanentError('the study has no Patient ID and no ImagingStudy on the FHIR server names its patient; raddraft posts no report it cannot attach to a patient');
      }
      const effective = studyEffective(ctx);
      if (!effective) throw new PermanentError('the study has no valid Study Date (0008,0020); raddraft posts no report without the time of the exam (effective[x])');
      const revision = await modelRevision(deps.modelEndpoint, event.draft.model, deps.modelApiKey);
      // The clinical-context prompt quotes the order's indication and the patient's age band and sex: inputs too.
      const contextInputs = event.draft.promptVersion === PROMPT_VERSIONS['clinical-context'] ? [
        ...(links.basedOn ? [{ what: links.basedOn, display: 'the order\'s indication, quoted in the prompt' }] : []),
        { what: links.subject, display: 'the patient\'s age band and sex, quoted in the prompt' },
      ] : [];
      const published = await publishDraft(fhir, {
        studyUid: event.studyUid, effective, subject: links.subject, imagingStudy: links.imagingStudy,
        basedOn: links.basedOn, order: links.order, images: event.images, draft: event.draft, prompt: promptTemplate(event.draft.promptVersion),
        model: { name: event.draft.model, endpoint: deps.modelEndpoint, revision, cardUrl: settings.modelCardUrl, owner: settings.organization, contact: settings.modelContact },
        software: deps.software, status: settings.draftStatus, language: settings.language, contextInputs, now: new Date(event.at),
      });
      const reference = versioned(published.reportRef, published.version);
      await audit('drafted', event, reference, links.subject, { reference: published.deviceRef, display: event.draft.model }, `AI draft written by ${event.draft.model} (prompt ${event.draft.promptVersion})`);
      const notes = [published.created ? 'created' : 'already there', ...links.notes, ...(revision ? [] : ['model revision: the model server did not state it'])];
      return { reference, note: notes.join('; ') };
    });
  }

  /** The report's id at this server: from the draft's delivery, else found by the report's identifier. */
  async function reportId(event: ReportEvent, context: DeliveryContext): Promise<string> {
    const ref = context.earlier.find((e) => e.kind === 'drafted')?.reference;
    const id = ref ? /^DiagnosticReport\/([^/]+)/.exec(ref)?.[1] : undefined;
    if (id) return id;
    const found = await fhir.search<DiagnosticReport>('DiagnosticReport', { identifier: `${System.draftReport}|${event.reportKey}` });
    if (found.length !== 1 || !found[0]!.id) throw new PermanentError(`the FHIR server holds ${found.length} reports for ${event.reportKey}; raddraft cannot tell which to change`);
    return found[0]!.id;
  }

  async function signed(event: SignedEvent, context: DeliveryContext): Promise<string> {
    const id = await reportId(event, context);
    const mode = correctionMode(event);
    if (mode) {
      const change = { eventId: event.id, mode, findings: event.findings, impression: event.impression, addenda: event.addenda ?? [], reason: event.reason ?? '', version: event.reviewedVersion };
      const outcome = await correctReport(fhir, id, change, event.by, new Date(event.at), signOptions);
      const reference = versioned(outcome.reportRef, outcome.version);
      await audit('corrected', event, reference, outcome.subject, event.by, mode === 'correction' ? 'signed report corrected by a radiologist' : 'addendum to a signed report by a radiologist');
      return reference;
    }
    const outcome = await signDraft(fhir, id, { findings: event.findings, impression: event.impression, version: event.reviewedVersion }, event.by, new Date(event.at), signOptions);
    const reference = versioned(outcome.reportRef, outcome.version);
    await audit('signed', event, reference, outcome.draft.report.subject, event.by, 'AI draft reviewed and signed by a radiologist');
    return reference;
  }

  async function rejected(event: RejectedEvent, context: DeliveryContext): Promise<string> {
    const id = await reportId(event, context);
    const outcome = await rejectDraft(fhir, id, { reason: event.reason, version: event.reviewedVersion }, event.by, new Date(event.at), signOptions);
    const reference = versioned(outcome.reportRef, outcome.version);
    await audit('rejected', event, reference, outcome.draft.report.subject, event.by, 'AI draft rejected by a radiologist');
    return reference;
  }

  return {
    name: 'fhir',
    async deliver(event: ReportEvent, context: DeliveryContext): Promise<DeliveryOutcome> {
      try {
        if (event.kind === 'drafted') return { kind: 'delivered', ...(await drafted(event)) };
        const reference = event.kind === 'rejected' ? await rejected(event, context) : await signed(event, context);
        return { kind: 'delivered', reference };
      } catch (err) {
        return outcomeOf(err, deps.waitMs);
      }
    },
  };
}
