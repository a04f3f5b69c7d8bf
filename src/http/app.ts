import express, { type Express, type Router } from 'express';
import type { JobStore } from '../jobs/job-store.js';
import type { Logger } from '../log.js';
import { errorHandler, notFound } from './errors.js';
import { healthz, readyz, type Readiness } from './health.js';
import { deliveriesRouter } from './deliveries-routes.js';
import type { ApiGuard } from './api-guard.js';
import { jobsRouter } from './jobs-routes.js';
import type { Metrics } from './metrics.js';

export interface AppDeps {
  store: JobStore;
  readiness: Readiness;
  log: Logger;
  onRetry?: () => void;
  /** Wakes the delivery workers after a dead delivery is requeued. */
  onDeliveryRetry?: () => void;
  /** Who may use the job API (the review API's authentication). */
  apiGuard: ApiGuard;
  /** Further feature routers (the review pages and API). */
  routers?: Router[];
  metrics?: Metrics;
}

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.use(express.json({ limit: '1mb', type: ['application/json', 'application/fhir+json'] }));
  app.get('/healthz', healthz);
  app.get('/readyz', readyz(deps.readiness));
  const metrics = deps.metrics;
  if (metrics) {
    app.get('/metrics', async (_req, res) => {
      res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    });
  }
  app.use(jobsRouter(deps.store, deps.apiGuard, deps.onRetry));
  app.use(deliveriesRouter(deps.store.outbox, deps.apiGuard, deps.onDeliveryRetry));
  for (const r of deps.routers ?? []) app.use(r);
  app.use(notFound);
  app.use(errorHandler(deps.log));
  return app;
}
