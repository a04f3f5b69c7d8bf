import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FIXTURE_PHI } from '../../src/demo/phantom.js';
import { fixture, serviceEnv, startPeers, type Peers } from '../harness/peers.js';
import { startServe, waitForJobs, type ServeProcess } from '../harness/serve-process.js';

jest.setTimeout(180_000);

/** Some FHIR servers quote the failing search in their OperationOutcome, identifier value and all. */
const echo = (method: string, url: string) => `cannot process ${method} ${url}: search value not accepted`;

describe('identifiers quoted back by a FHIR server', () => {
  let peers: Peers;
  let dir: string;
  let serve: ServeProcess;
  const mono1 = fixture('chest-ap-mono1');
  const paLat = fixture('chest-pa-lat');

  beforeAll(async () => {
    peers = await startPeers();
    dir = await mkdtemp(path.join(tmpdir(), 'raddraft-phi-errors-'));
    // The AP study fails at the Patient search (its Patient ID quoted back); the PA + lateral study finds no
    // patient, then fails at the order search (its accession quoted back). Both errors are permanent (HTTP 400).
    peers.fhir.failNext(1, 400, (m, url) => m === 'GET' && url.startsWith('Patient?') && url.includes(FIXTURE_PHI.ids[1]!), echo);
    peers.fhir.failNext(1, 400, (m, url) => m === 'GET' && url.startsWith('ServiceRequest?') && url.includes(FIXTURE_PHI.accessions[0]!), echo);
    await peers.upload([mono1, paLat]);
    serve = await startServe(serviceEnv(peers, path.join(dir, 'data'), { RADDRAFT_MAX_ATTEMPTS: '1' }));
  });

  afterAll(async () => {
    await serve?.kill('SIGTERM');
    await peers?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps the echoed Patient ID and accession out of job reasons, job events and the log', async () => {
    const jobs = await waitForJobs(serve, [mono1.studyUid, paLat.studyUid], ['dead']);
    const secrets = [FIXTURE_PHI.ids[1]!, FIXTURE_PHI.accessions[0]!, ...FIXTURE_PHI.ids, ...FIXTURE_PHI.accessions];

    for (const uid of [mono1.studyUid, paLat.studyUid]) {
      const job = jobs.find((j) => j.studyInstanceUid === uid)!;
      // The server's words are kept (they say what went wrong), the identifier is not.
      expect(job.reason).toContain('search value not accepted');
      expect(job.reason).toContain('[redacted]');
      const detail = await (await serve.api(`/api/jobs/${job.id}`)).text();
      for (const s of secrets) expect({ job: uid, leaked: detail.includes(s) ? s : undefined }).toEqual({ job: uid, leaked: undefined });
    }
    const list = await (await serve.api('/api/jobs?limit=1000')).text();
    const log = serve.output();
    expect(log).toContain('search value not accepted');
    for (const s of secrets) {
      expect({ where: 'job list', leaked: list.includes(s) ? s : undefined }).toEqual({ where: 'job list', leaked: undefined });
      expect({ where: 'log', leaked: log.includes(s) ? s : undefined }).toEqual({ where: 'log', leaked: undefined });
    }
  });
});
