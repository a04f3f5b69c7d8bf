import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DiagnosticReport, Provenance, Task } from '@medplum/fhirtypes';
import { waitFor } from '../../src/demo/ports.js';
import { stowFiles } from '../../src/demo/stow.js';
import { cloneStudies } from '../harness/dcmtk.js';
import { provenancesOfReport, search } from '../harness/fhir-queries.js';
import { fixture, serviceEnv, startPeers, type Peers } from '../harness/peers.js';
import { startProxy, type Proxy } from '../harness/proxy.js';
import { listJobs, startServe, waitForJobs, type ApiJob, type ServeProcess } from '../harness/serve-process.js';

jest.setTimeout(240_000);

/** Every report has its one Provenance and one Task: nothing was left half-posted. */
async function expectWhole(fhirUrl: string, count: number): Promise<void> {
  const reports = await search<DiagnosticReport>(fhirUrl, 'DiagnosticReport?_count=500');
  expect(reports).toHaveLength(count);
  expect(new Set(reports.map((r) => r.identifier![0]!.value)).size).toBe(count);
  for (const r of reports) {
    expect({ report: r.id, provenance: (await provenancesOfReport<Provenance>(fhirUrl, r.id!)).length }).toEqual({ report: r.id, provenance: 1 });
    expect({ report: r.id, tasks: (await search<Task>(fhirUrl, `Task?focus=DiagnosticReport/${r.id}`)).length }).toEqual({ report: r.id, tasks: 1 });
  }
}

describe('raddraft through PACS, FHIR server and model faults', () => {
  let peers: Peers;
  let pacs: Proxy;
  let dir: string;
  const running: ServeProcess[] = [];
  let studies: { studyUid: string; file: string }[];

  beforeAll(async () => {
    peers = await startPeers();
    pacs = await startProxy(peers.orthanc.dicomWebUrl);
    dir = await mkdtemp(path.join(tmpdir(), 'raddraft-faults-'));
    studies = await cloneStudies(fixture('chest-ap-mono1').files[0]!, 6, dir);
  });

  afterAll(async () => {
    for (const s of running) await s.kill('SIGKILL');
    await pacs?.stop();
    await peers?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const start = async (extra: Record<string, string> = {}) => {
    const s = await startServe(serviceEnv(peers, path.join(dir, 'data'), { RADDRAFT_DICOMWEB_URL: pacs.url, RADDRAFT_STABLE_SECONDS: '2', ...extra }));
    running.push(s);
    return s;
  };

  it('waits out a PACS that goes down after studies were found, and a FHIR server answering 500, losing nothing', async () => {
    const serve = await start();
    await stowFiles(peers.orthanc.dicomWebUrl, studies.slice(0, 3).map((s) => s.file));
    await waitForJobs(serve, studies.slice(0, 3).map((s) => s.studyUid), ['discovered']);
    pacs.set({ kind: 'down' });
    peers.fhir.failNext(2, 500, (method, url) => method === 'POST' && url === '');
    await waitFor('a job to wait for the PACS', async () => (await listJobs(serve)).some((j) => j.reason?.includes('cannot reach the PACS')), 30_000);
    pacs.set({ kind: 'pass' });
    const jobs = await waitForJobs(serve, studies.slice(0, 3).map((s) => s.studyUid), ['reported', 'dead'], 120_000);
    expect(jobs.map((j) => j.state)).toEqual(['drafted', 'drafted', 'drafted']);
    // The PACS outage cost no attempt; each FHIR 500 cost one attempt of a delivery (which counts its success too).
    expect(jobs.reduce((n, j) => n + j.attempts, 0)).toBe(0);
    const deliveries = await Promise.all(jobs.map(async (j) => ((await (await serve.api(`/api/jobs/${j.id}`)).json()) as { deliveries: { attempts: number }[] }).deliveries));
    expect(deliveries.flat().reduce((n, d) => n + d.attempts, 0)).toBe(3 + 2);
    await expectWhole(peers.fhir.url, 3);
    await serve.kill('SIGTERM');
  });

  it('ends with one report per study after a kill -9 while instances are being fetched', async () => {
    pacs.set({ kind: 'slow', delayMs: 4000, match: (method, url) => method === 'GET' && /\/instances\//.test(url) });
    const first = await start();
    await stowFiles(peers.orthanc.dicomWebUrl, studies.slice(3).map((s) => s.file));
    await waitForJobs(first, studies.slice(3).map((s) => s.studyUid), ['rendering'], 60_000);
    await first.kill('SIGKILL');
    pacs.set({ kind: 'pass' });
    const second = await start();
    const jobs = await waitForJobs(second, studies.map((s) => s.studyUid), ['reported', 'dead'], 120_000);
    expect(jobs.filter((j: ApiJob) => j.state !== 'drafted')).toEqual([]);
    await expectWhole(peers.fhir.url, 6);
    await second.kill('SIGTERM');
  });
});

describe('raddraft stopped with SIGTERM while drafting', () => {
  let peers: Peers;
  let dir: string;
  let running: ServeProcess | undefined;

  beforeAll(async () => {
    peers = await startPeers();
    dir = await mkdtemp(path.join(tmpdir(), 'raddraft-shutdown-'));
  });

  afterAll(async () => {
    await running?.kill('SIGKILL');
    await peers?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('finishes the draft in hand when it can, gives it back when it cannot, and loses nothing', async () => {
    const [quick, slow] = await cloneStudies(fixture('chest-ap-mono1').files[0]!, 2, dir);
    const env = serviceEnv(peers, path.join(dir, 'data'), { RADDRAFT_DRAIN_SECONDS: '2', RADDRAFT_WORKERS: '1' });
    peers.model.script({ kind: 'report', delayMs: 1000 }, { kind: 'report', delayMs: 20_000 });

    // A draft that takes one second finishes within the two seconds allowed.
    running = await startServe(env);
    await stowFiles(peers.orthanc.dicomWebUrl, [quick!.file]);
    await waitForJobs(running, [quick!.studyUid], ['drafting']);
    await running.kill('SIGTERM');
    expect(await running.exited).toBe(0);
    expect(running.output()).toContain('stopping: intake first, then in-flight jobs');

    // A draft that would take twenty seconds is given back, and the next start drafts it.
    running = await startServe(env);
    await waitForJobs(running, [quick!.studyUid], ['reported']);
    await stowFiles(peers.orthanc.dicomWebUrl, [slow!.file]);
    await waitForJobs(running, [slow!.studyUid], ['drafting']);
    const stoppedAt = Date.now();
    await running.kill('SIGTERM');
    expect(await running.exited).toBe(0);
    expect(Date.now() - stoppedAt).toBeLessThan(15_000);
    expect(running.output()).toContain('jobs still running at shutdown; interrupting and releasing them');
    running = await startServe(env);
    const jobs = await waitForJobs(running, [quick!.studyUid, slow!.studyUid], ['reported'], 60_000);
    expect(jobs.every((j) => j.attempts === 0)).toBe(true);
    // The pictures rendered before the stop were kept for the next start, which drafted from them.
    const given = jobs.find((j) => j.studyInstanceUid === slow!.studyUid)!;
    const { events } = (await (await running.api(`/api/jobs/${given.id}`)).json()) as { events: { to: string }[] };
    expect(events.map((e) => e.to).filter((to) => to === 'rendering' || to === 'drafting')).toEqual(['rendering', 'drafting']);
    await expectWhole(peers.fhir.url, 2);
  });
});
