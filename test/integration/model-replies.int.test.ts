import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DiagnosticReport } from '@medplum/fhirtypes';
import { search } from '../harness/fhir-queries.js';
import { fixture, serviceEnv, startPeers, type Peers } from '../harness/peers.js';
import { startServe, waitForJobs, type ServeProcess } from '../harness/serve-process.js';

jest.setTimeout(120_000);

const KEY_SYSTEM = 'https://raddraft.dev/fhir/sid/ai-draft-report';
const reportsFor = (fhirUrl: string, studyUid: string) =>
  search<DiagnosticReport>(fhirUrl, `DiagnosticReport?identifier=${encodeURIComponent(`${KEY_SYSTEM}|${studyUid}_lingshu-medical-mllm-Lingshu-7B`)}`);

describe('model replies without Findings or Impression', () => {
  let peers: Peers;
  let serve: ServeProcess;
  let dataDir: string;

  beforeAll(async () => {
    peers = await startPeers();
    dataDir = await mkdtemp(path.join(tmpdir(), 'raddraft-garbage-'));
    serve = await startServe(serviceEnv(peers, dataDir, { RADDRAFT_MAX_ATTEMPTS: '2', RADDRAFT_RETRY_SECONDS: '1' }));
  });

  afterAll(async () => {
    await serve?.kill('SIGTERM');
    await peers?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('retries a garbage reply and posts one report from the valid reply that follows', async () => {
    const study = fixture('chest-pa-lat');
    peers.model.script({ kind: 'garbage' }, { kind: 'report' });
    await peers.upload([study]);
    const jobs = await waitForJobs(serve, [study.studyUid], ['reported', 'failed', 'dead']);
    expect(jobs.find((j) => j.studyInstanceUid === study.studyUid)?.state).toBe('drafted');
    expect(peers.model.requests.map((r) => r.answered)).toEqual(['garbage', 'report']);
    const reports = await reportsFor(peers.fhir.url, study.studyUid);
    expect(reports).toHaveLength(1);
    expect(reports[0]!.conclusion).toBe('No acute cardiopulmonary process.');
    expect(serve.output()).toContain('model call gave no usable draft');
    // No Patient, ImagingStudy or ServiceRequest exists on this FHIR server: the report still posts, and the job says how it was linked.
    const job = jobs.find((j) => j.studyInstanceUid === study.studyUid)!;
    const detail = (await (await serve.api(`/api/jobs/${job.id}`)).json()) as { deliveries: { output: string; event: string; note?: string }[] };
    const posted = detail.deliveries.find((d) => d.output === 'fhir' && d.event === 'drafted')!.note!;
    expect(posted).toContain('imagingStudy: no ImagingStudy resource; logical reference used');
    expect(posted).toContain('subject: no Patient found; logical reference used');
    expect(posted).toContain('basedOn: no ServiceRequest found; logical reference used');
    expect(reports[0]!.subject).toMatchObject({ identifier: { value: 'RDX-PHI-100123' } });
  });

  it('posts nothing when every reply is garbage, and records the job as failed with the reason', async () => {
    const study = fixture('chest-ap-mono1');
    peers.model.setDefault({ kind: 'garbage', text: 'Findings: {} Impression: {}.' });
    await peers.upload([study]);
    const jobs = await waitForJobs(serve, [study.studyUid], ['dead'], 60_000);
    const job = jobs.find((j) => j.studyInstanceUid === study.studyUid)!;
    expect(job).toMatchObject({ state: 'dead', attempts: 2, reason: 'the model reply has neither a Findings nor an Impression section with text' });
    const detail = (await (await serve.api(`/api/jobs/${job.id}`)).json()) as { events: { to: string; note?: string }[]; draft?: unknown };
    expect(detail.events.map((e) => e.to)).toContain('failed');
    expect(detail.events.find((e) => e.to === 'failed')?.note).toBe('attempt 1: the model reply has neither a Findings nor an Impression section with text');
    expect(detail.draft).toBeUndefined();
    expect(await reportsFor(peers.fhir.url, study.studyUid)).toHaveLength(0);
    // Three tries per attempt, two attempts.
    expect(peers.model.requests.filter((r) => r.answered === 'garbage')).toHaveLength(1 + 6);
  });
});
