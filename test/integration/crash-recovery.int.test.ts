import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Device, DiagnosticReport, DocumentReference, Provenance, Task } from '@medplum/fhirtypes';
import { waitFor } from '../../src/demo/ports.js';
import { provenancesOfReport, search } from '../harness/fhir-queries.js';
import { fixture, serviceEnv, startPeers, type Peers } from '../harness/peers.js';
import { listJobs, startServe, waitForJobs, type ServeProcess } from '../harness/serve-process.js';

jest.setTimeout(180_000);

describe('raddraft killed with SIGKILL while jobs are in flight', () => {
  let peers: Peers;
  let dataDir: string;
  const running: ServeProcess[] = [];
  const studies = [fixture('chest-pa-lat'), fixture('chest-ap-mono1')];
  const start = async () => {
    const s = await startServe(serviceEnv(peers, dataDir, { RADDRAFT_WORKERS: '2' }));
    running.push(s);
    return s;
  };

  beforeAll(async () => {
    peers = await startPeers();
    dataDir = await mkdtemp(path.join(tmpdir(), 'raddraft-crash-'));
    await peers.upload(studies);
  });

  afterAll(async () => {
    for (const s of running) await s.kill('SIGKILL');
    await peers?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('ends with exactly one report per study after kills during drafting and during delivery to the FHIR server', async () => {
    // 1. Kill while both studies wait on a slow model.
    peers.model.setDefault({ kind: 'report', delayMs: 4000 });
    const first = await start();
    await waitForJobs(first, studies.map((s) => s.studyUid), ['drafting'], 60_000);
    await first.kill('SIGKILL');

    // 2. Kill after the FHIR server carried out the first transaction but before raddraft heard back.
    peers.model.setDefault({ kind: 'report' });
    peers.fhir.delayNext(1, 8000, (method, url) => method === 'POST' && url === '');
    const second = await start();
    await waitFor('a transaction to reach the FHIR server', async () => (await search(peers.fhir.url, 'DiagnosticReport')).length > 0, 60_000);
    // The job is drafted; its delivery to the FHIR server is the step under way.
    const drafted = (await listJobs(second)).filter((j) => j.state === 'drafted');
    const details = await Promise.all(drafted.map(async (j) => (await (await second.api(`/api/jobs/${j.id}`)).json()) as { deliveries: { output: string; state: string }[] }));
    expect(details.some((d) => d.deliveries.some((x) => x.output === 'fhir' && x.state === 'pending'))).toBe(true);
    await second.kill('SIGKILL');

    // 3. Start again and let everything finish.
    const third = await start();
    const jobs = await waitForJobs(third, studies.map((s) => s.studyUid), ['reported'], 90_000);
    expect(third.output()).toContain('took over deliveries left by a stopped raddraft process');

    const reports = await search<DiagnosticReport>(peers.fhir.url, 'DiagnosticReport?_count=100');
    expect(reports).toHaveLength(2);
    for (const s of studies) {
      const job = jobs.find((j) => j.studyInstanceUid === s.studyUid)!;
      const id = job.reportRef!.split('/')[1]!;
      expect(reports.map((r) => r.id)).toContain(id);
      expect(await provenancesOfReport<Provenance>(peers.fhir.url, id)).toHaveLength(1);
      expect(await search<Task>(peers.fhir.url, `Task?focus=DiagnosticReport/${id}`)).toHaveLength(1);
    }
    expect(await search<Device>(peers.fhir.url, 'Device')).toHaveLength(1);
    // One prompt and one model card, however often the transaction was sent.
    expect(await search<DocumentReference>(peers.fhir.url, 'DocumentReference')).toHaveLength(2);
  });
});
