import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { DiagnosticReport } from '@medplum/fhirtypes';
import { freePort, waitFor } from '../../src/demo/ports.js';
import { stowFiles } from '../../src/demo/stow.js';
import { cloneStudies, dcmtk } from '../harness/dcmtk.js';
import { search } from '../harness/fhir-queries.js';
import { fixture, serviceEnv, startPeers, type Peers } from '../harness/peers.js';
import { listJobs, startServe, waitForJobs, type ServeProcess } from '../harness/serve-process.js';

jest.setTimeout(180_000);
const run = promisify(execFile);

const TOKEN = 'notify-token-0123456789';
const STOW_TOKEN = 'stow-token-0123456789abcdef';
const KEY = 'https://raddraft.dev/fhir/sid/ai-draft-report';
const reportsFor = (fhirUrl: string, uid: string) =>
  search<DiagnosticReport>(fhirUrl, `DiagnosticReport?identifier=${encodeURIComponent(`${KEY}|${uid}_lingshu-medical-mllm-Lingshu-7B`)}`);

describe('studies pushed to raddraft and notified by the FHIR server', () => {
  let peers: Peers;
  let serve: ServeProcess;
  let dir: string;
  let dimsePort: number;
  let clones: { studyUid: string; file: string }[];
  const ap = fixture('chest-ap-mono1');

  beforeAll(async () => {
    peers = await startPeers();
    dir = await mkdtemp(path.join(tmpdir(), 'raddraft-intakes-'));
    dimsePort = await freePort();
    clones = await cloneStudies(ap.files[0]!, 4, dir);
    serve = await startServe(serviceEnv(peers, path.join(dir, 'data'), {
      RADDRAFT_INTAKE: 'stow,dimse,fhir',
      RADDRAFT_STOW_AUTH: `bearer:${STOW_TOKEN}`,
      RADDRAFT_DIMSE_PORT: String(dimsePort),
      RADDRAFT_DIMSE_PEERS: 'STORESCU,MODALITY1',
      RADDRAFT_FHIR_NOTIFY_TOKEN: TOKEN,
    }));
  });

  afterAll(async () => {
    await serve?.kill('SIGTERM');
    await peers?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const raddraftDicomWeb = () => `http://127.0.0.1:${serve.port}/dicom-web`;
  const stowAuth = { authorization: `Bearer ${STOW_TOKEN}` };
  const notify = (body: unknown, token = TOKEN) =>
    serve.api('/fhir/notify', { method: 'POST', headers: { 'content-type': 'application/fhir+json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
  const diagnostics = async (res: Response) => ((await res.json()) as { issue: { diagnostics: string }[] }).issue[0]!.diagnostics;

  it('drafts a study pushed with STOW-RS that the PACS also holds', async () => {
    const study = clones[0]!;
    await stowFiles(peers.orthanc.dicomWebUrl, [study.file]);
    const res = await fetch(`${raddraftDicomWeb()}/studies`, {
      method: 'POST',
      headers: { 'content-type': 'multipart/related; type="application/dicom"; boundary=b0undary', ...stowAuth },
      body: Buffer.concat([Buffer.from('--b0undary\r\nContent-Type: application/dicom\r\n\r\n'), await import('node:fs/promises').then((f) => f.readFile(study.file)), Buffer.from('\r\n--b0undary--\r\n')]),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, { Value: Record<string, { Value: string[] }>[] }>;
    expect(body['00081199']!.Value[0]!['00081155']!.Value).toHaveLength(1);
    await waitForJobs(serve, [study.studyUid], ['reported']);
    expect(await reportsFor(peers.fhir.url, study.studyUid)).toHaveLength(1);
  });

  it('drafts a study sent by DCMTK storescu to the C-STORE SCP', async () => {
    const study = clones[1]!;
    await stowFiles(peers.orthanc.dicomWebUrl, [study.file]);
    await dcmtk('storescu', ['-aet', 'STORESCU', '-aec', 'RADDRAFT', '127.0.0.1', String(dimsePort), study.file]);
    await waitForJobs(serve, [study.studyUid], ['reported']);
    expect(await reportsFor(peers.fhir.url, study.studyUid)).toHaveLength(1);
  });

  it('drafts a study the FHIR server notifies as an ImagingStudy', async () => {
    const study = clones[2]!;
    await stowFiles(peers.orthanc.dicomWebUrl, [study.file]);
    const res = await notify({ resourceType: 'ImagingStudy', status: 'available', subject: { reference: 'Patient/p' }, identifier: [{ system: 'urn:dicom:uid', value: `urn:oid:${study.studyUid}` }] });
    expect(res.status).toBe(200);
    await waitForJobs(serve, [study.studyUid], ['reported']);
  });

  it('closes a gap in backport event numbers with a QIDO-RS sweep that finds the study it missed', async () => {
    const missed = clones[3]!;
    await stowFiles(peers.orthanc.dicomWebUrl, [missed.file]);
    // Each event carries (full-resource payload) a study already known, so only the numbering can reveal a loss.
    const known = clones[2]!.studyUid;
    const event = (n: number) => ({
      resourceType: 'Bundle', type: 'history',
      entry: [{ resource: {
        resourceType: 'Parameters',
        parameter: [
          { name: 'subscription', valueReference: { reference: 'Subscription/s1' } },
          { name: 'type', valueCode: 'event-notification' },
          { name: 'events-since-subscription-start', valueString: String(n) },
          { name: 'notification-event', part: [{ name: 'event-number', valueString: String(n) }, { name: 'focus', valueReference: { reference: `urn:uuid:study-${n}` } }] },
        ],
      } }, {
        fullUrl: `urn:uuid:study-${n}`,
        resource: { resourceType: 'ImagingStudy', status: 'available', subject: { reference: 'Patient/p' }, identifier: [{ system: 'urn:dicom:uid', value: `urn:oid:${known}` }] },
      }],
    });
    expect((await notify({ resourceType: 'Bundle', type: 'history', entry: [{ resource: { resourceType: 'Parameters', parameter: [{ name: 'subscription', valueReference: { reference: 'Subscription/s1' } }, { name: 'type', valueCode: 'handshake' }] } }] })).status).toBe(200);
    expect((await listJobs(serve)).some((j) => j.studyInstanceUid === missed.studyUid)).toBe(false);
    expect((await notify(event(1))).status).toBe(200);
    // Event 2 is lost on the way; event 3 shows the gap.
    expect((await notify(event(3))).status).toBe(200);
    await waitForJobs(serve, [missed.studyUid], ['reported']);
    expect(serve.output()).toContain('"why":"events 2 to 2 never arrived","msg":"FHIR notifications have a gap; sweeping the PACS with QIDO-RS"');
  });

  it('refuses an event count that is not a whole number, naming the field, sweeps for what it announced, and still sees later gaps', async () => {
    const [announced] = await cloneStudies(ap.files[0]!, 1, dir);
    await stowFiles(peers.orthanc.dicomWebUrl, [announced!.file]);
    const known = clones[2]!.studyUid;
    const study = { resourceType: 'ImagingStudy', status: 'available', subject: { reference: 'Patient/p' }, identifier: [{ system: 'urn:dicom:uid', value: `urn:oid:${known}` }] };
    const backport = (count: string, n: string) => ({
      resourceType: 'Bundle', type: 'history',
      entry: [{ resource: {
        resourceType: 'Parameters',
        parameter: [
          { name: 'subscription', valueReference: { reference: 'Subscription/s2' } },
          { name: 'type', valueCode: 'event-notification' },
          { name: 'events-since-subscription-start', valueString: count },
          { name: 'notification-event', part: [{ name: 'event-number', valueString: n }, { name: 'focus', valueReference: { reference: 'urn:uuid:s2-study' } }] },
        ],
      } }, { fullUrl: 'urn:uuid:s2-study', resource: study }],
    });
    const huge = await notify(backport('99999999999999999999', '2'));
    expect(huge.status).toBe(400);
    expect(await diagnostics(huge)).toBe('FHIR notification: Parameters.parameter(\'events-since-subscription-start\').valueString is "99999999999999999999", not a whole number from 0 to 9007199254740991; it was not processed, and the PACS is being swept with QIDO-RS instead');
    const r5 = await notify({
      resourceType: 'Bundle', type: 'subscription-notification',
      entry: [{ resource: { resourceType: 'SubscriptionStatus', type: 'event-notification', subscription: { reference: 'Subscription/s2' }, eventsSinceSubscriptionStart: 1e30, notificationEvent: [{ eventNumber: 1e30, focus: { reference: 'urn:uuid:s2-study' } }] } }, { fullUrl: 'urn:uuid:s2-study', resource: study }],
    });
    expect(r5.status).toBe(400);
    expect(await diagnostics(r5)).toBe('FHIR notification: SubscriptionStatus.eventsSinceSubscriptionStart is 1e+30, not a whole number from 0 to 9007199254740991; it was not processed, and the PACS is being swept with QIDO-RS instead');
    // The refused notification's study is found by the sweep it set off (this raddraft does not poll on its own).
    await waitForJobs(serve, [announced!.studyUid], ['reported']);
    // Nothing of the refused counts was kept: event 4 after event 1 is still a gap.
    expect((await notify(backport('1', '1'))).status).toBe(200);
    expect((await notify(backport('4', '4'))).status).toBe(200);
    await waitFor('the gap to be logged', () => Promise.resolve(serve.output().includes('"why":"events 2 to 3 never arrived"')), 10_000);
  });

  it('refuses a notification without the token, and says what is wrong with a malformed one', async () => {
    const forged = await notify({ resourceType: 'ImagingStudy' }, 'wrong-token-0123456789');
    expect(forged.status).toBe(401);
    expect(await diagnostics(forged)).toBe("FHIR notification refused: missing or wrong Authorization header (it must carry the token set in the Subscription's channel.header, RADDRAFT_FHIR_NOTIFY_TOKEN)");
    const noStatus = await notify({ resourceType: 'Bundle', type: 'history', entry: [{ resource: { resourceType: 'Patient' } }] });
    expect(noStatus.status).toBe(400);
    expect(await diagnostics(noStatus)).toBe('FHIR notification: Bundle.entry[0] is not a SubscriptionStatus or a subscription-status Parameters resource');
    const noUid = await notify({ resourceType: 'ImagingStudy', status: 'available', subject: { reference: 'Patient/p' } });
    expect(noUid.status).toBe(400);
    expect(await diagnostics(noUid)).toBe('FHIR notification: the ImagingStudy has no identifier urn:dicom:uid|urn:oid:<StudyInstanceUID>');
  });

  it('answers STOW-RS bad input with the failure, its DICOM code and the reason', async () => {
    const junk = path.join(dir, 'not-dicom.bin');
    await writeFile(junk, 'this is a JPEG, honestly'.repeat(20));
    const res = await fetch(`${raddraftDicomWeb()}/studies`, {
      method: 'POST',
      headers: { 'content-type': 'multipart/related; type="application/dicom"; boundary=XYZ', ...stowAuth },
      body: `--XYZ\r\nContent-Type: application/dicom\r\n\r\n${'this is a JPEG, honestly'.repeat(20)}\r\n--XYZ--\r\n`,
    });
    expect(res.status).toBe(409);
    expect(res.headers.get('warning')).toBe('299 raddraft "part 1: not a DICOM Part 10 file (no DICM preamble)"');
    const body = (await res.json()) as Record<string, { Value: Record<string, { Value: number[] }>[] }>;
    expect(body['00081198']!.Value[0]!['00081197']!.Value).toEqual([0xc000]);

    const wrongType = await fetch(`${raddraftDicomWeb()}/studies`, { method: 'POST', headers: { 'content-type': 'application/json', ...stowAuth }, body: '{}' });
    expect(wrongType.status).toBe(415);
    expect(await diagnostics(wrongType)).toBe('STOW-RS: Content-Type "application/json" is not supported; send multipart/related; type="application/dicom" with a boundary');

    const other = clones[0]!;
    const mismatch = await fetch(`${raddraftDicomWeb()}/studies/1.2.3.4`, {
      method: 'POST',
      headers: { 'content-type': 'multipart/related; type="application/dicom"; boundary=b', ...stowAuth },
      body: Buffer.concat([Buffer.from('--b\r\nContent-Type: application/dicom\r\n\r\n'), await import('node:fs/promises').then((f) => f.readFile(other.file)), Buffer.from('\r\n--b--\r\n')]),
    });
    expect(mismatch.status).toBe(409);
    expect(mismatch.headers.get('warning')).toMatch(/^299 raddraft "part 1: instance [\d.]+ belongs to study [\d.]+, not to 1\.2\.3\.4 named in the request"$/);
  });

  it('refuses an instance whose text is in a character set it cannot read', async () => {
    const odd = path.join(dir, 'charset.dcm');
    await copyFile(ap.files[0]!, odd);
    await dcmtk('dcmodify', ['-nb', '-gst', '-gse', '-gin', '-m', '(0008,0005)=ISO_IR 999', odd]);
    const res = await fetch(`${raddraftDicomWeb()}/studies`, {
      method: 'POST',
      headers: { 'content-type': 'multipart/related; type="application/dicom"; boundary=b', ...stowAuth },
      body: Buffer.concat([Buffer.from('--b\r\nContent-Type: application/dicom\r\n\r\n'), await import('node:fs/promises').then((f) => f.readFile(odd)), Buffer.from('\r\n--b--\r\n')]),
    });
    expect(res.status).toBe(409);
    expect(res.headers.get('warning')).toBe('299 raddraft "part 1: Specific Character Set ISO_IR 999 is not one raddraft can read, so its text (patient ID, accession number) cannot be trusted"');
  });

  it('refuses a C-STORE association from a calling AE title that is not allowed', async () => {
    const err = await run('storescu', ['-aet', 'INTRUDER', '-aec', 'RADDRAFT', '127.0.0.1', String(dimsePort), clones[0]!.file]).then(() => undefined, (e: unknown) => e as { stderr: string; stdout: string });
    expect(err).toBeDefined();
    expect(`${err!.stdout}${err!.stderr}`).toContain('Association Rejected');
    expect(`${err!.stdout}${err!.stderr}`).toContain('Calling AE Title Not Recognized');
    expect(serve.output()).toContain('C-STORE association refused: calling AE title INTRUDER is not in RADDRAFT_DIMSE_PEERS');
  });

  it('records a notified study the PACS has no instances of as not eligible, with the reason', async () => {
    const ghost = '1.2.826.0.1.3680043.8.498.999999';
    expect((await notify({ resourceType: 'ImagingStudy', status: 'available', subject: { reference: 'Patient/p' }, identifier: [{ system: 'urn:dicom:uid', value: `urn:oid:${ghost}` }] })).status).toBe(200);
    const [job] = (await waitForJobs(serve, [ghost], ['ineligible'])).filter((j) => j.studyInstanceUid === ghost);
    expect(job!.reason).toBe('the study has no instances');
  });

  it('counts what was received and refused on /metrics', async () => {
    const metrics = await (await serve.api('/metrics')).text();
    expect(metrics).toMatch(/raddraft_instances_received_total\{source="stow",outcome="stored"\} [1-9]/);
    expect(metrics).toMatch(/raddraft_instances_received_total\{source="dimse",outcome="refused"\} [1-9]/);
    expect(metrics).toMatch(/raddraft_jobs\{state="drafted"\} 5/);
  });
});

describe('pushes while the disk is too full to keep them', () => {
  let peers: Peers;
  let serve: ServeProcess;
  let dir: string;
  let dimsePort: number;

  beforeAll(async () => {
    peers = await startPeers();
    dir = await mkdtemp(path.join(tmpdir(), 'raddraft-full-'));
    dimsePort = await freePort();
    // A reserve larger than any disk: every push finds the disk "full".
    serve = await startServe(serviceEnv(peers, path.join(dir, 'data'), {
      RADDRAFT_INTAKE: 'stow,dimse', RADDRAFT_STOW_AUTH: 'none', RADDRAFT_DIMSE_PORT: String(dimsePort), RADDRAFT_DIMSE_PEERS: '*', RADDRAFT_MIN_FREE_MB: '9000000',
    }));
  });

  afterAll(async () => {
    await serve?.kill('SIGTERM');
    await peers?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses STOW-RS with 503 and Retry-After, and C-STORE associations as congested, keeping nothing', async () => {
    const file = fixture('chest-ap-mono1').files[0]!;
    const res = await fetch(`http://127.0.0.1:${serve.port}/dicom-web/studies`, {
      method: 'POST',
      headers: { 'content-type': 'multipart/related; type="application/dicom"; boundary=b' },
      body: Buffer.concat([Buffer.from('--b\r\nContent-Type: application/dicom\r\n\r\n'), await import('node:fs/promises').then((f) => f.readFile(file)), Buffer.from('\r\n--b--\r\n')]),
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('300');
    const text = ((await res.json()) as { issue: { diagnostics: string }[] }).issue[0]!.diagnostics;
    expect(text).toMatch(/^STOW-RS: raddraft's disk has \d+ MiB free, below the 9000000 MiB it keeps in reserve \(RADDRAFT_MIN_FREE_MB\); the instance was not accepted — send it again once space is freed$/);
    const err = await run('storescu', ['-aet', 'ANY', '-aec', 'RADDRAFT', '127.0.0.1', String(dimsePort), file]).then(() => undefined, (e: unknown) => e as { stderr: string; stdout: string });
    expect(`${err!.stdout}${err!.stderr}`).toContain('Association Rejected');
    expect((await listJobs(serve))).toEqual([]);
  });
});

