import type { DiagnosticReport, Patient, Reference, Task } from '@medplum/fhirtypes';
import type { FhirGateway } from '../fhir/client.js';
import { System } from '../fhir/codes.js';
import type { JobStore } from '../jobs/job-store.js';

export interface WorklistRow {
  reportId: string;
  priority: string;
  studyDate: string | undefined;
  patient: string;
  code: string;
  drafted: string | undefined;
  model: string;
  flags: string[];
  /** Critical findings the draft asserts: an unverified AI suspicion that puts the draft first. */
  urgent: string[];
}

export interface WorklistFilter {
  from?: string;
  to?: string;
  flagged?: boolean;
}

const PRIORITY_RANK: Record<string, number> = { stat: 0, asap: 1, urgent: 2, routine: 3 };

/** The order's priority, raised to `urgent` when the draft asserts a critical finding (never lowered). */
function effectivePriority(taskPriority: string | undefined, urgent: boolean): string {
  const priority = taskPriority ?? 'routine';
  return urgent && (PRIORITY_RANK[priority] ?? 9) > PRIORITY_RANK.urgent! ? 'urgent' : priority;
}

function patientLabel(subject: Reference | undefined, patients: Map<string, Patient>): string {
  if (!subject) return '(no patient)';
  const p = subject.reference ? patients.get(subject.reference) : undefined;
  if (p) {
    const name = p.name?.[0];
    const text = name?.text ?? [name?.family, ...(name?.given ?? [])].filter(Boolean).join(', ');
    const mrn = p.identifier?.[0]?.value;
    return [text || undefined, mrn ? `ID ${mrn}` : undefined].filter(Boolean).join(' · ') || subject.reference!;
  }
  if (subject.identifier?.value) return `ID ${subject.identifier.value} (no Patient record)`;
  return subject.reference ?? '(no patient)';
}

/**
 * The drafts awaiting sign-off, from the FHIR server (the record of truth): open review Tasks and their reports,
 * most urgent first, then oldest first.
 */
export async function loadWorklist(fhir: FhirGateway, store: JobStore, filter: WorklistFilter = {}): Promise<WorklistRow[]> {
  // Drafts nobody has taken up yet, and those a radiologist has opened but not decided on.
  const tasks = await fhir.search<Task>('Task', { code: `${System.taskCode}|approve`, status: 'requested,in-progress', _count: '500' });
  const focus = new Map<string, Task>();
  for (const t of tasks) {
    const ref = t.focus?.reference;
    if (ref?.startsWith('DiagnosticReport/')) focus.set(ref.slice('DiagnosticReport/'.length), t);
  }
  if (focus.size === 0) return [];
  const reports = await fhir.search<DiagnosticReport>('DiagnosticReport', { _id: [...focus.keys()].join(','), status: 'partial,preliminary', _count: '500' });
  const patientIds = [...new Set(reports.map((r) => r.subject?.reference).filter((r): r is string => !!r?.startsWith('Patient/')))];
  const patients = new Map<string, Patient>();
  if (patientIds.length) {
    for (const p of await fhir.search<Patient>('Patient', { _id: patientIds.map((r) => r.slice('Patient/'.length)).join(','), _count: '500' })) {
      patients.set(`Patient/${p.id}`, p);
    }
  }
  const rows: WorklistRow[] = [];
  for (const r of reports) {
    if (!r.id) continue;
    const task = focus.get(r.id);
    const key = r.identifier?.find((i) => i.system === System.draftReport)?.value;
    const job = key ? await store.findByStudy(key.slice(0, key.indexOf('_'))) : undefined;
    const studyDate = r.effectiveDateTime?.slice(0, 10);
    if (filter.from && (!studyDate || studyDate < filter.from)) continue;
    if (filter.to && (!studyDate || studyDate > filter.to)) continue;
    const flags = job?.draft?.flags ?? [];
    if (filter.flagged && flags.length === 0) continue;
    const urgent = job?.draft?.urgent?.findings ?? [];
    rows.push({
      reportId: r.id,
      priority: effectivePriority(task?.priority, urgent.length > 0),
      urgent,
      studyDate: r.effectiveDateTime,
      patient: patientLabel(r.subject, patients),
      code: r.code.coding?.[0]?.display ?? r.code.text ?? '',
      drafted: r.issued,
      model: job?.draft?.model ?? '',
      flags,
    });
  }
  return rows.sort(
    (a, b) =>
      (PRIORITY_RANK[a.priority] ?? 9) - (PRIORITY_RANK[b.priority] ?? 9) ||
      (a.studyDate ?? a.drafted ?? '').localeCompare(b.studyDate ?? b.drafted ?? ''),
  );
}
