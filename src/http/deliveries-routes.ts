import { Router } from 'express';
import { DELIVERY_STATES, isDeliveryState, type Delivery, type Outbox } from '../jobs/outbox.js';
import { OperationOutcomeError } from './errors.js';
import type { ApiGuard } from './api-guard.js';

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

/** A delivery as the API shows it: which event went where, how it went, and the receiver's reference. */
export function deliveryView(d: Delivery): Record<string, unknown> {
  return {
    id: d.id,
    jobId: d.jobId,
    reportKey: d.reportKey,
    event: d.kind,
    seq: d.seq,
    output: d.output,
    state: d.state,
    attempts: d.attempts,
    nextAttemptAt: d.state === 'pending' ? iso(d.nextAttemptAt) : undefined,
    reference: d.reference,
    lastError: d.lastError,
    note: d.note,
    createdAt: iso(d.createdAt),
    updatedAt: iso(d.updatedAt),
  };
}

/** `GET /api/deliveries[?state=]` and `POST /api/deliveries/:id/retry`, guarded like the job API. */
export function deliveriesRouter(outbox: Outbox, guard: ApiGuard, onRetry: () => void = () => undefined): Router {
  const router = Router();
  router.use('/api/deliveries', async (req, _res, next) => {
    await guard(req, req.method !== 'GET' && req.method !== 'HEAD');
    next();
  });

  router.get('/api/deliveries', async (req, res) => {
    const { state } = req.query;
    if (state !== undefined && !isDeliveryState(state)) {
      throw new OperationOutcomeError(400, 'invalid', `query parameter state=${JSON.stringify(state)} is not one of ${DELIVERY_STATES.join(', ')}`, 'state');
    }
    const [deliveries, counts] = await Promise.all([outbox.listDeliveries({ ...(state ? { state } : {}), limit: 500 }), outbox.countDeliveries()]);
    res.json({ counts, deliveries: deliveries.map(deliveryView) });
  });

  router.post('/api/deliveries/:id/retry', async (req, res) => {
    const delivery = await outbox.delivery(req.params.id);
    if (!delivery) throw new OperationOutcomeError(404, 'not-found', `no delivery with id ${req.params.id}`);
    if (delivery.state !== 'dead') {
      throw new OperationOutcomeError(409, 'conflict', `delivery ${delivery.id} is ${delivery.state}; only dead deliveries can be retried`);
    }
    const requeued = await outbox.retryDelivery(delivery.id);
    onRetry();
    res.status(202).json(deliveryView(requeued!));
  });
  return router;
}
