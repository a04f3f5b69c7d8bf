import { Router } from 'express';
import { JOB_STATES, isJobState, type Job, type JobStore } from '../jobs/job-store.js';
import type { ApiGuard } from './api-guard.js';
import { deliveryView } from './deliveries-routes.js';
import { OperationOutcomeError } from './errors.js';

/** The job as the API shows it: states, reasons, views and references; no patient identifiers exist to show. */
export function jobView(job: Job, detail = false): Record<string, unknown> {
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  return {
    id: job.id,
    studyInstanceUid: job.studyUid,
    state: job.state,
    reason: job.reason,
    attempts: job.attempts,
    source: job.source,
    nextAttemptAt: job.state === 'failed' ? iso(job.nextAttemptAt) : undefined,
    reportRef: job.reportRef,
    views: job.views,
    skippedViews: job.skippedViews,
    createdAt: iso(job.createdAt),
    updatedAt: iso(job.updatedAt),
    ...(detail
      ? {
          images: job.images?.map(({ file: _file, ...img }) => img),
          draft: job.draft,
        }
      : {}),
  };
}

function intParam(value: unknown, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (typeof value !== 'string' || !Number.isInteger(n) || n < min || n > max) {
    throw new OperationOutcomeError(400, 'invalid', `query parameter ${name}=${JSON.stringify(value)} is not a whole number in ${min}..${max}`, name);
  }
  return n;
}

export type { ApiGuard };

export function jobsRouter(store: JobStore, guard: ApiGuard, onRetry: () => void = () => undefined): Router {
  const router = Router();
  // Jobs carry draft text and failure reasons: nobody reads or requeues them without the review API's credentials.
  router.use(['/api/jobs', '/api/quality'], async (req, _res, next) => {
    await guard(req, req.method !== 'GET' && req.method !== 'HEAD');
    next();
  });

  router.get('/api/jobs', async (req, res) => {
    const { state } = req.query;
    if (state !== undefined && !isJobState(state)) {
      throw new OperationOutcomeError(400, 'invalid', `query parameter state=${JSON.stringify(state)} is not one of ${JOB_STATES.join(', ')}`, 'state');
    }
    const limit = intParam(req.query.limit, 'limit', 1, 1000, 100);
    const offset = intParam(req.query.offset, 'offset', 0, 1e9, 0);
    const [jobs, counts] = await Promise.all([store.list({ ...(state ? { state } : {}), limit, offset }), store.countByState()]);
    res.json({ counts, jobs: jobs.map((j) => jobView(j)) });
  });

  router.get('/api/jobs/:id', async (req, res) => {
    const job = await store.get(req.params.id);
    if (!job) throw new OperationOutcomeError(404, 'not-found', `no job with id ${req.params.id}`);
    const [events, deliveries] = await Promise.all([store.events(job.id), store.outbox.deliveriesOfJob(job.id)]);
    res.json({ ...jobView(job, true), events, deliveries: deliveries.map(deliveryView) });
  });

  router.get('/api/quality', async (_req, res) => {
    res.json({ byModel: await store.qualitySummary(), risByModel: await store.risReports.qualitySummary() });
  });

  router.post('/api/jobs/:id/retry', async (req, res) => {
    const job = await store.get(req.params.id);
    if (!job) throw new OperationOutcomeError(404, 'not-found', `no job with id ${req.params.id}`);
    if (job.state !== 'failed' && job.state !== 'dead') {
      throw new OperationOutcomeError(409, 'conflict', `job ${job.id} is ${job.state}; only failed or dead jobs can be retried`);
    }
    const requeued = await store.retry(job.id);
    onRetry();
    res.status(202).json(jobView(requeued!));
  });

  return router;
}
