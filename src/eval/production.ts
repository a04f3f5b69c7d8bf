import type { DiagnosticReport, ImagingStudy, ServiceRequest } from '@medplum/fhirtypes';
import { FhirError, type FhirGateway } from '../fhir/client.js';
import { System, dicomUidIdentifier } from '../fhir/codes.js';
import { draftOrigin, reportSections } from '../fhir/sign.js';
import type { StudySource } from '../dicom/study-source.js';
import type { Job, JobStore } from '../jobs/job-store.js';
import { phi } from '../log.js';
import { parseReport, ReplyFormatError } from '../report/sections.js';
import type { SentenceFlag } from '../report/report.js';

/** A draft and the report a radiologist signed for the same study. */
export interface ProductionPair {
  /** The study's UID: the key of a pair (no patient data). */
  id: string;
  model: string;
  promptVersion: string;
  draft: { findings: string; impression: string };
  /** The checks' flags on the draft's sentences, as recorded with the draft (none for a draft read back from FHIR). */
  sentenceFlags?: SentenceFlag[];
  final: { findings: string; impression: string };
  /** DiagnosticReport/<id> of the signed report. */
  finalRef: string;
  signedAt: string | undefined;
  /**
   * live: raddraft's draft signed in place; shadow: a draft kept in the job store beside the radiologist's own report;
   * ris: a draft beside the final report the RIS sent over HL7.
   */
  origin: 'live' | 'shadow' | 'ris';
}

export interface ProductionPairs {
  pairs: ProductionPair[];
  /** Studies with a draft but no signed report yet (or none found), each with why. */
  unmatched: { id: string; reason: string }[];
}

const SIGNED = new Set(['final', 'amended', 'corrected', 'appended']);
const isRaddraftReport = (r: DiagnosticReport) => r.identifier?.some((i) => i.system === System.draftReport) === true;

/** Oldest version first. Version ids are opaque (a server may use UUIDs), so the version's time orders them. */
function byLastUpdated(a: DiagnosticReport, b: DiagnosticReport): number {
  return Date.parse(a.meta?.lastUpdated ?? '') - Date.parse(b.meta?.lastUpdated ?? '');
}

/**
 * Live mode: raddraft's reports signed between `since` and `until` (tag workflow|signed, by `issued`), each compared
 * with the preliminary version it was signed from, read from the report's history. Where the server keeps no
 * history, the draft recorded in the job store for that study is used.
 */
export async function signedDraftPairs(fhir: FhirGateway, store: JobStore | undefined, range: { since: Date; until: Date }): Promise<ProductionPairs> {
  const reports = await fhir.searchAll<DiagnosticReport>('DiagnosticReport', {
    _tag: `${System.workflow}|signed`,
    issued: `ge${range.since.toISOString()}`,
  });
  const pairs: ProductionPair[] = [];
  const unmatched: { id: string; reason: string }[] = [];
  for (const report of reports) {
    if (!report.id || !isRaddraftReport(report) || !SIGNED.has(report.status)) continue;
    if (report.issued && new Date(report.issued) > range.until) continue;
    const key = report.identifier!.find((i) => i.system === System.draftReport)!.value ?? '';
    const studyUid = key.slice(0, key.indexOf('_')) || key;
    const final = reportSections(report);
    // The draft as raddraft recorded it (report event, else the job), read back from the FHIR history only for a
    // report this raddraft has no record of.
    let draft: RecordedDraft | undefined = store ? await recordedDraft(store, key, studyUid) : undefined;
    if (!draft) {
      try {
        const versions = await fhir.history<DiagnosticReport>('DiagnosticReport', report.id);
        const first = versions.filter((v) => v.status === 'partial' || v.status === 'preliminary').sort(byLastUpdated)[0];
        if (first) {
          const s = reportSections(first);
          draft = { findings: s.findings, impression: s.impression, ...draftOrigin(s.text) };
        }
      } catch (err) {
        if (!(err instanceof FhirError)) throw err;
      }
    }
    if (!draft) {
      unmatched.push({ id: studyUid, reason: `DiagnosticReport/${report.id} is signed but its draft is neither in its history nor in the job store` });
      continue;
    }
    pairs.push({
      id: studyUid,
      model: draft.model,
      promptVersion: draft.promptVersion,
      draft: { findings: draft.findings, impression: draft.impression },
      ...(draft.sentenceFlags ? { sentenceFlags: draft.sentenceFlags } : {}),
      final: { findings: final.findings, impression: final.impression },
      finalRef: `DiagnosticReport/${report.id}`,
      signedAt: report.issued,
      origin: 'live',
    });
  }
  return { pairs, unmatched };
}

type RecordedDraft = { findings: string; impression: string; model: string; promptVersion: string; sentenceFlags?: SentenceFlag[] };

