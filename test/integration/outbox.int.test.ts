import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DiagnosticReport, Practitioner, Provenance, Task } from '@medplum/fhirtypes';
import { startOrthanc, type OrthancInstance } from '../../src/demo/orthanc.js';
import { waitFor } from '../../src/demo/ports.js';
import { stowFiles } from '../../src/demo/stow.js';
import { System } from '../../src/fhir/codes.js';
import { cloneStudies } from '../harness/dcmtk.js';
import { create, provenancesOfReport, search } from '../harness/fhir-queries.js';
import { fixture, serviceEnv, startPeers, type Peers } from '../harness/peers.js';
import { startProxy, type Proxy } from '../harness/proxy.js';
import { startServe, type ServeProcess } from '../harness/serve-process.js';
import { attemptsFile, readLines, type AttemptLine, type Control, type ReceivedLine } from '../harness/test-output.js';
import { startTokenIssuer, type TokenIssuer } from '../harness/token-issuer.js';

jest.setTimeout(240_000);

/*
 * Exactly once, in these tests, means: the receiver holds each report event once (one line per event id in the
 * test output's store, one DiagnosticReport, Provenance and Task per study at the FHIR server), however many times
 * raddraft handed the event over. A hand-over the receiver already held is recorded apart as a `duplicate`, so a
 * test can still see that raddraft sent it again (at least once) and that the receiver's idempotency absorbed it.
 */

interface ApiDelivery {
  id: string;
  reportKey: string;
  output: string;
  event: string;
  seq: number;
  state: string;
  attempts: number;
  reference?: string;
  lastError?: string;
  createdAt: string;
  updatedAt: string;
}

interface JobDetail {
  id: string;
  studyInstanceUid: string;
  state: string;
  deliveries: ApiDelivery[];
}

interface Scenario {
  serve: ServeProcess;
  studyUids: string[];
  log: string;
  control(c: Control): Promise<void>;
  /** Starts `raddraft serve` again on the same job store (after a kill). */
  restart(): Promise<ServeProcess>;
}

const TEST_OUTPUT = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'harness', 'test-output.ts');
const summary = (jobs: JobDetail[]) =>
  jobs.map((j) => `${j.studyInstanceUid.slice(-8)} ${j.state}: ${j.deliveries.map((d) => `${d.output}/${d.event}=${d.state}(${d.attempts})`).join(' ')}`).join('\n');

