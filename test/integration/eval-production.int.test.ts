import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DiagnosticReport, ImagingStudy, Patient, Practitioner, ServiceRequest } from '@medplum/fhirtypes';
import { STANDIN_REPORT } from '../../src/demo/lingshu-standin.js';
import type { EvalResult } from '../../src/eval/result.js';
import { FhirGateway } from '../../src/fhir/client.js';
import { promptTemplate } from '../../src/model/prompt.js';
import { publishDraft } from '../../src/fhir/publish.js';
import { signDraft } from '../../src/fhir/sign.js';
import { create, search } from '../harness/fhir-queries.js';
import { fixture, serviceEnv, startPeers, type Peers } from '../harness/peers.js';
import { runCli, startServe, waitForJobs } from '../harness/serve-process.js';

jest.setTimeout(180_000);

const RADIOLOGIST_TEXT = 'FINDINGS:\nThe heart is enlarged. Small left pleural effusion.\n\nIMPRESSION:\nCardiomegaly and a small left effusion.';

describe('shadow mode and eval --production against the FHIR test server', () => {
  let peers: Peers;
  let dataDir: string;
  let out: string;
  const paLat = fixture('chest-pa-lat');
  const apMono1 = fixture('chest-ap-mono1');
  const liveStudy = '1.2.826.0.1.3680043.8.498.777001';

  beforeAll(async () => {
    peers = await startPeers();
    dataDir = await mkdtemp(path.join(tmpdir(), 'raddraft-shadow-'));
    out = path.join(dataDir, 'eval');
    await peers.upload([paLat, apMono1]);
  });
  afterAll(async () => {
    await peers.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('drafts every eligible study in shadow mode and posts nothing to the FHIR server', async () => {
    const serve = await startServe(serviceEnv(peers, dataDir, { RADDRAFT_MODE: 'shadow' }));
    try {
      const jobs = await waitForJobs(serve, [paLat.studyUid, apMono1.studyUid], ['shadowed', 'reported', 'dead']);
      expect(jobs.map((j) => j.state)).toEqual(['shadowed', 'shadowed']);
      expect(jobs.every((j) => j.reportRef === undefined)).toBe(true);
      const detail = await (await serve.api(`/api/jobs/${jobs[0]!.id}`)).json() as { draft?: { findings: string }; events: { note?: string }[] };
      expect(detail.draft?.findings).toContain('cardiomediastinal silhouette');
      expect(detail.events.some((e) => e.note?.includes('shadow mode'))).toBe(true);
    } finally {
      await serve.kill('SIGTERM');
    }
    expect(await search<DiagnosticReport>(peers.fhir.url, 'DiagnosticReport')).toEqual([]);
    expect(await search(peers.fhir.url, 'Task')).toEqual([]);
    expect(peers.model.requests).toHaveLength(2);
  });

  it('compares shadow drafts with the radiologists\' reports and signed live drafts with their drafts, by model and prompt', async () => {
    // The radiologist's own report for the PA/lateral study, linked through its order as a RIS would link it.
    const patient = await create<Patient>(peers.fhir.url, { resourceType: 'Patient', name: [{ family: 'Shadow' }] });
    const order = await create<ServiceRequest>(peers.fhir.url, { resourceType: 'ServiceRequest', status: 'completed', intent: 'order', subject: { reference: `Patient/${patient.id}` }, identifier: [{ value: 'ACC-SHADOW-1' }] });
    await create<ImagingStudy>(peers.fhir.url, {
      resourceType: 'ImagingStudy', status: 'available', subject: { reference: `Patient/${patient.id}` },
      identifier: [{ system: 'urn:dicom:uid', value: `urn:oid:${paLat.studyUid}` }], basedOn: [{ reference: `ServiceRequest/${order.id}` }],
    });
    await create<DiagnosticReport>(peers.fhir.url, {
      resourceType: 'DiagnosticReport', status: 'final', code: { text: 'XR chest' }, subject: { reference: `Patient/${patient.id}` },
      basedOn: [{ reference: `ServiceRequest/${order.id}` }], issued: new Date().toISOString(),
      presentedForm: [{ contentType: 'text/plain', data: Buffer.from(RADIOLOGIST_TEXT).toString('base64') }],
    });

    // A live draft signed with an edit, the way the review page signs it.
    const fhir = new FhirGateway({ url: peers.fhir.url, auth: { kind: 'none' } });
    const signer = await create<Practitioner>(peers.fhir.url, { resourceType: 'Practitioner', name: [{ family: 'Reader' }] });
    const published = await publishDraft(fhir, {
      studyUid: liveStudy, effective: new Date().toISOString(), subject: { reference: `Patient/${patient.id}` },
      imagingStudy: { identifier: { system: 'urn:dicom:uid', value: `urn:oid:${liveStudy}` } }, basedOn: undefined, order: { code: undefined, priority: undefined }, prompt: promptTemplate('medevalkit-report-1'),
      images: [{ sopUid: '1.2.3.1', seriesUid: '1.2.3', view: 'PA', file: 'x.png', sha256: 'ab', width: 896, height: 1092, sourceWidth: 2048, sourceHeight: 2500, window: { center: 1, width: 2, source: 'file' }, photometric: 'MONOCHROME2', transferSyntaxUid: '1.2.840.10008.1.2.1' }],
      draft: { findings: 'The lungs are clear. No pleural effusion.', impression: 'No acute disease.', text: '', model: 'lingshu-medical-mllm/Lingshu-32B', promptVersion: 'clinical-context-1', requestId: undefined, draftedAt: new Date().toISOString(), flags: [] },
      model: { name: 'lingshu-medical-mllm/Lingshu-32B', endpoint: 'http://vllm:8000/v1', revision: undefined, cardUrl: 'https://huggingface.co/lingshu-medical-mllm/Lingshu-32B', owner: undefined, contact: undefined },
      software: { name: 'raddraft', version: 'test' }, status: 'partial', language: 'en', now: new Date(),
    });
    const id = published.reportRef.split('/')[1]!;
    const current = await fhir.read<DiagnosticReport>('DiagnosticReport', id);
    await signDraft(fhir, id, { findings: 'The lungs are clear. Small right pleural effusion.', impression: 'Small right effusion.', version: current.meta!.versionId! }, { reference: `Practitioner/${signer.id}`, display: 'Dr Reader' });

    const since = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    const run = runCli(['eval', '--production', '--since', since, '--out', out], serviceEnv(peers, dataDir));
    expect(await run.exited).toBe(0);
    const result = JSON.parse(await readFile(path.join(out, 'results.json'), 'utf8')) as EvalResult;
    expect(result.kind).toBe('production');
    expect(result.counts.scored).toBe(2);

    const shadow = result.studies.find((s) => s.id === paLat.studyUid)!;
    expect(shadow.reference).toEqual({ findings: 'The heart is enlarged. Small left pleural effusion.', impression: 'Cardiomegaly and a small left effusion.' });
    expect(`Findings: ${shadow.draft!.findings}\nImpression: ${shadow.draft!.impression}`).toBe(STANDIN_REPORT);
    expect(shadow.labels!.reference).toMatchObject({ Cardiomegaly: 1, 'Pleural Effusion': 1 });

    const live = result.studies.find((s) => s.id === liveStudy)!;
    expect(live.draft).toMatchObject({ findings: 'The lungs are clear. No pleural effusion.', impression: 'No acute disease.' });
    expect(live.reference).toEqual({ findings: 'The lungs are clear. Small right pleural effusion.', impression: 'Small right effusion.' });
    expect(live.metrics['ROUGE-L']).toBeGreaterThan(0.3);
    expect(live.metrics['ROUGE-L']).toBeLessThan(1);

    // One row per model and prompt, so a change of model shows as its own line.
    expect(result.groups.map((g) => `${g.model} ${g.promptVersion} ${g.n}`).sort()).toEqual([
      'lingshu-medical-mllm/Lingshu-32B clinical-context-1 1',
      'lingshu-medical-mllm/Lingshu-7B medevalkit-report-1 1',
    ]);
    // The portable study, which has no order or report on the FHIR server, is named, not dropped.
    expect(result.failures).toEqual([{ id: apMono1.studyUid, reason: 'no ImagingStudy or order for the study on the FHIR server' }]);
  });
});
