import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DiagnosticReport } from '@medplum/fhirtypes';
import { search } from '../harness/fhir-queries.js';
import { fixture, serviceEnv, startPeers, type Peers } from '../harness/peers.js';
import { freePort } from '../../src/demo/ports.js';
import { runCli } from '../harness/serve-process.js';

jest.setTimeout(120_000);

const GOOD = {
  RADDRAFT_DICOMWEB_URL: 'http://127.0.0.1:1/dicom-web',
  RADDRAFT_FHIR_URL: 'http://127.0.0.1:1/fhir',
  RADDRAFT_LINGSHU_URL: 'http://127.0.0.1:1/v1',
};

async function serveWith(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const p = runCli(['serve'], env);
  const code = await p.exited;
  return { code, output: p.output() };
}

describe('raddraft serve with a bad configuration', () => {
  it('stops with exit code 78 and names a missing URL with an example', async () => {
    const { code, output } = await serveWith({ RADDRAFT_DICOMWEB_URL: GOOD.RADDRAFT_DICOMWEB_URL, RADDRAFT_LINGSHU_URL: GOOD.RADDRAFT_LINGSHU_URL });
    expect(code).toBe(78);
    expect(output).toContain('RADDRAFT_FHIR_URL is missing (FHIR R4 base URL); for example RADDRAFT_FHIR_URL=http://fhir:8080/fhir/R4');
  });

  it('names a malformed URL and what a good one looks like', async () => {
    const { code, output } = await serveWith({ ...GOOD, RADDRAFT_LINGSHU_URL: 'vllm:8000/v1' });
    expect(code).toBe(78);
    expect(output).toContain('RADDRAFT_LINGSHU_URL="vllm:8000/v1" is not an http(s) URL; for example RADDRAFT_LINGSHU_URL=http://vllm:8000/v1');
  });

  it('names a bad number, and every other problem in the same run', async () => {
    const { code, output } = await serveWith({ ...GOOD, RADDRAFT_POLL_SECONDS: 'often', RADDRAFT_MAX_IN_FLIGHT: '0' });
    expect(code).toBe(78);
    expect(output).toContain('RADDRAFT_POLL_SECONDS="often" is not a whole number; for example RADDRAFT_POLL_SECONDS=30');
    expect(output).toContain('RADDRAFT_MAX_IN_FLIGHT="0" is outside 1..256; for example RADDRAFT_MAX_IN_FLIGHT=8');
  });

  it('never prints a secret it rejects', async () => {
    const { code, output } = await serveWith({ ...GOOD, RADDRAFT_FHIR_AUTH: 'token-s3cr3t-value' });
    expect(code).toBe(78);
    expect(output).toContain('RADDRAFT_FHIR_AUTH=(value hidden) is not one of none, bearer:TOKEN, smart:CLIENT_ID:KEY_FILE:TOKEN_URL');
    expect(output).not.toContain('s3cr3t');
  });
});

