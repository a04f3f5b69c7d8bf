import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DiagnosticReport } from '@medplum/fhirtypes';
import { stowFiles } from '../../src/demo/stow.js';
import { cloneStudies, dcmtk } from '../harness/dcmtk.js';
import { search } from '../harness/fhir-queries.js';
import { fixture, serviceEnv, startPeers, type Peers } from '../harness/peers.js';
import { createTestDatabase, type TestDatabase } from '../harness/postgres.js';
import { startServe, waitForJobs, type ServeProcess } from '../harness/serve-process.js';

jest.setTimeout(300_000);

const STUDIES = 200;

describe('two raddraft replicas sharing one PostgreSQL job store', () => {
  let peers: Peers;
  let db: TestDatabase;
  let dir: string;
  const replicas: ServeProcess[] = [];
  let studies: { studyUid: string; file: string }[];

  beforeAll(async () => {
    peers = await startPeers();
    db = await createTestDatabase();
    dir = await mkdtemp(path.join(tmpdir(), 'raddraft-replicas-'));
    // Small images keep 200 studies quick; the behaviour under test is the sharing of jobs.
    const small = path.join(dir, 'small-pa.dcm');
    const pa = fixture('chest-pa-lat').files.find((f) => f.endsWith('pa-pa.dcm'))!;
    await dcmtk('dcmscale', ['--scale-x-factor', '0.25', '--scale-y-factor', '0.25', pa, small]);
    studies = await cloneStudies(small, STUDIES, dir);
    for (let i = 0; i < studies.length; i += 50) await stowFiles(peers.orthanc.dicomWebUrl, studies.slice(i, i + 50).map((s) => s.file));
  });

  afterAll(async () => {
    for (const r of replicas) await r.kill('SIGKILL');
    await peers?.stop();
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('posts exactly one report per study, with both replicas doing part of the work', async () => {
    for (const name of ['a', 'b']) {
      replicas.push(await startServe(serviceEnv(peers, path.join(dir, `data-${name}`), {
        RADDRAFT_DATABASE_URL: db.url, RADDRAFT_STABLE_SECONDS: '0', RADDRAFT_WORKERS: '6', RADDRAFT_LOG_LEVEL: 'info',
      })));
    }
    const jobs = await waitForJobs(replicas[0]!, studies.map((s) => s.studyUid), ['reported', 'dead'], 240_000);
    expect(jobs.filter((j) => j.state !== 'drafted')).toEqual([]);
    const reports = await search<DiagnosticReport>(peers.fhir.url, 'DiagnosticReport?_count=1000');
    expect(reports).toHaveLength(STUDIES);
    expect(new Set(reports.map((r) => r.identifier![0]!.value)).size).toBe(STUDIES);
    expect(peers.model.requests.filter((r) => r.answered === 'report')).toHaveLength(STUDIES);
    const postedBy = replicas.map((r) => (r.output().match(/"msg":"draft recorded; deliveries queued"/g) ?? []).length);
    expect(postedBy[0]! + postedBy[1]!).toBe(STUDIES);
    expect(Math.min(...postedBy)).toBeGreaterThan(0);
  });
});
