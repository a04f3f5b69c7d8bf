import type { Server } from 'node:http';
import type { Router } from 'express';
import { clinicalContextSource } from './jobs/clinical-context-source.js';
import { priorReportSource } from './jobs/prior-report-source.js';
import type { Config } from './config/load.js';
import { ConfigError } from './config/load.js';
import { DicomWebClient } from './dicom/dicomweb.js';
import { FhirGateway } from './fhir/client.js';
import { createApp } from './http/app.js';
import { listen } from './http/listen.js';
import { Readiness } from './http/health.js';
import { startDimseScp } from './intake/dimse-scp.js';
import { startHl7Listener, type Hl7Listener } from './intake/hl7-listener.js';
import { pacsLookups } from './intake/hl7-pacs.js';
import { hl7MessagesRouter } from './intake/hl7-routes.js';
import { ensureSubscription, notifyRouter } from './intake/fhir-subscription.js';
import { QidoPoller } from './intake/qido-poller.js';
import { FailureCode, ReceiveError, ReceivedStore, type Received } from './intake/received-store.js';
import { stowRouter } from './intake/stow-receiver.js';
import { keepReceivedTidy, releaseIfUnneeded } from './intake/received-sweep.js';
import { PacsSource, PreferLocal, type StudySource } from './dicom/study-source.js';
import { RenderPool } from './dicom/render-pool.js';
import { cleanLeftovers } from './jobs/cleanup.js';
import type { Job, JobStore } from './jobs/job-store.js';
import { Pipeline } from './jobs/pipeline.js';
import { JobRunner } from './jobs/runner.js';
import { DeliveryRunner } from './jobs/delivery-runner.js';
import { createOutputs } from './outputs/registry.js';
import type { ReportOutput } from './report/output.js';
import { openPostgresStore } from './jobs/postgres.js';
import { openSqliteStore } from './jobs/sqlite.js';
import { networkCause } from './util/network-cause.js';
import type { Logger } from './log.js';
import { Metrics } from './http/metrics.js';
import { LingshuClient } from './model/lingshu.js';
import { ReviewAuth } from './review/auth.js';
import { OidcLogin } from './review/oidc.js';
import { reviewRouter } from './review/routes.js';
import { SessionKeeper } from './review/session.js';
import { ViewerImages } from './review/viewer-images.js';
import { SOFTWARE } from './version.js';

export interface Components {
  store: JobStore;
  dicomweb: DicomWebClient;
  received: ReceivedStore;
  studies: StudySource;
  fhir: FhirGateway;
  lingshu: LingshuClient;
  runner: JobRunner;
  /** Delivers report events from the outbox to the configured outputs. */
  deliveries: DeliveryRunner;
  metrics: Metrics;
  /** The rendering threads, shared by the jobs and the review viewer. */
  renderer: RenderPool;
  /** Closes the job store and stops the rendering threads. */
  close(): Promise<void>;
}

export async function openStore(config: Config, log?: Logger): Promise<JobStore> {
  if (!config.databaseUrl) return openSqliteStore(config.dataDir, config.maxAttempts);
  try {
    return await openPostgresStore(config.databaseUrl, config.maxAttempts, (err) => log?.warn({ err: err.message }, 'a PostgreSQL connection was dropped; it will be replaced'));
  } catch (err) {
    const code = (err as { code?: string }).code;
    const why = code === '3D000' ? 'the database does not exist' : code === '28P01' || code === '28000' ? 'the server refused the user or password' : networkCause(err);
    throw new ConfigError([`RADDRAFT_DATABASE_URL: cannot open the PostgreSQL job store (${why}); check the URL, for example postgres://raddraft@db:5432/raddraft`]);
  }
}

export interface ComponentOptions {
  /** Lease length; shorter in tests that kill the process. */
  leaseMs?: number;
}