async function recordedDraft(store: JobStore, reportKey: string, studyUid: string): Promise<RecordedDraft | undefined> {
  const drafted = (await store.outbox.events(reportKey)).find((e) => e.kind === 'drafted');
  const record = drafted?.kind === 'drafted' ? drafted.draft : (await store.findByStudy(studyUid))?.draft;
  return record
    ? { findings: record.findings, impression: record.impression, model: record.model, promptVersion: record.promptVersion, ...(record.sentenceFlags ? { sentenceFlags: record.sentenceFlags } : {}) }
    : undefined;
}

/** The text of a report someone else wrote: its text attachment, else its conclusion. */
function sectionsOfForeignReport(report: DiagnosticReport): { findings: string; impression: string } {
  const form = report.presentedForm?.find((a) => a.data && (!a.contentType || a.contentType.startsWith('text/')));
  const text = form?.data ? Buffer.from(form.data, 'base64').toString('utf8') : '';
  if (text.trim()) {
    try {
      const parsed = parseReport(text);
      return { findings: parsed.findings, impression: parsed.impression || report.conclusion || '' };
    } catch (err) {
      if (!(err instanceof ReplyFormatError)) throw err;
      return { findings: text.trim(), impression: report.conclusion ?? '' };
    }
  }
  return { findings: '', impression: report.conclusion ?? '' };
}

/**
 * The radiologist's own signed report for a study: found through the study's ImagingStudy (its orders, then its
 * patient's reports that point at it), or, when the FHIR server has no ImagingStudy, through the order with the
 * study's accession number read from the PACS. raddraft's own reports are never taken.
 */
export async function findFinalReport(fhir: FhirGateway, studyUid: string, pacs: StudySource | undefined): Promise<DiagnosticReport | { reason: string }> {
  const uid = dicomUidIdentifier(studyUid);
  const studies = await fhir.search<ImagingStudy>('ImagingStudy', { identifier: `${uid.system}|${uid.value}` });
  const study = studies[0];
  const candidates: DiagnosticReport[] = [];
  const orders = (study?.basedOn ?? []).map((b) => b.reference).filter((r): r is string => !!r?.startsWith('ServiceRequest/'));
  if (!study && pacs) {
    const ctx = await pacs.studyContext(studyUid).catch(() => undefined);
    if (ctx?.accession) {
      const accession = ctx.accession;
      const found = await phi.during([accession], () => fhir.search<ServiceRequest>('ServiceRequest', { identifier: accession }));
      orders.push(...found.filter((o) => o.id).map((o) => `ServiceRequest/${o.id}`));
    }
  }
  for (const order of orders) candidates.push(...await fhir.search<DiagnosticReport>('DiagnosticReport', { 'based-on': order }));
  if (study?.id && study.subject?.reference) {
    const ofPatient = await fhir.searchAll<DiagnosticReport>('DiagnosticReport', { subject: study.subject.reference }, 500);
    candidates.push(...ofPatient.filter((r) => r.imagingStudy?.some((s) => s.reference === `ImagingStudy/${study.id}` || s.identifier?.value === uid.value)));
  }
  const signed = candidates.filter((r) => SIGNED.has(r.status) && !isRaddraftReport(r));
  if (signed.length === 0) {
    if (!study && orders.length === 0) return { reason: 'no ImagingStudy or order for the study on the FHIR server' };
    return { reason: 'no signed report for the study on the FHIR server yet' };
  }
  // The latest signed version wins (an amended report replaces the first).
  return signed.sort((a, b) => (b.issued ?? '').localeCompare(a.issued ?? ''))[0]!;
}

/**
 * Shadow mode: drafts kept in the job store (state `shadowed`, drafted between `since` and `until`), each with the
 * radiologist's own final report for the same study from the FHIR server.
 */
export async function shadowPairs(fhir: FhirGateway, store: JobStore, pacs: StudySource | undefined, range: { since: Date; until: Date }): Promise<ProductionPairs> {
  const jobs: Job[] = [];
  for (let offset = 0; ; offset += 500) {
    const page = await store.list({ state: 'shadowed', limit: 500, offset });
    jobs.push(...page);
    if (page.length < 500) break;
  }
  const pairs: ProductionPair[] = [];
  const unmatched: { id: string; reason: string }[] = [];
  for (const job of jobs) {
    const draft = job.draft;
    if (!draft) continue;
    const at = new Date(draft.draftedAt);
    if (at < range.since || at > range.until) continue;
    const found = await findFinalReport(fhir, job.studyUid, pacs);
    if ('reason' in found) {
      unmatched.push({ id: job.studyUid, reason: found.reason });
      continue;
    }
    pairs.push({
      id: job.studyUid,
      model: draft.model,
      promptVersion: draft.promptVersion,
      draft: { findings: draft.findings, impression: draft.impression },
      ...(draft.sentenceFlags ? { sentenceFlags: draft.sentenceFlags } : {}),
      final: sectionsOfForeignReport(found),
      finalRef: `DiagnosticReport/${found.id ?? ''}`,
      signedAt: found.issued,
      origin: 'shadow',
    });
  }
  return { pairs, unmatched };
}
