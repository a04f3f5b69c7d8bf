import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { Router, type Request, type Response } from 'express';
import { Ajv, type ValidateFunction } from 'ajv';
import type { Patient } from '@medplum/fhirtypes';
import type { FhirGateway } from '../fhir/client.js';
import { recordAudit } from '../fhir/audit.js';
import { moveTask } from '../fhir/review-task.js';
import { DRAFT_STATUSES, readDraft, type ReviewedDraft } from '../fhir/sign.js';
import type { DeliveryRunner } from '../jobs/delivery-runner.js';
import { OperationOutcomeError } from '../util/operation-outcome.js';
import type { JobStore } from '../jobs/job-store.js';
import type { Logger } from '../log.js';
import type { ReviewAuth } from './auth.js';
import { decide, type DecisionResult } from './decisions.js';
import type { OidcLogin } from './oidc.js';
import { layout, type PageContext } from './pages/layout.js';
import { reportPage } from './pages/report.js';
import { messagePage, qualityPage, worklistPage } from './pages/worklist.js';
import { html } from './pages/html.js';
import { risQualitySection } from './pages/ris-quality.js';
import type { SessionData } from './session.js';
import type { ViewerImages } from './viewer-images.js';
import { loadWorklist } from './worklist.js';

const PUBLIC_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'public');

const ajv = new Ajv({ allErrors: true });
const validateSign = ajv.compile<{ findings: string; impression: string; version: string }>({
  type: 'object',
  properties: {
    findings: { type: 'string', maxLength: 20_000 },
    impression: { type: 'string', minLength: 1, maxLength: 20_000 },
    version: { type: 'string', minLength: 1, maxLength: 64 },
  },
  required: ['findings', 'impression', 'version'],
  additionalProperties: false,
});
const TEXT = { type: 'string', maxLength: 20_000 } as const;
const REASON = { type: 'string', minLength: 3, maxLength: 2000 } as const;
const VERSION = { type: 'string', minLength: 1, maxLength: 64 } as const;
const validateCorrect = ajv.compile<{ findings: string; impression: string; reason: string; version: string }>({
  type: 'object',
  properties: { findings: TEXT, impression: { ...TEXT, minLength: 1 }, reason: REASON, version: VERSION },
  required: ['findings', 'impression', 'reason', 'version'],
  additionalProperties: false,
});
const validateAddendum = ajv.compile<{ addendum: string; reason: string; version: string }>({
  type: 'object',
  properties: { addendum: { ...TEXT, minLength: 1 }, reason: REASON, version: VERSION },
  required: ['addendum', 'reason', 'version'],
  additionalProperties: false,
});
const validateReject = ajv.compile<{ reason: string; version: string }>({
  type: 'object',
  properties: { reason: { type: 'string', minLength: 3, maxLength: 2000 }, version: { type: 'string', minLength: 1, maxLength: 64 } },
  required: ['reason', 'version'],
  additionalProperties: false,
});

