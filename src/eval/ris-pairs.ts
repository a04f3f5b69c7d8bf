import type { JobStore } from '../jobs/job-store.js';
import type { ProductionPair, ProductionPairs } from './production.js';

/**
 * Drafts paired with the final reports the RIS sent over HL7 (received between `since` and `until`): the latest
 * final report of each study, against the draft it was matched to when it arrived.
 */
export async function risPairs(store: JobStore, range: { since: Date; until: Date }): Promise<ProductionPairs> {
  const pairs: ProductionPair[] = [];
  const unmatched: { id: string; reason: string }[] = [];
  for (const report of await store.risReports.finals(range)) {
    const studyUid = report.studyUid ?? '';
    const job = report.jobId ? await store.get(report.jobId) : undefined;
    const drafted = job ? (await store.outbox.eventsOfJob(job.id)).find((e) => e.kind === 'drafted') : undefined;
    const draft = drafted?.kind === 'drafted' ? drafted.draft : job?.draft;
    if (!draft) {
      unmatched.push({ id: studyUid, reason: `the RIS sent a final report (control ID ${report.controlId}) whose draft is no longer in the job store` });
      continue;
    }
    pairs.push({
      id: studyUid,
      model: draft.model,
      promptVersion: draft.promptVersion,
      draft: { findings: draft.findings, impression: draft.impression },
      final: { findings: report.findings ?? '', impression: report.impression ?? '' },
      finalRef: `HL7 ${report.messageType} ${report.senderFacility}/${report.controlId}`,
      signedAt: report.signedAt,
      origin: 'ris',
    });
  }
  return { pairs, unmatched };
}

/** RIS pairs of studies no other source paired already: a study signed in raddraft's page is counted from there. */
export function withoutPairedStudies(ris: ProductionPair[], others: ProductionPair[]): ProductionPair[] {
  const paired = new Set(others.map((p) => p.id));
  return ris.filter((p) => !paired.has(p.id));
}
