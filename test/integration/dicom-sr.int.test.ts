import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DiagnosticReport, Practitioner } from '@medplum/fhirtypes';
import dcmjs from 'dcmjs';
import { waitFor } from '../../src/demo/ports.js';
import { reportSections } from '../../src/fhir/sign.js';
import { Tag, str, strings, type DicomJson } from '../../src/dicom/tags.js';
import { create, search } from '../harness/fhir-queries.js';
import { fixture, serviceEnv, startPeers, type Peers } from '../harness/peers.js';
import { startServe, waitForJobs, type ApiJob, type ServeProcess } from '../harness/serve-process.js';
import { dciodvfy, dsr2html, dsrdump, startRefusingStow } from '../harness/sr-receivers.js';
import { startTokenIssuer, type TokenIssuer } from '../harness/token-issuer.js';

jest.setTimeout(150_000);

interface ApiDelivery { jobId: string; event: string; seq: number; output: string; state: string; reference?: string; lastError?: string; attempts: number }

/** SR content items by concept name, depth first. */
function textItems(items: unknown[] | undefined, name: string): string[] {
  const out: string[] = [];
  for (const item of (items ?? []) as Record<string, unknown>[]) {
    const concept = (item.ConceptNameCodeSequence as { CodeMeaning?: string }[] | { CodeMeaning?: string } | undefined);
    const meaning = Array.isArray(concept) ? concept[0]?.CodeMeaning : concept?.CodeMeaning;
    if (meaning === name && typeof item.TextValue === 'string') out.push(item.TextValue);
    out.push(...textItems(item.ContentSequence as unknown[] | undefined, name));
  }
  return out;
}

