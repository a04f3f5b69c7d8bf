import type { DiagnosticReport } from '@medplum/fhirtypes';
import type { StudySource } from '../dicom/study-source.js';
import type { FhirGateway } from '../fhir/client.js';
import { System } from '../fhir/codes.js';
import { publishDraft, resolveLinks, studyEffective } from '../fhir/publish.js';
import { correctReport } from '../fhir/correct.js';
import { rejectDraft, signDraft } from '../fhir/sign.js';
import { phi } from '../log.js';
import { promptTemplate } from '../model/prompt.js';
import type { DeliveryContext, DeliveryOutcome, ReportOutput } from '../report/output.js';
import { correctionMode, type DraftedEvent, type RejectedEvent, type ReportEvent, type SignedEvent } from '../report/report.js';
import { PermanentError } from '../util/faults.js';
import { outcomeOf } from './outcome.js';

export interface FhirOutputDeps {
  fhir: FhirGateway;
  studies: StudySource;
  software: { name: string; version: string };
  modelEndpoint: string;
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

  async function drafted(event: DraftedEvent): Promise<{ reference: string; note: string }> {
    const ctx = await deps.studies.studyContext(event.studyUid);
    return phi.during([ctx.patientId, ctx.accession], async () => {
      const links = await resolveLinks(fhir, ctx);
      if (!links.subject) {
        throw new PermanentError('the study has no Patient ID and no ImagingStudy on the FHIR server names its patient; raddraft posts no report it cannot attach to a patient');
      }
      const published = await publishDraft(fhir, {
        studyUid: event.studyUid, effective: studyEffective(ctx), subject: links.subject, imagingStudy: links.imagingStudy,
        basedOn: links.basedOn, images: event.images, draft: event.draft, prompt: promptTemplate(event.draft.promptVersion),
        model: { name: event.draft.model, endpoint: deps.modelEndpoint }, software: deps.software, now: new Date(event.at),
      });
      return { reference: versioned(published.reportRef, published.version), note: `${published.created ? 'created' : 'already there'}; ${links.notes.join('; ')}` };
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
      const outcome = await correctReport(fhir, id, change, event.by, new Date(event.at));
      return versioned(outcome.reportRef, outcome.version);
    }
    const outcome = await signDraft(fhir, id, { findings: event.findings, impression: event.impression, version: event.reviewedVersion }, event.by, new Date(event.at));
    return versioned(outcome.reportRef, outcome.version);
  }

  async function rejected(event: RejectedEvent, context: DeliveryContext): Promise<string> {
    const id = await reportId(event, context);
    const outcome = await rejectDraft(fhir, id, { reason: event.reason, version: event.reviewedVersion }, event.by, new Date(event.at));
    return outcome.reportRef;
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