export async function openComponents(config: Config, log: Logger, options: ComponentOptions = {}): Promise<Components> {
  const store = await openStore(config, log);
  const dicomweb = new DicomWebClient({ url: config.dicomweb.url, auth: config.dicomweb.auth });
  const received = new ReceivedStore(config.dataDir, config.minFreeBytes, config.maxInstanceBytes);
  const studies = new PreferLocal(received, new PacsSource(dicomweb), config.pushVerify);
  const fhir = new FhirGateway(config.fhir);
  const model = { current: undefined as LingshuClient | undefined };
  const metrics = new Metrics(store, {
    inFlight: () => model.current?.limiter.inFlight ?? 0,
    limit: () => model.current?.limiter.limit ?? 0,
    breakerOpen: () => model.current?.breaker.state === 'open',
  });
  const lingshu = new LingshuClient(config.lingshu, log, {
    observe: (outcome, seconds) => {
      metrics.modelRequests.inc({ outcome });
      if (outcome === 'ok' || outcome === 'bad_reply') metrics.modelSeconds.observe(seconds);
    },
  });
  model.current = lingshu;
  const release = (job: Job) => releaseIfUnneeded(received, store, job, log)
    .catch((err: unknown) => log.warn({ err: (err as Error).message, studyUid: job.studyUid }, 'cannot remove received instances'));
  const renderer = new RenderPool({ limits: { maxPixels: config.images.maxPixels }, memoryLimitMb: config.images.renderMemoryMb });
  const outputNames = config.mode === 'shadow' ? [] : config.outputs;
  let outputs: Map<string, ReportOutput>;
  try {
    outputs = createOutputs(outputNames, {
      fhir, studies, software: SOFTWARE, modelEndpoint: config.lingshu.url, waitMs: Math.max(1000, config.retrySeconds * 1000),
      hl7: config.hl7, sr: config.sr, reportEvents: (key) => store.outbox.events(key),
      report: { ...config.fhirReport, language: config.lingshu.language }, ...(config.lingshu.apiKey ? { modelApiKey: config.lingshu.apiKey } : {}),
      audit: auditGateway(config, fhir),
    });
  } catch (err) {
    await store.close();
    throw new ConfigError([(err as Error).message]);
  }
  const deliveries = new DeliveryRunner(store.outbox, outputs, log, {
    concurrency: Math.max(2, Math.min(8, config.workers)),
    retryBaseMs: config.retrySeconds * 1000,
    onFinished: (d) => {
      metrics.deliveryAttempts.inc({ output: d.output, kind: d.kind, state: d.state });
      // Posting the draft was the last read of the study's pushed instances.
      if (d.kind === 'drafted' && d.state !== 'pending') void store.get(d.jobId).then((job) => job && release(job), () => undefined);
      if (d.state === 'delivered' && d.output === 'fhir' && d.kind === 'drafted' && d.reference) return store.setReportRef(d.jobId, d.reference.replace(/\/_history\/.*$/, ''));
      return undefined;
    },
    ...(options.leaseMs !== undefined ? { leaseMs: options.leaseMs } : {}),
  });
  const pipeline = new Pipeline({
    store, studies, drafter: lingshu, renderer, dataDir: config.dataDir, mode: config.mode, outputs: outputNames,
    onDrafted: () => deliveries.wake(),
    ...(config.lingshu.prompt === 'clinical-context' ? { clinicalContext: clinicalContextSource(studies, fhir) } : {}),
    ...(config.lingshu.prompt === 'prior-report' ? { priorReport: priorReportSource(studies, fhir, log) } : {}),
  });
  const runner = new JobRunner(store, pipeline, log, {
    workers: config.workers,
    retryBaseMs: config.retrySeconds * 1000,
    dataDir: config.dataDir,
    onFinished: (job) => {
      metrics.jobsFinished.inc({ state: job.state });
      if (job.state === 'drafted' || job.state === 'shadowed') metrics.countDraft(job.draft);
      if (job.state === 'drafted' || job.state === 'shadowed') metrics.jobSeconds.observe((job.updatedAt - job.createdAt) / 1000);
      // Pushed instances are kept only until their job is done.
      void release(job);
    },
    ...(options.leaseMs !== undefined ? { leaseMs: options.leaseMs } : {}),
  });
  const close = async () => {
    await pipeline.close();
    await store.close();
  };
  return { store, dicomweb, received, studies, fhir, lingshu, runner, deliveries, metrics, renderer, close };
}

/** Where AuditEvents go: RADDRAFT_AUDIT_URL (with the FHIR server's credentials), else the FHIR server. */
function auditGateway(config: Config, fhir: FhirGateway): FhirGateway {
  return config.fhirReport.auditUrl ? new FhirGateway({ ...config.fhir, url: config.fhirReport.auditUrl }) : fhir;
}

async function reviewComponents(config: Config, c: Components, log: Logger): Promise<{ router: Router; auth: ReviewAuth }> {
  const sessions = await SessionKeeper.open(config.sessionSecret, config.dataDir);
  const auth = new ReviewAuth(config.auth, config.localReviewer, sessions, config.apiToken);
  const oidc = config.auth?.clientId && config.publicUrl
    ? new OidcLogin({ ...config.auth, clientId: config.auth.clientId }, config.publicUrl, auth)
    : undefined;
  return { auth, router: reviewRouter({ fhir: c.fhir, store: c.store, auth, oidc, images: new ViewerImages(c.dicomweb, config.dataDir, c.renderer), deliveries: c.deliveries, log, audit: auditGateway(config, c.fhir), software: SOFTWARE }) };
}

export interface RunningService extends Components {
  poller: QidoPoller;
  server: Server;
  port: number;
  stop(drainMs?: number): Promise<void>;
}

