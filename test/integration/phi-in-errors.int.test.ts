import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FIXTURE_PHI } from '../../src/demo/phantom.js';
import { waitFor } from '../../src/demo/ports.js';
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
    // patient, then fails at the order search (its accession quoted back). Both errors are permanent (HTTP 400), so
    // each draft's delivery to the FHIR server ends dead with the server's words.
    peers.fhir.failNext(1, 400, (m, url) => m === 'GET' && url.startsWith('Patient?') && url.includes(FIXTURE_PHI.ids[1]!), echo);
    peers.fhir.failNext(1, 400, (m, url) => m === 'GET' && url.startsWith('ServiceRequest?') && url.includes(FIXTURE_PHI.accessions[0]!), echo);
    await peers.upload([mono1, paLat]);
    serve = await startServe(serviceEnv(peers, path.join(dir, 'data')));
  });

  afterAll(async () => {
    await serve?.kill('SIGTERM');
    await peers?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps the echoed Patient ID and accession out of delivery errors, job records and the log', async () => {
    const jobs = await waitForJobs(serve, [mono1.studyUid, paLat.studyUid], ['drafted']);
    const secrets = [...FIXTURE_PHI.ids, ...FIXTURE_PHI.accessions];
    interface Detail { deliveries: { output: string; state: string; lastError?: string }[] }
    const fhirDelivery = async (id: string) => ((await (await serve.api(`/api/jobs/${id}`)).json()) as Detail).deliveries.find((d) => d.output === 'fhir');
    await waitFor('both drafts\' FHIR deliveries to end dead', async () => (await Promise.all(jobs.map((j) => fhirDelivery(j.id)))).every((d) => d?.state === 'dead'), 60_000);

    for (const uid of [mono1.studyUid, paLat.studyUid]) {
      const job = jobs.find((j) => j.studyInstanceUid === uid)!;
      // The server's words are kept (they say what went wrong), the identifier is not.
      const delivery = await fhirDelivery(job.id);
      expect(delivery?.lastError).toContain('search value not accepted');
      expect(delivery?.lastError).toContain('[redacted]');
      const detail = await (await serve.api(`/api/jobs/${job.id}`)).text();
      for (const s of secrets) expect({ job: uid, leaked: detail.includes(s) ? s : undefined }).toEqual({ job: uid, leaked: undefined });
    }
    const list = (await (await serve.api('/api/jobs?limit=1000')).text()) + (await (await serve.api('/api/deliveries')).text());
    const log = serve.output();
    expect(log).toContain('search value not accepted');
    expect(list).toContain('[redacted]');
    for (const s of secrets) {
      expect({ where: 'job list', leaked: list.includes(s) ? s : undefined }).toEqual({ where: 'job list', leaked: undefined });
      expect({ where: 'log', leaked: log.includes(s) ? s : undefined }).toEqual({ where: 'log', leaked: undefined });
    }
  });
});
