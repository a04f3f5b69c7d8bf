import type { ServiceRequest } from '@medplum/fhirtypes';
import type { StudySource } from '../dicom/study-source.js';
import type { FhirGateway } from '../fhir/client.js';
import type { Job } from './job-store.js';
import { phi } from '../log.js';
import { ageBand, sexOf, type ClinicalContext } from '../model/clinical-context.js';

const VIEW_WORDS: Record<string, string> = { PA: 'PA', AP: 'AP', LATERAL: 'lateral', UNKNOWN: 'frontal' };

/** The indication of the order with this accession number: its reason codes as text. */
async function indication(fhir: FhirGateway, accession: string): Promise<string | undefined> {
  const orders = await fhir.search<ServiceRequest>('ServiceRequest', { identifier: accession });
  if (orders.length !== 1) return undefined;
  const reasons = (orders[0]!.reasonCode ?? []).map((r) => r.text ?? r.coding?.find((c) => c.display)?.display).filter((t): t is string => !!t);
  return reasons.length ? reasons.join('; ') : undefined;
}

/**
 * Gathers the clinical context for the prompt from the PACS (age band, sex, study description) and the order on
 * the FHIR server (indication). The patient's identifiers and birth date are used here and dropped.
 */
export function clinicalContextSource(studies: StudySource, fhir: FhirGateway) {
  return async (job: Job, views: string[]): Promise<ClinicalContext> => {
    const ctx = await studies.studyContext(job.studyUid);
    return phi.during([ctx.patientId, ctx.accession, ctx.birthDate], async () => {
      const reason = ctx.accession ? await indication(fhir, ctx.accession) : undefined;
      const band = ageBand(ctx.birthDate, ctx.studyDate);
      const sex = sexOf(ctx.sex);
      return {
        ...(band ? { ageBand: band } : {}),
        ...(sex ? { sex } : {}),
        views: views.map((v) => VIEW_WORDS[v] ?? v.toLowerCase()),
        ...(ctx.description ? { studyDescription: ctx.description } : {}),
        ...(reason ? { indication: reason } : {}),
      };
    });
  };
}
