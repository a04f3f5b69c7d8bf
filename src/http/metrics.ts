import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { JOB_STATES, type JobStore } from '../jobs/job-store.js';
import type { DraftRecord } from '../report/report.js';

export interface ModelGauges {
  inFlight(): number;
  limit(): number;
  breakerOpen(): boolean;
}

/** Prometheus metrics (`GET /metrics`): jobs by state, job and model latencies, model load, intake. No PHI. */
export class Metrics {
  readonly registry = new Registry();
  readonly jobSeconds: Histogram;
  readonly jobsFinished: Counter;
  readonly modelRequests: Counter;
  readonly modelSeconds: Histogram;
  readonly received: Counter;
  readonly deliveryAttempts: Counter;
  readonly urgentDrafts: Counter;
  readonly draftFlags: Counter;

  constructor(store: JobStore, model?: ModelGauges) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'raddraft_' });
    new Gauge({
      name: 'raddraft_jobs',
      help: 'Jobs in each state',
      labelNames: ['state'],
      registers,
      async collect() {
        const counts = await store.countByState();
        for (const state of JOB_STATES) this.set({ state }, counts[state]);
      },
    });
    new Gauge({
      name: 'raddraft_deliveries',
      help: 'Deliveries of report events, by output and state',
      labelNames: ['output', 'state'],
      registers,
      async collect() {
        this.reset();
        for (const row of await store.outbox.countDeliveries()) this.set({ output: row.output, state: row.state }, row.count);
      },
    });
    this.deliveryAttempts = new Counter({
      name: 'raddraft_delivery_attempts_total', help: 'Delivery attempts by output, event kind and the state they left the delivery in',
      labelNames: ['output', 'kind', 'state'], registers,
    });
    this.jobSeconds = new Histogram({
      name: 'raddraft_job_seconds', help: 'Seconds from a study being seen to its draft being recorded for delivery',
      buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600], registers,
    });
    this.jobsFinished = new Counter({ name: 'raddraft_jobs_finished_total', help: 'Jobs that reached a final state', labelNames: ['state'], registers });
    this.modelRequests = new Counter({ name: 'raddraft_model_requests_total', help: 'Model requests by outcome', labelNames: ['outcome'], registers });
    this.modelSeconds = new Histogram({
      name: 'raddraft_model_request_seconds', help: 'Duration of model requests that were answered',
      buckets: [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300], registers,
    });
    this.urgentDrafts = new Counter({
      name: 'raddraft_urgent_drafts_total', help: 'Drafts asserting a critical finding (an unverified AI suspicion), by finding', labelNames: ['finding'], registers,
    });
    this.draftFlags = new Counter({ name: 'raddraft_draft_sentence_flags_total', help: 'Sentence flags raised on drafts, by kind', labelNames: ['kind'], registers });
    this.received = new Counter({ name: 'raddraft_instances_received_total', help: 'Instances pushed to raddraft, by intake and outcome', labelNames: ['source', 'outcome'], registers });
    if (model) {
      new Gauge({ name: 'raddraft_model_in_flight', help: 'Model requests in flight', registers, collect() { this.set(model.inFlight()); } });
      new Gauge({ name: 'raddraft_model_concurrency_limit', help: 'Current adaptive limit on model requests', registers, collect() { this.set(model.limit()); } });
      new Gauge({ name: 'raddraft_model_breaker_open', help: '1 while the circuit breaker keeps requests from the model endpoint', registers, collect() { this.set(model.breakerOpen() ? 1 : 0); } });
    }
  }

  /** Counts a finished draft's critical findings and sentence flags (names and kinds only, never text). */
  countDraft(draft: DraftRecord | undefined): void {
    for (const finding of draft?.urgent?.findings ?? []) this.urgentDrafts.inc({ finding });
    for (const flag of draft?.sentenceFlags ?? []) this.draftFlags.inc({ kind: flag.kind });
  }
}