/** `raddraft serve`: intake, workers and the HTTP server, until stop() (SIGTERM). */
export async function startService(config: Config, log: Logger, options: ComponentOptions = {}): Promise<RunningService> {
  const components = await openComponents(config, log, options);
  const { store, dicomweb, fhir, lingshu, runner, deliveries, received, metrics } = components;
  await runner.recoverOrphans();
  await deliveries.recoverOrphans();
  const removed = await cleanLeftovers(config.dataDir, store);
  if (removed) log.info({ removed }, 'removed files left by an earlier run');
  const stopSweeps = await keepReceivedTidy(received, store, log);
  const poller = new QidoPoller(dicomweb, store, config, log.child({ intake: 'qido' }), () => runner.wake());
  const readiness = new Readiness({ name: 'job store', check: () => store.ping() }, [
    { name: 'DICOMweb', check: () => dicomweb.ping() },
    { name: 'FHIR', check: async () => {
      await fhir.capabilityStatement();
    } },
    {
      name: 'Lingshu',
      check: async () => {
        const models = await lingshu.listModels();
        if (!models.includes(config.lingshu.model)) throw new Error(`model ${config.lingshu.model} is not served (served: ${models.join(', ') || 'none'})`);
      },
    },
  ]);

  let accepting = true;
  const seen = (source: string) => async (instance: Received) => {
    if (!accepting) throw new ReceiveError('raddraft is shutting down; send the instance again shortly', FailureCode.outOfResources);
    const { job } = await store.observe({ studyUid: instance.studyUid, source, instanceCount: instance.instances, stableAfter: Date.now() + config.stableSeconds * 1000 });
    metrics.received.inc({ source, outcome: 'stored' });
    await releaseIfUnneeded(received, store, job, log);
    setTimeout(() => runner.wake(), config.stableSeconds * 1000 + 50).unref();
  };
  const refused = (source: string) => () => metrics.received.inc({ source, outcome: 'refused' });
  const routers: Router[] = [];
  if (config.intake.includes('stow')) {
    if (config.stowAuth.kind === 'none') log.warn('RADDRAFT_STOW_AUTH=none: STOW-RS accepts pushes from anyone who can reach this port; set RADDRAFT_STOW_AUTH=bearer:TOKEN or basic:USER:PASS');
    routers.push(stowRouter({ received, auth: config.stowAuth, onInstance: seen('stow'), onRefused: refused('stow'), log: log.child({ intake: 'stow' }) }));
  }
  if (config.intake.includes('fhir') && config.fhirNotifyToken) {
    routers.push(notifyRouter({
      token: config.fhirNotifyToken, store, fhir, log: log.child({ intake: 'fhir' }),
      onStudy: async (studyUid) => {
        const { created } = await store.observe({ studyUid, source: 'fhir', stableAfter: Date.now() + config.stableSeconds * 1000 });
        if (created) setTimeout(() => runner.wake(), config.stableSeconds * 1000 + 50).unref();
      },
      sweep: () => poller.catchUp(),
    }));
  }
  const review = await reviewComponents(config, components, log);
  routers.push(review.router);
  if (config.hl7.listenPort !== undefined) routers.push(hl7MessagesRouter(store, (req, change) => review.auth.forApi(req, change)));
  const app = createApp({ store, readiness, log, metrics, onRetry: () => runner.wake(), onDeliveryRetry: () => deliveries.wake(), routers, apiGuard: (req, change) => review.auth.forApi(req, change) });
  const http = await listen(app, config.port, config.host);
  const { server, port } = http;
  const scp = config.intake.includes('dimse')
    ? startDimseScp({
        port: config.dimse.port, aet: config.dimse.aet, peers: config.dimse.peers === '*' ? '*' : new Set(config.dimse.peers),
        received, onInstance: seen('dimse'), onRefused: refused('dimse'), log: log.child({ intake: 'dimse' }),
        maxPduBytes: config.dimse.maxPduBytes, idleSeconds: config.dimse.idleSeconds, maxAssociations: config.dimse.maxAssociations,
      })
    : undefined;
  let hl7: Hl7Listener | undefined;
  if (config.hl7.listenPort !== undefined) {
    const { senders, maxMessageBytes, idleMs } = config.hl7;
    hl7 = await startHl7Listener({ port: config.hl7.listenPort, host: config.host, senders, maxMessageBytes, idleMs, store, ...pacsLookups(dicomweb), log: log.child({ intake: 'hl7' }) });
  }
  if (config.intake.includes('fhir') && config.fhirNotifyToken) {
    if (config.publicUrl) {
      await ensureSubscription(fhir, `${config.publicUrl}/fhir/notify`, config.fhirNotifyToken).catch((err: unknown) =>
        log.warn({ err: (err as Error).message }, 'cannot register the FHIR Subscription; register one for ImagingStudy that posts to /fhir/notify'));
    } else {
      log.warn('RADDRAFT_PUBLIC_URL is unset, so raddraft cannot register its FHIR Subscription; register one for ImagingStudy that posts to <raddraft>/fhir/notify');
    }
  }
  runner.start();
  deliveries.start();
  if (config.intake.includes('qido')) poller.start();
  log.info({ port, version: SOFTWARE.version, intake: config.intake }, 'raddraft is serving');

  let stopping: Promise<void> | undefined;
  const stop = (drainMs?: number) =>
    (stopping ??= (async () => {
      log.info('stopping: intake first, then in-flight jobs');
      accepting = false;
      scp?.stop();
      await hl7?.stop();
      stopSweeps();
      await poller.stop();
      await runner.stop(drainMs ?? config.drainSeconds * 1000);
      await deliveries.stop(drainMs ?? config.drainSeconds * 1000);
      await http.close();
      await components.close();
      log.info('stopped');
    })());
  return { ...components, poller, server, port, stop };
}
