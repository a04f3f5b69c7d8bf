import type { Attachment, DiagnosticReport, Patient } from '@medplum/fhirtypes';
import type { StudySource } from '../dicom/study-source.js';
import type { FhirGateway } from '../fhir/client.js';
import { resolveLinks } from '../fhir/publish.js';
import { phi, type Logger } from '../log.js';
import type { PriorReport } from '../model/prior-report.js';
import { parseReport } from '../report/sections.js';
import type { Job } from './job-store.js';

/** LOINC codes of chest X-ray reports (raddraft's own and the common ones of RIS systems). */
const CHEST_XR_CODES = new Set(['36643-5', '36554-4', '30745-4', '24648-8', '36572-6', '42272-5', '36589-0', '43468-8']);
const SIGNED = 'final,amended,corrected,appended';

function isChestXray(report: DiagnosticReport): boolean {
  const codes = report.code.coding ?? [];
  if (codes.some((c) => c.code && CHEST_XR_CODES.has(c.code))) return true;
  const words = [report.code.text, ...codes.map((c) => c.display)].filter(Boolean).join(' ');
  return /\b(chest|thorax|thoracic)\b/i.test(words) && /\b(xr|x-ray|radiograph|cr|dx)\b/i.test(words);
}

function plainText(forms: Attachment[] | undefined): string | undefined {
  const form = forms?.find((f) => /^text\/plain/.test(f.contentType ?? '') && f.data);
  return form?.data ? Buffer.from(form.data, 'base64').toString('utf8') : undefined;
}

/** The report's findings and impression: from its text in sections, else its whole text and its conclusion. */
function sectionsOf(report: DiagnosticReport): { findings: string; impression: string } | undefined {
  const text = plainText(report.presentedForm);
  if (text) {
    try {
      const parsed = parseReport(text);
      return { findings: parsed.findings, impression: parsed.impression || report.conclusion || '' };
    } catch {
      return { findings: text, impression: report.conclusion ?? '' };
    }
  }
  return report.conclusion ? { findings: '', impression: report.conclusion } : undefined;
}

/**
 * The prior's text without the identifiers raddraft knows of the patient and the report (name, Patient ID, birth
 * date, accession and report identifiers), which a radiologist may have typed into it: none of them goes to the model.
 */
function withoutIdentifiers(text: string, identifiers: readonly string[]): string {
  let out = text;
  for (const id of [...identifiers].sort((a, b) => b.length - a.length)) {
    out = out.replace(new RegExp(`(?<![\\p{L}\\p{N}])${id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\p{L}\\p{N}])`, 'giu'), '[removed]');
  }
  return out;
}

function identifiersOf(patient: Patient | undefined, report: DiagnosticReport, ctx: { patientId?: string | undefined; accession?: string | undefined; birthDate?: string | undefined }): string[] {
  const birth = ctx.birthDate && /^\d{8}$/.test(ctx.birthDate) ? [ctx.birthDate, `${ctx.birthDate.slice(0, 4)}-${ctx.birthDate.slice(4, 6)}-${ctx.birthDate.slice(6)}`] : [];
  const names = (patient?.name ?? []).flatMap((n) => [n.text, n.family, ...(n.given ?? [])]);
  const ids = [...(patient?.identifier ?? []), ...(report.identifier ?? [])].map((i) => i.value);
  return [ctx.patientId, ctx.accession, patient?.birthDate, ...birth, ...names, ...ids].filter((v): v is string => typeof v === 'string' && v.trim().length >= 2);
}

const isoDate = (dicomDate: string | undefined) => (dicomDate && /^\d{8}$/.test(dicomDate) ? `${dicomDate.slice(0, 4)}-${dicomDate.slice(4, 6)}-${dicomDate.slice(6, 8)}` : undefined);

/**
 * Finds the patient's latest signed chest X-ray report dated before this study's day on the FHIR server
 * (RADDRAFT_PROMPT=prior-report). No patient, no study date, several patients for one ID, or no such report: none,
 * and the draft is made without a prior (its comparison wording then stays flagged). The patient's identifiers are
 * used for the search, taken out of the prior's text, and dropped.
 */
export function priorReportSource(studies: StudySource, fhir: FhirGateway, log: Logger) {
  return async (job: Job): Promise<PriorReport | undefined> => {
    const ctx = await studies.studyContext(job.studyUid);
    const before = isoDate(ctx.studyDate);
    if (!before) return undefined;
    return phi.during([ctx.patientId, ctx.accession, ctx.birthDate], async () => {
      const links = await resolveLinks(fhir, ctx);
      const subject = links.subject?.reference;
      if (!subject?.startsWith('Patient/')) return undefined;
      const reports = await fhir.search<DiagnosticReport>('DiagnosticReport', {
        subject, status: SIGNED, date: `lt${before}`, _sort: '-date', _count: '50',
      });
      const prior = reports
        .filter((r) => r.effectiveDateTime && r.effectiveDateTime.slice(0, 10) < before && isChestXray(r))
        .sort((a, b) => b.effectiveDateTime!.localeCompare(a.effectiveDateTime!))
        .map((r) => ({ report: r, sections: sectionsOf(r) }))
        .find((r) => r.sections && (r.sections.findings || r.sections.impression));
      if (!prior) {
        log.info('no signed prior chest X-ray report for this patient; drafting without one');
        return undefined;
      }
      log.info({ priorReport: `DiagnosticReport/${prior.report.id}` }, 'prior report found for the prompt');
      const patient = await fhir.read<Patient>('Patient', subject.slice('Patient/'.length)).catch(() => undefined);
      const identifiers = identifiersOf(patient, prior.report, ctx);
      return {
        date: prior.report.effectiveDateTime!.slice(0, 10),
        findings: withoutIdentifiers(prior.sections!.findings, identifiers),
        impression: withoutIdentifiers(prior.sections!.impression, identifiers),
      };
    });
  };
}