describe('raddraft draft <StudyInstanceUID>', () => {
  let peers: Peers;
  let dataDir: string;

  beforeAll(async () => {
    peers = await startPeers();
    dataDir = await mkdtemp(path.join(tmpdir(), 'raddraft-cli-'));
    await peers.upload([fixture('chest-ap-mono1'), fixture('ct-chest')]);
  });

  afterAll(async () => {
    await peers?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('drafts the study now, prints the DiagnosticReport reference, and prints the same one when run again', async () => {
    const uid = fixture('chest-ap-mono1').studyUid;
    const first = runCli(['draft', uid], serviceEnv(peers, dataDir));
    expect(await first.exited).toBe(0);
    const ref = /^DiagnosticReport\/[\w-]+$/m.exec(first.output())?.[0];
    expect(ref).toBeDefined();
    const again = runCli(['draft', uid], serviceEnv(peers, dataDir));
    expect(await again.exited).toBe(0);
    expect(again.output()).toContain(ref!);
    expect(await search<DiagnosticReport>(peers.fhir.url, 'DiagnosticReport')).toHaveLength(1);
  });

  it('exits 3 and says why for a study that is not a chest radiograph', async () => {
    const uid = fixture('ct-chest').studyUid;
    const p = runCli(['draft', uid], serviceEnv(peers, dataDir));
    expect(await p.exited).toBe(3);
    expect(p.output()).toContain(`study ${uid} is not eligible: no CR or DX image in the study (Modality CT)`);
  });

  it('doctor reports every endpoint as answering', async () => {
    const p = runCli(['doctor'], serviceEnv(peers, dataDir));
    expect(await p.exited).toBe(0);
    for (const line of ['OK   DICOMweb (QIDO-RS)', 'OK   FHIR server', `OK   Lingshu model: ${peers.model.url} serves lingshu-medical-mllm/Lingshu-7B, took a test image and answered with Findings and Impression in `, 'All checks passed.']) {
      expect(p.output()).toContain(line);
    }
  });

  it('doctor says which model the endpoint serves when the configured one is wrong', async () => {
    const p = runCli(['doctor'], serviceEnv(peers, dataDir, { RADDRAFT_LINGSHU_MODEL: 'Lingshu-32B' }));
    expect(await p.exited).toBe(1);
    expect(p.output()).toContain(
      `FAIL Lingshu model: ${peers.model.url} does not serve Lingshu-32B; it serves lingshu-medical-mllm/Lingshu-7B. Set RADDRAFT_LINGSHU_MODEL to the name given to \`vllm serve\` (or its --served-model-name)`,
    );
  });

  it('doctor says so when the model answers the test image in another form', async () => {
    peers.model.script({ kind: 'garbage', text: 'This is an image of a grey square.' });
    const p = runCli(['doctor'], serviceEnv(peers, dataDir));
    expect(await p.exited).toBe(1);
    expect(p.output()).toContain('FAIL Lingshu model: lingshu-medical-mllm/Lingshu-7B answered the test image, but not in the "Findings: … Impression: …" form; is it a Lingshu model?');
  });

  it('backfill queues the studies of past days, shows progress, and resumes without doing a day twice', async () => {
    const env = serviceEnv(peers, path.join(dataDir, 'backfill'));
    const first = runCli(['backfill', '--since', '2026-02-27', '--until', '2026-03-02'], env);
    expect(await first.exited).toBe(0);
    expect(first.output()).toContain('4/4 days (20260302)');
    expect(first.output()).toContain('backfill done: 4 days, 2 studies seen, 1 queued for drafting, 1 not eligible.');
    const again = runCli(['backfill', '--since', '2026-02-27', '--until', '2026-03-02'], env);
    expect(await again.exited).toBe(0);
    expect(again.output()).toContain('backfill done: 4 days, 0 studies seen, 0 queued for drafting, 0 not eligible.');
    const bad = runCli(['backfill', '--since', '2026-02-30'], env);
    expect(await bad.exited).toBe(1);
    expect(bad.output()).toContain('"2026-02-30" is not a date like 2026-03-01');
  });

  it('rejects something that is not a UID before touching anything', async () => {
    const p = runCli(['draft', 'not-a-uid'], serviceEnv(peers, dataDir));
    expect(await p.exited).toBe(1);
    expect(p.output()).toContain('a Study Instance UID is digits and dots');
  });
});

describe('raddraft demo --exit', () => {
  it('drafts the sample studies, and only those, and says where to look', async () => {
    const p = runCli(['demo', '--exit'], { RADDRAFT_PORT: String(await freePort()) });
    expect(await p.exited).toBe(0);
    const out = p.output();
    expect(out).toContain('Uploading 4 sample studies to Orthanc over STOW-RS');
    expect(out).toContain('raddraft drafted 2 of 4 sample studies:');
    expect(out).toContain('ModalitiesInStudy is CT: not CR or DX');
    expect(out).toContain('not a chest study: BodyPartExamined is HAND');
    expect(out).toMatch(/Drafts awaiting sign-off: http:\/\/127\.0\.0\.1:\d+\/fhir\/DiagnosticReport\?status=partial,preliminary&_security=/);
    expect(out).toMatch(/Review and sign: +http:\/\/127\.0\.0\.1:\d+\/review/);
    expect(out).toContain('Draft SRs in the Orthanc studies');
    expect(out.match(/^ {2}[\d.]+ {2}http:\/\/127\.0\.0\.1:\d+\/app\/explorer\.html#study\?uuid=[0-9a-f-]{20,}$/gm)).toHaveLength(2);
  });
});