function bodyOrThrow<T>(validate: ValidateFunction<T>, body: unknown): T {
  if (validate(body)) return body;
  const problems = (validate.errors ?? []).map((e) => `${e.instancePath || 'body'} ${e.message ?? 'is invalid'}`.replace(/^\//, ''));
  throw new OperationOutcomeError(400, 'invalid', `the request body is not valid: ${problems.join('; ')}`);
}

const PAGE_HEADERS = {
  'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
};

export interface ReviewDeps {
  fhir: FhirGateway;
  store: JobStore;
  auth: ReviewAuth;
  oidc: OidcLogin | undefined;
  images: ViewerImages;
  /** Delivers each decision to the FHIR server at once and to the other outputs from the outbox. */
  deliveries: DeliveryRunner;
  log: Logger;
  /** Where AuditEvents go (the FHIR server, or RADDRAFT_AUDIT_URL's). */
  audit: FhirGateway;
  software: { name: string; version: string };
}

function number(value: unknown): number | undefined {
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

async function patientLabel(fhir: FhirGateway, draft: ReviewedDraft): Promise<string> {
  const subject = draft.report.subject;
  if (subject?.reference?.startsWith('Patient/')) {
    const p = await fhir.read<Patient>('Patient', subject.reference.slice('Patient/'.length)).catch(() => undefined);
    const name = p?.name?.[0];
    const text = name?.text ?? [name?.family, ...(name?.given ?? [])].filter(Boolean).join(', ');
    const id = p?.identifier?.[0]?.value;
    return [text || undefined, id ? `ID ${id}` : undefined].filter(Boolean).join(' · ') || subject.reference;
  }
  return subject?.identifier?.value ? `ID ${subject.identifier.value} (no Patient record)` : '(no patient)';
}

/**
 * A radiologist opening a draft takes up its review Task (requested → in-progress, owner set), and every opening of a
 * report is audited. Neither holds up the page: a failure is logged and the page is served.
 */
async function opened(deps: ReviewDeps, read: ReviewedDraft, session: SessionData): Promise<void> {
  const who = { ...(session.practitioner ? { reference: session.practitioner } : {}), display: session.name ?? session.practitioner ?? 'signed-in user' };
  const at = new Date().toISOString();
  const reportRef = `DiagnosticReport/${read.report.id}`;
  try {
    if (session.practitioner && read.task?.status === 'requested' && DRAFT_STATUSES.includes(read.report.status)) {
      await moveTask(deps.fhir, read.task, { status: 'in-progress' }, { reference: session.practitioner, display: session.name }, at);
    }
    await recordAudit(deps.audit, {
      action: 'opened', report: read.report.meta?.versionId ? `${reportRef}/_history/${read.report.meta.versionId}` : reportRef,
      patient: read.report.subject, who, software: deps.software, at, detail: `report opened in raddraft's review page (${read.report.status})`,
    });
  } catch (err) {
    deps.log.warn({ reportRef, err: (err as Error).message }, 'could not record the opening of a report (review task or AuditEvent)');
  }
}

/** The review pages and the sign/reject API. */
export function reviewRouter(deps: ReviewDeps): Router {
  const { fhir, store, auth, log } = deps;
  const router = Router();

  router.use('/review', (_req, res, next) => {
    res.set(PAGE_HEADERS);
    next();
  });
  router.use('/review/static', express.static(PUBLIC_DIR, { index: false, maxAge: '1h' }));

  const context = (session: SessionData, title: string): PageContext => ({
    title,
    csrf: session.csrf,
    user: session.name ?? session.practitioner,
    userId: session.practitioner,
    localNotice: auth.auth
      ? undefined
      : `No sign-in is configured: these pages are served only on this machine${session.practitioner ? `, and you sign as ${session.practitioner}` : ' and are read-only (set RADDRAFT_LOCAL_REVIEWER to sign)'}.`,
    canSign: !!session.practitioner,
  });

  /** Runs a page handler for a permitted session, or answers the refusal as a page. */
  const page = (title: string, build: (req: Request, session: SessionData) => Promise<ReturnType<typeof layout> | string>) =>
    async (req: Request, res: Response) => {
      const access = await auth.forPage(req, res);
      if (!access) return;
      if ('status' in access) {
        const ctx: PageContext = { title: 'Not available', csrf: '', user: undefined, localNotice: undefined, canSign: false };
        res.status(access.status).type('html').send(layout(ctx, messagePage('Not available here', access.reason)).value);
        return;
      }
      const body = await build(req, access);
      res.type('html').send(typeof body === 'string' ? body : body.value);
    };

  if (deps.oidc) {
    const oidc = deps.oidc;
    router.get('/review/login', (req, res) => oidc.start(req, res));
    router.get('/review/callback', async (req, res) => {
      try {
        await oidc.callback(req, res);
      } catch (err) {
        // A person in a browser gets the refusal as a page rather than as JSON.
        if (!(err instanceof OperationOutcomeError)) throw err;
        const ctx: PageContext = { title: 'Sign-in refused', csrf: '', user: undefined, localNotice: undefined, canSign: false };
        res.status(err.status).type('html').send(layout(ctx, messagePage('Sign-in refused', err.diagnostics)).value);
      }
    });
  }

  router.post('/review/logout', (req, res) => {
    // The page clears the edits it keeps before calling this; the cookie goes whatever state it is in.
    auth.clearSession(res, req.secure);
    res.status(204).end();
  });
  router.get('/review/signed-out', (_req, res) => {
    const ctx: PageContext = { title: 'Signed out', csrf: '', user: undefined, localNotice: undefined, canSign: false };
    res.type('html').send(layout(ctx, messagePage('Signed out', 'You are signed out of raddraft, and the unsaved edits this browser kept for you are cleared. Open the worklist to sign in again.')).value);
  });

  router.get('/review', page('Worklist', async (req, session) => {
    const filter = {
      ...(typeof req.query.from === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(req.query.from) ? { from: req.query.from } : {}),
      ...(typeof req.query.to === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(req.query.to) ? { to: req.query.to } : {}),
      ...(req.query.flagged === '1' ? { flagged: true } : {}),
    };
    const rows = await loadWorklist(fhir, store, filter);
    return layout(context(session, 'Worklist'), worklistPage(rows, filter));
  }));

  router.get('/review/quality', page('Quality', async (_req, session) => layout(context(session, 'Quality'),
    html`${qualityPage(await store.qualitySummary())}${risQualitySection(await store.risReports.qualitySummary())}`)));

  router.get('/review/images/:study/:series/:sop', async (req, res) => {
    const access = await auth.forPage(req, res);
    if (!access) return;
    if ('status' in access) throw new OperationOutcomeError(access.status, 'security', access.reason);
    const size = Math.min(2048, Math.max(64, number(req.query.size) ?? 1024));
    const center = number(req.query.wc);
    const width = number(req.query.ww);
    const png = await deps.images.png(
      { study: req.params.study, series: req.params.series, sop: req.params.sop },
      { size, ...(center !== undefined ? { center } : {}), ...(width !== undefined ? { width } : {}) },
    );
    res.set('Cache-Control', 'private, max-age=300').type('png').send(png);
  });

  router.get('/review/:id', page('Draft', async (req, session) => {
    const read = await readDraft(fhir, String(req.params.id));
    const job = await store.findByStudy(read.studyUid);
    // Who drafted it, as raddraft recorded it (the FHIR text says the same in words).
    const draft = job?.draft ? { ...read, model: job.draft.model, promptVersion: job.draft.promptVersion } : read;
    const deliveries = job ? await store.outbox.deliveriesOfJob(job.id) : [];
    await opened(deps, read, session);
    const view = { draft, job, deliveries, patient: await patientLabel(fhir, draft), canSign: !!session.practitioner };
    return layout(context(session, 'Draft'), reportPage(view));
  }));

  // A decision is answered 200 once the FHIR server has it, 202 when it is recorded and waits for delivery.
  const answer = (res: Response, result: DecisionResult) => {
    res.status(result.status === 'recorded' ? 202 : 200).json({
      ...result,
      ...(result.status === 'recorded'
        ? { message: `Recorded. The FHIR server cannot take it now (${result.pending.find((p) => p.output === 'fhir')?.reason ?? 'no answer'}); raddraft delivers it as soon as it answers.` }
        : {}),
    });
  };
  const decisionDeps = { fhir, store, deliveries: deps.deliveries, log };

  router.post('/api/reports/:id/sign', async (req, res) => {
    const signer = await auth.forChange(req);
    const edit = bodyOrThrow(validateSign, req.body);
    answer(res, await decide(decisionDeps, req.params.id, { kind: 'signed', ...edit }, signer));
  });

  router.post('/api/reports/:id/reject', async (req, res) => {
    const signer = await auth.forChange(req);
    const decision = bodyOrThrow(validateReject, req.body);
    answer(res, await decide(decisionDeps, req.params.id, { kind: 'rejected', ...decision }, signer));
  });

  // A signed report is changed only by a correction (its text put right) or an addendum (text added, the rest kept).
  router.post('/api/reports/:id/correct', async (req, res) => {
    const signer = await auth.forChange(req);
    const change = bodyOrThrow(validateCorrect, req.body);
    answer(res, await decide(decisionDeps, req.params.id, { kind: 'corrected', mode: 'correction', ...change }, signer));
  });

  router.post('/api/reports/:id/addendum', async (req, res) => {
    const signer = await auth.forChange(req);
    const change = bodyOrThrow(validateAddendum, req.body);
    answer(res, await decide(decisionDeps, req.params.id, { kind: 'corrected', mode: 'addendum', ...change }, signer));
  });

  return router;
}