describe('every report version stored into its study in the PACS as a DICOM SR', () => {
  let peers: Peers;
  let issuer: TokenIssuer;
  let serve: ServeProcess;
  let dataDir: string;
  let work: string;
  let jobs: ApiJob[];
  let radiologist: Practitioner & { id: string };
  const signedStudy = fixture('chest-pa-lat');
  const rejectedStudy = fixture('chest-ap-mono1');
  /** Set to a folder to keep the SRs and KOS the test reads (for a look with other tools). */
  const keep = process.env.SR_TEST_ARTIFACTS;

  beforeAll(async () => {
    peers = await startPeers();
    issuer = await startTokenIssuer();
    dataDir = await mkdtemp(path.join(tmpdir(), 'raddraft-sr-'));
    work = await mkdtemp(path.join(tmpdir(), 'raddraft-sr-files-'));
    radiologist = await create<Practitioner>(peers.fhir.url, { resourceType: 'Practitioner', name: [{ family: 'Example', given: ['Ada'] }] });
    await peers.upload([signedStudy, rejectedStudy]);
    serve = await startServe(serviceEnv(peers, dataDir, {
      RADDRAFT_OUTPUTS: 'fhir,dicom-sr',
      RADDRAFT_AUTH_ISSUER: issuer.issuer,
      RADDRAFT_AUTH_AUDIENCE: 'raddraft',
      RADDRAFT_AUTH_JWKS_URL: issuer.jwksUrl,
      RADDRAFT_AUTH_SIGNER_ROLE: 'radiologist',
      RADDRAFT_API_TOKEN: randomBytes(32).toString('base64url'),
    }));
    jobs = await waitForJobs(serve, [signedStudy.studyUid, rejectedStudy.studyUid], ['reported']);
  });

  afterAll(async () => {
    await serve?.kill('SIGTERM');
    await issuer?.stop();
    await peers?.stop();
    await rm(dataDir, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  const jobOf = (uid: string) => jobs.find((j) => j.studyInstanceUid === uid)!;
  const reportId = (uid: string) => jobOf(uid).reportRef!.split('/')[1]!;
  const fhirReport = async (uid: string) => (await search<DiagnosticReport>(peers.fhir.url, `DiagnosticReport?_id=${reportId(uid)}`))[0]!;
  const token = () => issuer.token({ sub: radiologist.id, name: 'Dr Ada Example', fhirUser: `https://fhir.hospital.example/Practitioner/${radiologist.id}`, roles: ['radiologist'] });
  const post = async (uid: string, action: string, body: unknown) =>
    serve.api(`/api/reports/${reportId(uid)}/${action}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${await token()}` }, body: JSON.stringify(body) });
  const qido = async (query: string) => (await (await fetch(`${peers.orthanc.dicomWebUrl}${query}`)).json()) as DicomJson[];

  /** Waits for the study's dicom-sr delivery of one event to end in `state`. */
  async function srDelivery(uid: string, seq: number, state = 'delivered'): Promise<ApiDelivery> {
    let found: ApiDelivery | undefined;
    await waitFor(`the dicom-sr delivery of event ${seq} to be ${state}`, async () => {
      const res = await serve.api('/api/deliveries', { headers: serve.jobsHeaders });
      const { deliveries } = (await res.json()) as { deliveries: ApiDelivery[] };
      found = deliveries.find((d) => d.jobId === jobOf(uid).id && d.output === 'dicom-sr' && d.seq === seq);
      return found?.state === state;
    }, 60_000, 200);
    return found!;
  }

  /** The stored object, fetched from Orthanc by its SOP Instance UID and written to a file the DICOM tools can read. */
  async function stored(sopUid: string, name: string): Promise<{ file: string; ds: Record<string, unknown> }> {
    const [hit] = (await (await fetch(`${peers.orthanc.httpUrl}/tools/lookup`, { method: 'POST', body: sopUid })).json()) as { ID: string }[];
    const bytes = Buffer.from(await (await fetch(`${peers.orthanc.httpUrl}/instances/${hit!.ID}/file`)).arrayBuffer());
    const file = path.join(work, `${name}.dcm`);
    await writeFile(file, bytes);
    if (keep) {
      await mkdir(keep, { recursive: true });
      await copyFile(file, path.join(keep, `${name}.dcm`));
    }
    const dict = dcmjs.data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    return { file, ds: dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.dict) };
  }
  const sopOf = (d: ApiDelivery) => d.reference!.split('/').pop()!;
  const predecessorOf = (ds: Record<string, unknown>) =>
    ((ds.PredecessorDocumentsSequence as Record<string, unknown>[])[0]!.ReferencedSeriesSequence as Record<string, unknown>[])[0]!
      .ReferencedSOPSequence as { ReferencedSOPInstanceUID: string }[];

  let draftSop: string;
  let signedSop: string;
  let correctedSop: string;

  it('stores the draft as an UNVERIFIED, PARTIAL SR in its own series, with the FHIR report\'s text and the images the model saw', async () => {
    const delivery = await srDelivery(signedStudy.studyUid, 0);
    draftSop = sopOf(delivery);
    const [studyRow] = await qido(`/studies?StudyInstanceUID=${signedStudy.studyUid}&includefield=${Tag.ModalitiesInStudy}`);
    expect(strings(studyRow!, Tag.ModalitiesInStudy)).toContain('SR');
    const series = await qido(`/studies/${signedStudy.studyUid}/series?Modality=SR&includefield=${Tag.SeriesDescription}`);
    expect(series.map((s) => str(s, Tag.SeriesDescription))).toEqual(['AI draft report - unverified']);

    const { file, ds } = await stored(draftSop, 'draft-sr');
    expect(ds).toMatchObject({ VerificationFlag: 'UNVERIFIED', CompletionFlag: 'PARTIAL', Modality: 'SR', SpecificCharacterSet: 'ISO_IR 192' });
    const fhir = reportSections(await fhirReport(signedStudy.studyUid));
    expect(textItems(ds.ContentSequence as unknown[], 'Finding')).toEqual([fhir.findings]);
    expect(textItems(ds.ContentSequence as unknown[], 'Impression')).toEqual([fhir.impression]);
    const images = (await qido(`/studies/${signedStudy.studyUid}/instances?Modality=DX`)).map((i) => str(i, Tag.SOPInstanceUID)).sort();
    const evidence = ((ds.CurrentRequestedProcedureEvidenceSequence as Record<string, unknown>[])[0]!.ReferencedSeriesSequence as Record<string, unknown>[])
      .flatMap((s) => (s.ReferencedSOPSequence as { ReferencedSOPInstanceUID: string }[]).map((r) => r.ReferencedSOPInstanceUID)).sort();
    expect(evidence).toEqual(images);

    expect((await dciodvfy(file)).errors).toEqual([]);
    const dump = await dsrdump(file);
    expect(dump).toContain('Observer Type")=(121007,DCM,"Device")');
    expect(dump).toContain('Algorithm Name');
    expect(await dsr2html(file)).toContain(fhir.findings.split('\n')[0]!.replace(/&/g, '&amp;'));
  });

  it('stores the signature as a new VERIFIED, COMPLETE SR naming the radiologist and the draft SR as its predecessor', async () => {
    const draft = await fhirReport(signedStudy.studyUid);
    const res = await post(signedStudy.studyUid, 'sign', { findings: 'Lungs are clear. Heart size normal.', impression: 'Normal chest.', version: draft.meta!.versionId });
    expect(res.status).toBe(200);
    const delivery = await srDelivery(signedStudy.studyUid, 1);
    signedSop = sopOf(delivery);
    const { file, ds } = await stored(signedSop, 'signed-sr');
    expect(ds).toMatchObject({ VerificationFlag: 'VERIFIED', CompletionFlag: 'COMPLETE' });
    const verifier = (ds.VerifyingObserverSequence as Record<string, unknown>[])[0]!;
    expect(verifier.VerifyingObserverName).toEqual([{ Alphabetic: 'Example^Dr Ada' }]);
    expect(predecessorOf(ds).map((r) => r.ReferencedSOPInstanceUID)).toEqual([draftSop]);
    const fhir = reportSections(await fhirReport(signedStudy.studyUid));
    expect(textItems(ds.ContentSequence as unknown[], 'Finding')).toEqual([fhir.findings]);
    expect(textItems(ds.ContentSequence as unknown[], 'Impression')).toEqual(['Normal chest.']);
    expect((await dciodvfy(file)).errors).toEqual([]);
    const dump = await dsrdump(file);
    expect(dump).toContain('Verification Flag   : VERIFIED');
    expect(await dsr2html(file)).toContain('Lungs are clear. Heart size normal.');
  });

  it('stores a correction as a third SR whose predecessor is the signed SR', async () => {
    const signed = await fhirReport(signedStudy.studyUid);
    const res = await post(signedStudy.studyUid, 'correct', {
      findings: 'Lungs are clear. Small left pleural effusion.', impression: 'Small left pleural effusion.', reason: 'Effusion missed at first reading', version: signed.meta!.versionId,
    });
    expect(res.status).toBe(200);
    const delivery = await srDelivery(signedStudy.studyUid, 2);
    correctedSop = sopOf(delivery);
    const { file, ds } = await stored(correctedSop, 'corrected-sr');
    expect(ds).toMatchObject({ VerificationFlag: 'VERIFIED', CompletionFlag: 'COMPLETE' });
    expect(predecessorOf(ds).map((r) => r.ReferencedSOPInstanceUID)).toEqual([signedSop]);
    expect(textItems(ds.ContentSequence as unknown[], 'Impression')).toEqual(['Small left pleural effusion.']);
    expect(textItems(ds.ContentSequence as unknown[], 'Comment')).toContain('Reason for correction: Effusion missed at first reading');
    expect((await dciodvfy(file)).errors).toEqual([]);
    const srs = await qido(`/studies/${signedStudy.studyUid}/instances?Modality=SR`);
    expect(srs).toHaveLength(3);
  });

  it('stores an addendum as a fourth SR with the report unchanged, the addendum after it, and the corrected SR as predecessor', async () => {
    const corrected = await fhirReport(signedStudy.studyUid);
    const res = await post(signedStudy.studyUid, 'addendum', { addendum: 'Compared with the outside film: unchanged.', reason: 'Outside film received', version: corrected.meta!.versionId });
    expect(res.status).toBe(200);
    const { file, ds } = await stored(sopOf(await srDelivery(signedStudy.studyUid, 3)), 'addendum-sr');
    expect(predecessorOf(ds).map((r) => r.ReferencedSOPInstanceUID)).toEqual([correctedSop]);
    expect(textItems(ds.ContentSequence as unknown[], 'Impression')).toEqual(['Small left pleural effusion.']);
    expect(textItems(ds.ContentSequence as unknown[], 'Comment')).toContain('Addendum 1: Compared with the outside film: unchanged.');
    expect((await dciodvfy(file)).errors).toEqual([]);
  });

  it('stores a rejection as an IOCM rejection note (KOS) that references the draft SR', async () => {
    const draft = await fhirReport(rejectedStudy.studyUid);
    const rejectedDraft = sopOf(await srDelivery(rejectedStudy.studyUid, 0));
    const res = await post(rejectedStudy.studyUid, 'reject', { reason: 'Wrong side described', version: draft.meta!.versionId });
    expect(res.status).toBe(200);
    const delivery = await srDelivery(rejectedStudy.studyUid, 1);
    const [studyRow] = await qido(`/studies?StudyInstanceUID=${rejectedStudy.studyUid}&includefield=${Tag.ModalitiesInStudy}`);
    expect(strings(studyRow!, Tag.ModalitiesInStudy)).toEqual(expect.arrayContaining(['SR', 'KO']));
    const { file, ds } = await stored(sopOf(delivery), 'rejection-kos');
    expect(ds.ConceptNameCodeSequence).toEqual([expect.objectContaining({ CodeValue: '113001', CodingSchemeDesignator: 'DCM' })]);
    const refs = ((ds.CurrentRequestedProcedureEvidenceSequence as Record<string, unknown>[])[0]!.ReferencedSeriesSequence as Record<string, unknown>[])
      .flatMap((s) => (s.ReferencedSOPSequence as { ReferencedSOPInstanceUID: string }[]).map((r) => r.ReferencedSOPInstanceUID));
    expect(refs).toEqual([rejectedDraft]);
    expect((await dciodvfy(file)).errors).toEqual([]);
    expect(await dsrdump(file)).toContain('Rejected for Quality Reasons');
  });

  it('ends the SR delivery dead with the archive\'s reason when the destination refuses, while the FHIR report is delivered', async () => {
    const refusing = await startRefusingStow();
    const otherDir = await mkdtemp(path.join(tmpdir(), 'raddraft-sr-refused-'));
    const other = await startServe(serviceEnv(peers, otherDir, {
      RADDRAFT_OUTPUTS: 'fhir,dicom-sr', RADDRAFT_SR_DESTINATION: refusing.url, RADDRAFT_MAX_ATTEMPTS: '2', RADDRAFT_API_TOKEN: randomBytes(32).toString('base64url'),
    }));
    try {
      const [job] = await waitForJobs(other, [signedStudy.studyUid], ['reported']);
      let dead: ApiDelivery | undefined;
      await waitFor('the SR delivery to end dead', async () => {
        const { deliveries } = (await (await other.api('/api/deliveries', { headers: other.jobsHeaders })).json()) as { deliveries: ApiDelivery[] };
        dead = deliveries.find((d) => d.jobId === job!.id && d.output === 'dicom-sr' && d.state === 'dead');
        return !!dead && deliveries.some((d) => d.jobId === job!.id && d.output === 'fhir' && d.state === 'delivered');
      }, 60_000, 200);
      expect(dead).toMatchObject({ attempts: 2, lastError: expect.stringContaining('the archive refused the instance (HTTP 409, failure reason 0xA700 (out of resources))') });
    } finally {
      await other.kill('SIGTERM');
      await refusing.stop();
      await rm(otherDir, { recursive: true, force: true });
    }
  });
});
