import { Router, type Request } from 'express';
import type { JobStore } from '../jobs/job-store.js';
import type { RisMessage } from '../jobs/ris-reports.js';
import { OperationOutcomeError } from '../util/operation-outcome.js';

/** The message as listed: what came, from whom, and what raddraft answered; the text only when one is asked for. */
function view(m: RisMessage, whole = false) {
  const { raw, findings, impression, ...rest } = m;
  return { ...rest, receivedAt: new Date(m.receivedAt).toISOString(), ...(whole ? { findings, impression, raw } : {}) };
}

/**
 * The HL7 messages the listener answered, for an administrator to inspect: GET /api/hl7-messages[?status=refused]
 * and GET /api/hl7-messages/:id (with the message as received). Guarded like the job API: messages carry patient data.
 */
export function hl7MessagesRouter(store: JobStore, guard: (req: Request, change: boolean) => Promise<void>): Router {
  const router = Router();
  router.use('/api/hl7-messages', async (req, _res, next) => {
    await guard(req, false);
    next();
  });
  router.get('/api/hl7-messages', async (req, res) => {
    const { status } = req.query;
    if (status !== undefined && status !== 'accepted' && status !== 'refused') {
      throw new OperationOutcomeError(400, 'invalid', `query parameter status=${JSON.stringify(status)} is not accepted or refused`, 'status');
    }
    const limit = Math.min(1000, Math.max(1, Number(req.query.limit ?? 100) || 100));
    res.json({ messages: (await store.risReports.list({ ...(status ? { status } : {}), limit })).map((m) => view(m)) });
  });
  router.get('/api/hl7-messages/:id', async (req, res) => {
    const found = await store.risReports.get(req.params.id);
    if (!found) throw new OperationOutcomeError(404, 'not-found', `no HL7 message with id ${req.params.id}`);
    res.json(view(found, true));
  });
  return router;
}
