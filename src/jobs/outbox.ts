import type { DeliveryOutcome } from '../report/output.js';
import type { ReportEvent } from '../report/report.js';

/**
 * The outbox: every report event, and one delivery per (event, output) with its own state, attempts and the
 * receiver's reference. Deliveries of one report to one output go in the order of the events, so a signature never
 * reaches a system before the draft it signs.
 */
export const DELIVERY_STATES = ['pending', 'delivered', 'dead', 'cancelled'] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];

export function isDeliveryState(value: unknown): value is DeliveryState {
  return typeof value === 'string' && (DELIVERY_STATES as readonly string[]).includes(value);
}

export interface Delivery {
  id: string;
  eventId: string;
  reportKey: string;
  seq: number;
  kind: ReportEvent['kind'];
  jobId: string;
  output: string;
  state: DeliveryState;
  attempts: number;
  nextAttemptAt: number | undefined;
  leaseOwner: string | undefined;
  leaseUntil: number | undefined;
  reference: string | undefined;
  lastError: string | undefined;
  /** What the output said of a delivery that went through (e.g. how the report was linked). */
  note: string | undefined;
  createdAt: number;
  updatedAt: number;
}

/** An event before the store gives it its place: the store assigns `seq` and `id`. */
export type NewReportEvent = ReportEvent extends infer E ? (E extends ReportEvent ? Omit<E, 'id' | 'seq'> : never) : never;

export interface RecordOptions {
  /**
   * Deliveries to hold back until this time (epoch ms), e.g. while the request that recorded a signature delivers
   * it to the FHIR server itself; they are let go at once with `releaseHeld`, or when the time comes.
   */
  holdUntil?: number;
  /** A delivery of this output is claimed for `owner` as it is recorded, so no other worker starts it. */
  claimFor?: { output: string; owner: string; leaseMs: number };
}

/** The store's verdict on an event to record when the report has moved on since the radiologist's version. */
export class StaleEventError extends Error {
  constructor(
    message: string,
    readonly latest: ReportEvent,
  ) {
    super(message);
    this.name = 'StaleEventError';
  }
}

export interface Outbox {
  /**
   * Records an event after the report's latest one (`after`: the seq the caller saw as latest, refused with
   * StaleEventError if another event came first) and creates its deliveries, all in one transaction.
   */
  record(event: NewReportEvent, outputs: readonly string[], after: number, options?: RecordOptions): Promise<{ event: ReportEvent; deliveries: Delivery[] }>;
  /** The report's events in order. */
  events(reportKey: string): Promise<ReportEvent[]>;
  /** Events of every report of a job, in order. */
  eventsOfJob(jobId: string): Promise<ReportEvent[]>;
  /**
   * The report key whose delivery to `output` got this receiver reference (e.g. `DiagnosticReport/123`), or a version
   * of it (`DiagnosticReport/123/_history/2`).
   */
  reportKeyByReference(output: string, reference: string): Promise<string | undefined>;
  /**
   * The next delivery that may go now: due, not leased, and with every earlier event of its report and output
   * delivered; none of the outputs in `except` (those the caller has busy enough already).
   */
  claim(owner: string, leaseMs: number, now?: number, except?: readonly string[]): Promise<Delivery | undefined>;
  /**
   * Takes a named pending delivery for `owner` (used by the request that recorded it), unless another owner holds it
   * or an earlier event of its report and output is not delivered yet.
   */
  claimById(id: string, owner: string, leaseMs: number): Promise<Delivery | undefined>;
  /** Records what an attempt came to; a `retry` past the budget ends `dead`. */
  finish(id: string, owner: string, outcome: DeliveryOutcome, retryAt: number): Promise<Delivery>;
  /** Gives a delivery back untouched (shutdown). */
  releaseDelivery(id: string, owner: string): Promise<void>;
  /** Lets held deliveries of an event go now; one its receiver asked to wait keeps the receiver's time. */
  releaseHeld(eventId: string): Promise<void>;
  /**
   * Calls off an event that must not be delivered after all (the FHIR server refused it): its pending and dead
   * deliveries end `cancelled` with the reason, so they hold up no later event.
   */
  cancel(eventId: string, reason: string): Promise<void>;
  /**
   * Takes back an event the FHIR server refused before any output received it (its deliveries and the event go);
   * if some output has it already, only the pending deliveries are cancelled.
   */
  withdraw(eventId: string): Promise<void>;
  /** Requeues a dead delivery with a fresh budget. */
  retryDelivery(id: string): Promise<Delivery | undefined>;
  delivery(id: string): Promise<Delivery | undefined>;
  deliveriesOfJob(jobId: string): Promise<Delivery[]>;
  listDeliveries(q: { state?: DeliveryState; limit?: number; offset?: number }): Promise<Delivery[]>;
  countDeliveries(): Promise<{ output: string; state: DeliveryState; count: number }[]>;
  expireDeliveryLeases(isGone: (owner: string) => boolean): Promise<number>;
}