describe('the outbox delivers every report event to every output once, through faults of one output', () => {
  let peers: Peers;
  let issuer: TokenIssuer;
  let dir: string;
  let radiologist: Practitioner & { id: string };
  const running: ServeProcess[] = [];
  const pacses: OrthancInstance[] = [];
  const proxies: Proxy[] = [];
  let scenarios = 0;
  const figures: string[] = [];
  const since = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
  const took = (d: ApiDelivery) => `${((Date.parse(d.updatedAt) - Date.parse(d.createdAt)) / 1000).toFixed(1)} s`;

  beforeAll(async () => {
    peers = await startPeers();
    issuer = await startTokenIssuer();
    dir = await mkdtemp(path.join(tmpdir(), 'raddraft-outbox-'));
    radiologist = await create<Practitioner>(peers.fhir.url, { resourceType: 'Practitioner', name: [{ family: 'Example', given: ['Ada'] }] });
  });

  afterEach(async () => {
    for (const s of running.splice(0)) await s.kill('SIGKILL');
    for (const p of proxies.splice(0)) await p.stop();
    for (const o of pacses.splice(0)) await o.stop();
  });

  afterAll(async () => {
    // Measured, never asserted: for the record of how long deliveries take on this machine.
    if (figures.length) process.stdout.write(`outbox figures:\n${figures.map((f) => `  ${f}`).join('\n')}\n`);
    await issuer?.stop();
    await peers?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** A PACS of its own (so no scenario drafts another's studies), `count` fresh studies, and raddraft with fhir,test. */
  async function scenario(count: number, control: Control, extra: Record<string, string> = {}): Promise<Scenario> {
    const own = path.join(dir, `s${++scenarios}`);
    await mkdir(own, { recursive: true });
    const pacs = await startOrthanc();
    pacses.push(pacs);
    const studies = await cloneStudies(fixture('chest-ap-mono1').files[0]!, count, own);
    await stowFiles(pacs.dicomWebUrl, studies.map((s) => s.file));
    const log = path.join(own, 'received.jsonl');
    const controlFile = path.join(own, 'control.json');
    const setControl = (c: Control) => writeFile(controlFile, JSON.stringify(c));
    await setControl(control);
    const env = serviceEnv(peers, path.join(own, 'data'), {
      RADDRAFT_DICOMWEB_URL: pacs.dicomWebUrl,
      RADDRAFT_OUTPUTS: 'fhir,test',
      RADDRAFT_MAX_ATTEMPTS: '6',
      RADDRAFT_WORKERS: '4',
      TEST_OUTPUT_LOG: log,
      TEST_OUTPUT_CONTROL: controlFile,
      RADDRAFT_API_TOKEN: randomBytes(32).toString('base64url'),
      RADDRAFT_AUTH_ISSUER: issuer.issuer,
      RADDRAFT_AUTH_AUDIENCE: 'raddraft',
      RADDRAFT_AUTH_JWKS_URL: issuer.jwksUrl,
      RADDRAFT_AUTH_SIGNER_ROLE: 'radiologist',
      ...extra,
    });
    const start = async () => {
      const s = await startServe(env, { nodeArgs: ['--import', TEST_OUTPUT] });
      running.push(s);
      return s;
    };
    return { serve: await start(), studyUids: studies.map((s) => s.studyUid), log, control: setControl, restart: start };
  }

  async function jobsOf(serve: ServeProcess, uids: string[]): Promise<JobDetail[]> {
    const res = await serve.api('/api/jobs?limit=1000', { headers: serve.jobsHeaders });
    const { jobs } = (await res.json()) as { jobs: { id: string; studyInstanceUid: string }[] };
    return Promise.all(uids.map(async (uid) => {
      const job = jobs.find((j) => j.studyInstanceUid === uid);
      if (!job) throw new Error(`no job yet for study …${uid.slice(-8)}`);
      return (await (await serve.api(`/api/jobs/${job.id}`, { headers: serve.jobsHeaders })).json()) as JobDetail;
    }));
  }

  /** Waits until `ok` holds for the jobs of `uids` (read from the API as they are); a timeout shows where each stands. */
  async function waitForJobs(serve: ServeProcess, uids: string[], what: string, ok: (jobs: JobDetail[]) => boolean | Promise<boolean>, timeoutMs = 90_000): Promise<JobDetail[]> {
    let jobs: JobDetail[] = [];
    try {
      await waitFor(what, async () => ok((jobs = await jobsOf(serve, uids))), timeoutMs, 250);
    } catch (err) {
      throw new Error(`${(err as Error).message}; now:\n${summary(jobs)}\n${serve.output().slice(-1500)}`, { cause: err });
    }
    return jobs;
  }

  const of = (job: JobDetail, output: string, event = 'drafted') => job.deliveries.find((d) => d.output === output && d.event === event);
  const allDelivered = (output: string, event = 'drafted') => (jobs: JobDetail[]) => jobs.every((j) => of(j, output, event)?.state === 'delivered');
  const eventIds = (jobs: JobDetail[], event = 'drafted') => jobs.map((j) => `${of(j, 'fhir', event)!.reportKey}:${of(j, 'fhir', event)!.seq}`);

  /** The receiver holds exactly these events, each once. */
  function expectHeldOnce(log: string, events: string[]): void {
    const held = readLines<ReceivedLine>(log).map((l) => l.event);
    expect([...held].sort()).toEqual([...events].sort());
  }

  /** One DiagnosticReport per report key at the FHIR server, with its one AI Provenance and one review Task. */
  async function expectOneReportEach(keys: string[]): Promise<void> {
    for (const key of keys) {
      const reports = await search<DiagnosticReport>(peers.fhir.url, `DiagnosticReport?identifier=${encodeURIComponent(`${System.draftReport}|${key}`)}`);
      expect({ key, reports: reports.length }).toEqual({ key, reports: 1 });
      const id = reports[0]!.id!;
      expect({ key, provenances: (await provenancesOfReport<Provenance>(peers.fhir.url, id)).length }).toEqual({ key, provenances: 1 });
      expect({ key, tasks: (await search<Task>(peers.fhir.url, `Task?focus=DiagnosticReport/${id}`)).length }).toEqual({ key, tasks: 1 });
    }
  }

  it('gives an output that refuses three times then recovers each event once, after four attempts, while FHIR has one report per study', async () => {
    const s = await scenario(2, { mode: 'retry', times: 3 });
    const jobs = await waitForJobs(s.serve, s.studyUids, 'both outputs to have every draft', (js) => allDelivered('fhir')(js) && allDelivered('test')(js));
    figures.push(`refused three times: recorded to delivered ${jobs.map((j) => took(of(j, 'test')!)).join(', ')}; fhir ${jobs.map((j) => took(of(j, 'fhir')!)).join(', ')}`);
    for (const job of jobs) {
      expect(job.state).toBe('drafted');
      expect(of(job, 'test')).toMatchObject({ state: 'delivered', attempts: 4, reference: `test/${eventIds([job])[0]}` });
      expect(of(job, 'fhir')).toMatchObject({ state: 'delivered', attempts: 1 });
    }
    expectHeldOnce(s.log, eventIds(jobs));
    const answers = readLines<AttemptLine>(attemptsFile(s.log));
    for (const id of eventIds(jobs)) expect(answers.filter((a) => a.event === id).map((a) => a.answer)).toEqual(['retry', 'retry', 'retry', 'delivered']);
    await expectOneReportEach(jobs.map((j) => of(j, 'fhir')!.reportKey));
  });

  it('lets an output that is down wait without using attempts while FHIR deliveries complete, then delivers each event once', async () => {
    const s = await scenario(2, { mode: 'wait', ms: 1500 });
    const waitedOut = (js: JobDetail[]) => js.every((j) => readLines<AttemptLine>(attemptsFile(s.log)).filter((a) => a.event === eventIds([j])[0] && a.answer === 'wait').length >= 3);
    const down = await waitForJobs(s.serve, s.studyUids, 'FHIR to have every draft and the test output to have answered wait three times each',
      (js) => allDelivered('fhir')(js) && js.every((j) => of(j, 'test')) && waitedOut(js));
    for (const job of down) {
      expect(job.state).toBe('drafted');
      expect(of(job, 'test')).toMatchObject({ state: 'pending', attempts: 0, lastError: 'test output is down' });
    }
    expectHeldOnce(s.log, []);
    await s.control({ mode: 'deliver' });
    const back = Date.now();
    const jobs = await waitForJobs(s.serve, s.studyUids, 'the test output to have every draft once it is back', allDelivered('test'), 30_000);
    figures.push(`down then back: fhir recorded to delivered ${down.map((j) => took(of(j, 'fhir')!)).join(', ')}; test output delivered all ${since(back)} after it came back`);
    for (const job of jobs) expect(of(job, 'test')).toMatchObject({ state: 'delivered', attempts: 1 });
    expectHeldOnce(s.log, eventIds(jobs));
    await expectOneReportEach(jobs.map((j) => of(j, 'fhir')!.reportKey));
  });

  it('ends an output that refuses for good dead with its reason, lets FHIR complete, and delivers on a retry through the API', async () => {
    const reason = 'the receiver has no destination for this report type';
    const s = await scenario(2, { mode: 'permanent', reason });
    const dead = await waitForJobs(s.serve, s.studyUids, 'FHIR delivered and the test output dead', (js) => allDelivered('fhir')(js) && js.every((j) => of(j, 'test')?.state === 'dead'));
    for (const job of dead) {
      expect(job.state).toBe('drafted');
      expect(of(job, 'test')).toMatchObject({ state: 'dead', attempts: 1, lastError: reason });
    }
    const listed = (await (await s.serve.api('/api/deliveries?state=dead', { headers: s.serve.jobsHeaders })).json()) as { deliveries: ApiDelivery[] };
    expect(listed.deliveries.map((d) => ({ id: d.id, output: d.output, lastError: d.lastError })).sort((a, b) => a.id.localeCompare(b.id)))
      .toEqual(dead.map((j) => ({ id: of(j, 'test')!.id, output: 'test', lastError: reason })).sort((a, b) => a.id.localeCompare(b.id)));
    expectHeldOnce(s.log, []);

    await s.control({ mode: 'deliver' });
    for (const job of dead) {
      const res = await s.serve.api(`/api/deliveries/${encodeURIComponent(of(job, 'test')!.id)}/retry`, { method: 'POST', headers: s.serve.jobsHeaders });
      expect(res.status).toBe(202);
    }
    const retried = Date.now();
    const jobs = await waitForJobs(s.serve, s.studyUids, 'the retried deliveries to arrive', allDelivered('test'), 30_000);
    figures.push(`dead then retried through the API: all delivered ${since(retried)} after the retries`);
    for (const job of jobs) {
      expect(of(job, 'test')).toMatchObject({ state: 'delivered', attempts: 1 });
      expect(of(job, 'test')!.lastError).toBeUndefined();
    }
    expectHeldOnce(s.log, eventIds(jobs));
    await expectOneReportEach(jobs.map((j) => of(j, 'fhir')!.reportKey));
  });

  it('holds every event once at each output after kill -9 during deliveries to both outputs and a restart', async () => {
    // The test output takes each draft and then does not answer; the FHIR server carries out the first transaction
    // and answers late. raddraft is killed while it waits for both.
    const s = await scenario(2, { mode: 'hang', ms: 600_000, received: true });
    peers.fhir.delayNext(1, 20_000, (method, url) => method === 'POST' && url === '');
    const reportsOf = (key: string) => search<DiagnosticReport>(peers.fhir.url, `DiagnosticReport?identifier=${encodeURIComponent(`${System.draftReport}|${key}`)}`);
    let waiting: ApiDelivery[] = [];
    await waitForJobs(s.serve, s.studyUids, 'both drafts in the hands of the test output and one at the FHIR server unanswered', async (js) => {
      const hanging = new Set(readLines<AttemptLine>(attemptsFile(s.log)).filter((a) => a.answer === 'hanging').map((a) => a.event));
      waiting = js.map((j) => of(j, 'fhir')).filter((d): d is ApiDelivery => d?.state === 'pending');
      const carriedOut = (await Promise.all(waiting.map(async (d) => (await reportsOf(d.reportKey)).length))).some((n) => n > 0);
      return carriedOut && js.every((j) => j.state === 'drafted' && hanging.has(eventIds([j])[0]!) && of(j, 'test')?.state === 'pending');
    }, 60_000);
    expect(waiting.length).toBeGreaterThanOrEqual(1);
    await s.serve.kill('SIGKILL');

    await s.control({ mode: 'deliver' });
    const restarted = Date.now();
    const again = await s.restart();
    const jobs = await waitForJobs(again, s.studyUids, 'every delivery done after the restart', (js) => allDelivered('fhir')(js) && allDelivered('test')(js));
    figures.push(`kill -9 and restart: every delivery done ${since(restarted)} after the restart began`);
    expect(again.output()).toContain('took over deliveries left by a stopped raddraft process');
    for (const job of jobs) expect(job.state).toBe('drafted');
    expectHeldOnce(s.log, eventIds(jobs));
    // Both drafts were handed over a second time after the restart; the receiver kept one of each.
    const duplicates = readLines<AttemptLine>(attemptsFile(s.log)).filter((a) => a.answer === 'duplicate').map((a) => a.event);
    expect(duplicates.sort()).toEqual(eventIds(jobs).sort());
    await expectOneReportEach(jobs.map((j) => of(j, 'fhir')!.reportKey));
  });

  it('keeps delivering to FHIR while the test output hangs, even with only two delivery workers', async () => {
    // RADDRAFT_WORKERS=2 gives two delivery workers; without a share per output both would hang on the test output.
    const s = await scenario(3, { mode: 'hang', ms: 600_000 }, { RADDRAFT_WORKERS: '2' });
    const jobs = await waitForJobs(s.serve, s.studyUids, 'FHIR to have every draft while the test output hangs', allDelivered('fhir'), 45_000);
    figures.push(`test output hanging, two workers: fhir recorded to delivered ${jobs.map((j) => took(of(j, 'fhir')!)).join(', ')}`);
    for (const job of jobs) expect(of(job, 'test')).toMatchObject({ state: 'pending', attempts: 0 });
    expectHeldOnce(s.log, []);
    await expectOneReportEach(jobs.map((j) => of(j, 'fhir')!.reportKey));
  });

  it('gives up an attempt that outlasts its lease and tries again, so no two workers hand over one event at once', async () => {
    // The default lease is 60 s; the test output would answer only after 120 s.
    const s = await scenario(1, { mode: 'hang', ms: 120_000, once: true });
    const jobs = await waitForJobs(s.serve, s.studyUids, 'the hanging attempt to be given up and the next to deliver', allDelivered('test'), 110_000);
    expect(of(jobs[0]!, 'test')).toMatchObject({ state: 'delivered', attempts: 2 });
    expect(s.serve.output()).toContain('"reason":"test did not answer within 54 s"');
    const [id] = eventIds(jobs);
    expect(readLines<AttemptLine>(attemptsFile(s.log)).filter((a) => a.event === id).map((a) => a.answer)).toEqual(['hanging', 'delivered']);
    expectHeldOnce(s.log, [id!]);
  });

  it('records a signature while the FHIR server is down (202), refuses a second one, and delivers it to both outputs in order', async () => {
    const fhir = await startProxy(peers.fhir.url);
    proxies.push(fhir);
    const s = await scenario(1, { mode: 'deliver' }, { RADDRAFT_FHIR_URL: fhir.url });
    const [drafted] = await waitForJobs(s.serve, s.studyUids, 'the draft at both outputs', (js) => allDelivered('fhir')(js) && allDelivered('test')(js));
    const reportId = /^DiagnosticReport\/([^/]+)/.exec(of(drafted!, 'fhir')!.reference!)![1]!;
    const report = (await search<DiagnosticReport>(peers.fhir.url, `DiagnosticReport?_id=${reportId}`))[0]!;
    const token = await issuer.token({ sub: 'ada', name: 'Dr Ada Example', fhirUser: `https://fhir.hospital.example/Practitioner/${radiologist.id}`, roles: ['radiologist'] });
    const sign = (findings: string) => s.serve.api(`/api/reports/${reportId}/sign`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ findings, impression: 'No acute cardiopulmonary process.', version: report.meta!.versionId }),
    });

    fhir.set({ kind: 'down' });
    const signing = Date.now();
    const first = await sign('The lungs are clear.');
    figures.push(`sign with the FHIR server down: answered 202 in ${since(signing)}`);
    const body = (await first.json()) as { status: string; message?: string; pending: { output: string }[] };
    expect(first.status).toBe(202);
    expect(body.status).toBe('recorded');
    expect(body.message).toMatch(/^Recorded\. The FHIR server cannot take it now \(.+\); raddraft delivers it as soon as it answers\.$/);
    expect(body.pending.map((p) => p.output)).toContain('fhir');
    const recordedAt = Date.now();

    // The same signature again (its answer was lost) gets the same answer; a different one is refused.
    const repeat = await sign('The lungs are clear.');
    expect(repeat.status).toBe(202);
    expect(((await repeat.json()) as { status: string }).status).toBe('recorded');
    const second = await sign('The lungs are clear. Small left effusion.');
    expect(second.status).toBe(409);
    expect((await search<DiagnosticReport>(peers.fhir.url, `DiagnosticReport?_id=${reportId}`))[0]!.status).toBe(report.status);

    // Until the FHIR server has the signature, the other outputs do not receive it.
    const [held] = await waitForJobs(s.serve, s.studyUids, 'raddraft to try the FHIR server again from the outbox', (js) => {
      const d = of(js[0]!, 'fhir', 'signed');
      return !!d && Date.parse(d.updatedAt) > recordedAt + 1000;
    }, 30_000);
    expect(of(held!, 'fhir', 'signed')).toMatchObject({ state: 'pending', attempts: 0 });
    expect(of(held!, 'test', 'signed')).toMatchObject({ state: 'pending', attempts: 0 });
    expect(readLines<ReceivedLine>(s.log).map((l) => l.kind)).toEqual(['drafted']);

    fhir.set({ kind: 'pass' });
    const up = Date.now();
    await waitFor('the signature at the FHIR server', async () => (await search<DiagnosticReport>(peers.fhir.url, `DiagnosticReport?_id=${reportId}`))[0]!.status === 'final', 30_000, 250);
    figures.push(`FHIR server back: report final ${since(up)} later`);
    const [signed] = await waitForJobs(s.serve, s.studyUids, 'the signature at both outputs', (js) => allDelivered('fhir', 'signed')(js) && allDelivered('test', 'signed')(js), 30_000);
    expect(of(signed!, 'fhir', 'signed')).toMatchObject({ state: 'delivered', attempts: 1 });
    const final = (await search<DiagnosticReport>(peers.fhir.url, `DiagnosticReport?_id=${reportId}`))[0]!;
    expect(final.resultsInterpreter?.[0]?.reference).toBe(`Practitioner/${radiologist.id}`);
    expect(readLines<ReceivedLine>(s.log).map((l) => l.kind)).toEqual(['drafted', 'signed']);
    expectHeldOnce(s.log, [...eventIds([signed!]), ...eventIds([signed!], 'signed')]);
  });
});
