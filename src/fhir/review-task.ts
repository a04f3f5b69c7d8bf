import type { Task } from '@medplum/fhirtypes';
import { FhirError, type FhirGateway } from './client.js';

export interface TaskActor {
  reference: string;
  display: string | undefined;
}

/** What a review Task becomes: taken up (`in-progress`), done with the signed report, or declined. */
export type TaskChange =
  | { status: 'in-progress' }
  | { status: 'completed'; output: string }
  | { status: 'rejected'; reason: string };

/** Statuses a Task does not leave again (R4: completed, rejected, cancelled, failed, entered-in-error). */
const ENDED = new Set(['completed', 'rejected', 'cancelled', 'failed', 'entered-in-error']);

function changed(fresh: Task & { id: string }, change: TaskChange, actor: TaskActor, at: string): Task & { id: string } {
  const owner = { reference: actor.reference, ...(actor.display ? { display: actor.display } : {}) };
  const base = { ...fresh, status: change.status, owner, lastModified: at };
  if (change.status === 'in-progress') return { ...base, executionPeriod: { ...(fresh.executionPeriod ?? {}), start: fresh.executionPeriod?.start ?? at } };
  const ended = { ...base, executionPeriod: { start: fresh.executionPeriod?.start ?? at, end: at } };
  if (change.status === 'rejected') return { ...ended, statusReason: { text: change.reason } };
  return {
    ...ended,
    output: [{ type: { text: 'Signed report' }, valueReference: { reference: change.output } }],
  };
}

/**
 * Moves a review Task on: requested → in-progress (a radiologist opened the draft; owner set) → completed (with the
 * signed report as output) or rejected. Written with If-Match; a Task changed under it is read again. A Task that has
 * ended is left as it is, and one already in progress is not taken up again.
 */
export async function moveTask(fhir: FhirGateway, task: Task & { id: string }, change: TaskChange, actor: TaskActor, at: string): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const fresh = (attempt === 0 ? task : await fhir.read<Task>('Task', task.id)) as Task & { id: string };
    if (fresh.status === change.status || ENDED.has(fresh.status)) return;
    try {
      await fhir.update(changed({ ...fresh, id: task.id }, change, actor, at), fresh.meta?.versionId);
      return;
    } catch (err) {
      // The task changed under us (a worklist touched it): read it again and retry.
      if (!(err instanceof FhirError && err.status === 412) || attempt === 2) throw err;
    }
  }
}
