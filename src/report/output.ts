import type { ReportEvent } from './report.js';

/**
 * What one delivery attempt came to. `wait` uses no attempt: the receiver is down or asked for time (HTTP 429,
 * Retry-After), so the delivery sleeps until then. `retry` uses one. `permanent` ends the delivery `dead` with the
 * reason, for an administrator to read and retry.
 */
export type DeliveryOutcome =
  /** `note`: how the receiver took it (e.g. how the report was linked), for the job's record; no identifiers. */
  | { kind: 'delivered'; reference: string; note?: string }
  | { kind: 'retry'; reason: string }
  | { kind: 'wait'; until: number; reason: string }
  | { kind: 'permanent'; reason: string };

/** What an output knows of the same report's earlier events at this receiver (delivered before this one, in order). */
export interface DeliveredBefore {
  kind: ReportEvent['kind'];
  seq: number;
  reference: string;
}

export interface DeliveryContext {
  earlier: DeliveredBefore[];
  signal: AbortSignal;
}

/**
 * A system that receives every event of every report: the FHIR server, the PACS (DICOM SR), the RIS (HL7 v2).
 * `deliver` must be idempotent at the receiver: the same event delivered twice (a retry after a crash) leaves one
 * copy there. It never throws for a receiver's answer; it says what the answer means.
 */
export interface ReportOutput {
  readonly name: string;
  deliver(event: ReportEvent, context: DeliveryContext): Promise<DeliveryOutcome>;
}
