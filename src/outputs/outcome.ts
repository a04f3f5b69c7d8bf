import { phi } from '../log.js';
import type { DeliveryOutcome } from '../report/output.js';
import { faultOf } from '../util/faults.js';

/** What an output's error means for its delivery, by the one error model (permanent / retry / wait). */
export function outcomeOf(err: unknown, waitMs: number): DeliveryOutcome {
  const reason = phi.scrub((err as Error)?.message ?? String(err));
  const status = (err as { status?: unknown }).status;
  // A conflict (the report changed since the radiologist saw it) is final: a retry would overwrite someone's work.
  if (status === 409 || status === 412) return { kind: 'permanent', reason };
  const fault = faultOf(err);
  switch (fault.kind) {
    case 'permanent':
      return { kind: 'permanent', reason };
    case 'wait':
      return { kind: 'wait', until: fault.until ?? Date.now() + waitMs, reason };
    case 'retry':
      return { kind: 'retry', reason };
  }
}
