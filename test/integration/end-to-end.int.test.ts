import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Device, DiagnosticReport, ImagingStudy, Patient, Provenance, ServiceRequest, Task } from '@medplum/fhirtypes';
import { FIXTURE_PHI, LANDMARKS } from '../../src/demo/phantom.js';
import { create, search } from '../harness/fhir-queries.js';
import { regionMean } from '../harness/images.js';
import { fixture, fixtures, serviceEnv, startPeers, type Peers } from '../harness/peers.js';
import { problemsAgainst } from '../harness/profiles.js';
import { startServe, waitForJobs, type ApiJob, type ServeProcess } from '../harness/serve-process.js';

jest.setTimeout(120_000);

const AIAST = 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue|AIAST';
const KEY_SYSTEM = 'https://raddraft.dev/fhir/sid/ai-draft-report';
const MODEL_KEY = 'lingshu-medical-mllm-Lingshu-7B';

describe('raddraft serve, from PACS upload to unverified (partial) DiagnosticReport', () => {
  let peers: Peers;
  let serve: ServeProcess;
  let dataDir: string;
  let jobs: ApiJob[];
  let patientA: Patient & { id: string };
  let orderA: ServiceRequest & { id: string };
  let studyB: ImagingStudy & { id: string };
  const paLat = fixture('chest-pa-lat');
  const apMono1 = fixture('chest-ap-mono1');
  const ct = fixture('ct-chest');
  const hand = fixture('hand-dx');

  beforeAll(async () => {
    peers = await startPeers();
    dataDir = await mkdtemp(path.join(tmpdir(), 'raddraft-e2e-'));
    // Study A links through a Patient search and an order found by accession; study B through its ImagingStudy.
    patientA = await create<Patient>(peers.fhir.url, { resourceType: 'Patient', identifier: [{ value: FIXTURE_PHI.ids[0]! }] });
    orderA = await create<ServiceRequest>(peers.fhir.url, {
      resourceType: 'ServiceRequest', status: 'active', intent: 'order', subject: { reference: `Patient/${patientA.id}` },
      identifier: [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'ACSN' }] }, value: FIXTURE_PHI.accessions[0]! }],
      code: { coding: [{ system: 'http://loinc.org', code: '36643-5', display: 'XR Chest 2 Views' }] }, priority: 'asap',
    });
    const patientB = await create<Patient>(peers.fhir.url, { resourceType: 'Patient', identifier: [{ value: 'unrelated-local-id' }] });
    studyB = await create<ImagingStudy>(peers.fhir.url, {
      resourceType: 'ImagingStudy', status: 'available', subject: { reference: `Patient/${patientB.id}` },
      identifier: [{ system: 'urn:dicom:uid', value: `urn:oid:${apMono1.studyUid}` }],
      procedureCode: [{ coding: [{ system: 'http://www.radlex.org', code: 'RPID1486', display: 'XR Chest 1 View' }] }],
    });
    await peers.upload(fixtures());
    serve = await startServe(serviceEnv(peers, dataDir));
    jobs = await waitForJobs(serve, fixtures().map((f) => f.studyUid), ['reported', 'ineligible', 'dead', 'failed']);
  });

  afterAll(async () => {
    await serve?.kill('SIGTERM');
    await peers?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const jobOf = (uid: string) => jobs.find((j) => j.studyInstanceUid === uid)!;

  it('posts exactly one unverified (partial) report per eligible chest study and none for the CT or the hand', async () => {
    expect(jobOf(paLat.studyUid).state).toBe('drafted');
    expect(jobOf(apMono1.studyUid).state).toBe('drafted');
    const reports = await search<DiagnosticReport>(peers.fhir.url, 'DiagnosticReport?_count=100');
    expect(reports).toHaveLength(2);
    for (const f of [paLat, apMono1]) {
      const byKey = await search<DiagnosticReport>(peers.fhir.url, `DiagnosticReport?identifier=${encodeURIComponent(`${KEY_SYSTEM}|${f.studyUid}_${MODEL_KEY}`)}`);
      expect(byKey).toHaveLength(1);
      expect(jobOf(f.studyUid).reportRef).toBe(`DiagnosticReport/${byKey[0]!.id}`);
    }
  });

  it('lists the CT and the hand in /api/jobs as ineligible, each with its reason', () => {
    expect(jobOf(ct.studyUid)).toMatchObject({ state: 'ineligible', reason: 'ModalitiesInStudy is CT: not CR or DX' });
    expect(jobOf(hand.studyUid)).toMatchObject({
      state: 'ineligible',
      reason: 'not a chest study: BodyPartExamined is HAND and no study/series description or protocol name mentions the chest',
    });
  });

  it('marks each report as an AI-generated draft awaiting sign-off, with every element of the FHIR mapping', async () => {
    const [report] = await search<DiagnosticReport>(peers.fhir.url, `DiagnosticReport?identifier=${encodeURIComponent(`${KEY_SYSTEM}|${paLat.studyUid}_${MODEL_KEY}`)}`);
    expect(report).toBeDefined();
    const r = report!;
    expect(r.status).toBe('partial');
    expect(r.meta?.security).toContainEqual(expect.objectContaining({ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'AIAST' }));
    expect(r.meta?.tag).toContainEqual(expect.objectContaining({ code: 'review-required' }));
    const categories = r.category!.flatMap((c) => c.coding!.map((x) => `${x.system}|${x.code}`));
    expect(categories).toEqual(expect.arrayContaining(['http://loinc.org|LP29684-5', 'http://terminology.hl7.org/CodeSystem/v2-0074|RAD']));
    // The code and the review's priority come from the order (ServiceRequest), never from the images sent.
    expect(r.code.coding).toEqual([{ system: 'http://loinc.org', code: '36643-5', display: 'XR Chest 2 Views' }]);
    expect(r.subject).toEqual({ reference: `Patient/${patientA.id}` });
    expect(r.basedOn).toEqual([{ reference: `ServiceRequest/${orderA.id}` }]);
    expect(r.imagingStudy![0]!.identifier).toEqual({ system: 'urn:dicom:uid', value: `urn:oid:${paLat.studyUid}` });
    expect(r.effectiveDateTime).toMatch(/^2026-03-01T08:15:00[+-]\d{2}:\d{2}$/);
    expect(Date.parse(r.issued!)).toBeGreaterThan(Date.now() - 300_000);
    expect(r.conclusion).toBe('No acute cardiopulmonary process.');
    const text = Buffer.from(r.presentedForm![0]!.data!, 'base64').toString('utf8');
    expect(text).toContain('AI-GENERATED DRAFT — NOT REVIEWED BY A RADIOLOGIST');
    expect(text).toContain('FINDINGS:\nThe cardiomediastinal silhouette is within normal limits.');
    expect(r.text!.div).toContain('AI-GENERATED DRAFT — NOT REVIEWED BY A RADIOLOGIST');

    const [provenance] = await search<Provenance>(peers.fhir.url, `Provenance?target=DiagnosticReport/${r.id}/_history/${r.meta!.versionId}`);
    expect(provenance!.reason![0]!.coding![0]!.code).toBe('AIAST');
    const author = provenance!.agent.find((a) => a.type?.coding?.[0]?.code === 'author')!;
    expect(author.who?.reference).toMatch(/^Device\//);
    expect(provenance!.agent.find((a) => a.type?.coding?.[0]?.code === 'assembler')?.who?.display).toMatch(/^raddraft /);
    expect(provenance!.entity).toContainEqual(expect.objectContaining({ role: 'source', what: r.imagingStudy![0] }));
    expect(provenance!.entity!.find((e) => e.role === 'derivation')?.what?.reference).toMatch(/^DocumentReference\//);
    expect(provenance!.entity!.filter((e) => e.what.display?.includes('sha256:'))).toHaveLength(2);

    const device = (await search<Device>(peers.fhir.url, `Device?_id=${author.who.reference!.split('/')[1]}`))[0]!;
    expect(device.type?.coding?.[0]).toMatchObject({ system: 'http://hl7.org/fhir/uv/aitransparency/CodeSystem/AIdeviceTypeCS', code: 'Artificial-Intelligence' });
    expect(device.modelNumber).toBe('lingshu-medical-mllm/Lingshu-7B');
    expect(device.url).toBe(peers.model.url);

    const [task] = await search<Task>(peers.fhir.url, `Task?focus=DiagnosticReport/${r.id}`);
    expect(task).toMatchObject({ status: 'requested', intent: 'order', priority: 'asap', for: { reference: `Patient/${patientA.id}` }, requester: { reference: author.who.reference } });
    expect(task!.code!.coding![0]).toMatchObject({ system: 'http://hl7.org/fhir/CodeSystem/task-code', code: 'approve' });
  });

  it('takes subject from the ImagingStudy when one exists, and the code from its procedure code', async () => {
    const ref = jobOf(apMono1.studyUid).reportRef!;
    const [r] = await search<DiagnosticReport>(peers.fhir.url, `DiagnosticReport?_id=${ref.split('/')[1]}`);
    expect(r!.imagingStudy).toEqual([{ reference: `ImagingStudy/${studyB.id}` }]);
    expect(r!.subject).toEqual(studyB.subject);
    expect(r!.code.coding).toEqual([{ system: 'http://www.radlex.org', code: 'RPID1486', display: 'XR Chest 1 View' }]);
    const [task] = await search<Task>(peers.fhir.url, `Task?focus=DiagnosticReport/${r!.id}`);
    expect(task!.priority).toBe('routine');
  });

  it('writes only resources that validate against the profiles in fhir-profiles/', async () => {
    const checks: [string, string][] = [
      ['DiagnosticReport', 'raddraft-draft-report'], ['Provenance', 'raddraft-ai-provenance'], ['Task', 'raddraft-review-task'],
      ['Device', 'raddraft-ai-device'], ['DocumentReference?type=AIInputPrompt', 'raddraft-prompt'],
    ];
    let checked = 0;
    for (const [type, profile] of checks) {
      for (const resource of await search(peers.fhir.url, `${type}${type.includes('?') ? '&' : '?'}_count=100`)) {
        expect({ id: `${type}/${resource.id}`, problems: problemsAgainst(resource, profile) }).toEqual({ id: `${type}/${resource.id}`, problems: [] });
        checked++;
      }
    }
    expect(checked).toBe(2 + 2 + 2 + 1 + 1);
  });

  it('lets other systems find the drafts with ordinary FHIR queries', async () => {
    const drafts = await search<DiagnosticReport>(peers.fhir.url, `DiagnosticReport?status=partial,preliminary&_security=${encodeURIComponent(AIAST)}`);
    expect(drafts).toHaveLength(2);
    expect(await search(peers.fhir.url, 'DiagnosticReport?status=final')).toHaveLength(0);
    expect(await search(peers.fhir.url, `DiagnosticReport?_security=${encodeURIComponent('http://terminology.hl7.org/CodeSystem/v3-ObservationValue|AIAST-NOT')}`)).toHaveLength(0);
    const tasks = await search<Task>(peers.fhir.url, 'Task?code=approve&status=requested,in-progress');
    expect(tasks).toHaveLength(2);
    const forPatient = await search<DiagnosticReport>(peers.fhir.url, `DiagnosticReport?subject=Patient/${patientA.id}&status=partial`);
    expect(forPatient).toHaveLength(1);
  });

  it('sends the MONOCHROME1 study to the model with dark lungs', async () => {
    const single = peers.model.requests.filter((r) => r.images.length === 1 && !r.rejected);
    expect(single).toHaveLength(1);
    const png = single[0]!.images[0]!.bytes;
    const lungs = (await regionMean(png, LANDMARKS.rightLung.x, LANDMARKS.rightLung.y) + (await regionMean(png, LANDMARKS.leftLung.x, LANDMARKS.leftLung.y))) / 2;
    const mediastinum = await regionMean(png, LANDMARKS.mediastinum.x, LANDMARKS.mediastinum.y);
    expect(mediastinum - lungs).toBeGreaterThan(60);
    expect(lungs).toBeLessThan(110);
  });

  it('sends the model only images it accepts, frontal first, with the MedEvalKit prompt at temperature 0', () => {
    const accepted = peers.model.requests.filter((r) => !r.rejected);
    expect(peers.model.requests.filter((r) => r.rejected)).toEqual([]);
    const two = accepted.find((r) => r.images.length === 2)!;
    expect(two.texts.slice(0, 2)).toEqual(['<image_1>: ', '<image_2>: ']);
    expect(two.images[0]!.height).toBeGreaterThan(two.images[0]!.width);
    expect(two.images[1]!.width).toBe(two.images[1]!.height);
    for (const r of accepted) {
      expect(r.temperature).toBe(0);
      expect(r.maxTokens).toBe(1024);
      expect(r.texts.at(-1)).toContain('Return the report in the following format: Findings: {} Impression: {}.');
    }
  });

  it('answers health, readiness and job queries, and explains a bad query as an OperationOutcome', async () => {
    expect((await serve.api('/healthz')).status).toBe(200);
    const ready = await serve.api('/readyz');
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as { checks: { name: string; ok: boolean }[] };
    expect(body.checks.map((c) => [c.name, c.ok])).toEqual([['job store', true], ['DICOMweb', true], ['FHIR', true], ['Lingshu', true]]);
    const ineligible = (await (await serve.api('/api/jobs?state=ineligible')).json()) as { jobs: ApiJob[]; counts: Record<string, number> };
    expect(ineligible.jobs.map((j) => j.studyInstanceUid).sort()).toEqual([ct.studyUid, hand.studyUid].sort());
    expect(ineligible.counts).toMatchObject({ drafted: 2, ineligible: 2 });
    const bad = await serve.api('/api/jobs?state=done');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code: 'invalid', diagnostics: 'query parameter state="done" is not one of discovered, ineligible, queued, fetching, rendering, drafting, drafted, shadowed, failed, dead, publishing, posted', expression: ['state'] }],
    });
    const missing = await serve.api('/api/jobs/no-such-job');
    expect(missing.status).toBe(404);
  });

  it('keeps patient names, IDs, birth dates and accession numbers out of every log line and model request', () => {
    const logs = serve.output();
    expect(logs.length).toBeGreaterThan(1000);
    expect(logs).toContain(paLat.studyUid);
    const values = [...FIXTURE_PHI.names, ...FIXTURE_PHI.names.map((n) => n.replace('^', ' ')), ...FIXTURE_PHI.ids, ...FIXTURE_PHI.birthDates, ...FIXTURE_PHI.accessions];
    const leaks = values.filter((v) => logs.includes(v));
    expect(leaks).toEqual([]);
    const prompts = peers.model.requests.flatMap((r) => r.texts).join('\n');
    expect(values.filter((v) => prompts.includes(v))).toEqual([]);
  });
});
