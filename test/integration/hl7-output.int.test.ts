import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { DiagnosticReport, Practitioner } from '@medplum/fhirtypes';
import { startOrthanc, type OrthancInstance } from '../../src/demo/orthanc.js';
import { freePort, waitFor } from '../../src/demo/ports.js';
import { stowFiles } from '../../src/demo/stow.js';
import { controlIdOf } from '../../src/hl7/control-id.js';
import { cloneStudies } from '../harness/dcmtk.js';
import { create, search } from '../harness/fhir-queries.js';
import { startHl7Peer, type Hl7Peer, type PeerEntry } from '../harness/hl7-peer.js';
import { fixture, serviceEnv, startPeers, type Peers } from '../harness/peers.js';
import { runCli, startServe, type ServeProcess } from '../harness/serve-process.js';
import { startTokenIssuer, type TokenIssuer } from '../harness/token-issuer.js';

jest.setTimeout(180_000);

/** Where the messages the peer logged are kept for the record (one of each status). */
const REPORT_DIR = process.env.HL7_REPORT_DIR;

interface ApiDelivery { output: string; event: string; seq: number; state: string; attempts: number; reference?: string; lastError?: string; reportKey: string }
interface JobDetail { id: string; studyInstanceUid: string; state: string; reportRef?: string; deliveries: ApiDelivery[] }

describe('the hl7 output delivers every report event to an independent MLLP peer (python3-hl7) as ORU^R01', () => {
  let peers: Peers;
  let issuer: TokenIssuer;
  let dir: string;
  let radiologist: Practitioner & { id: string };
  const running: ServeProcess[] = [];
  const stops: (() => Promise<void>)[] = [];
  let count = 0;

  beforeAll(async () => {
    peers = await startPeers();
    issuer = await startTokenIssuer();
    dir = await mkdtemp(path.join(tmpdir(), 'raddraft-hl7-out-'));
    radiologist = await create<Practitioner>(peers.fhir.url, { resourceType: 'Practitioner', name: [{ family: 'Example', given: ['Ada'] }] });
  });

  afterEach(async () => {
    for (const s of running.splice(0)) await s.kill('SIGKILL');
    for (const stop of stops.splice(0)) await stop();
  });

  afterAll(async () => {
    await issuer?.stop();
    await peers?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function peer(options: Parameters<typeof startHl7Peer>[1] = {}): Promise<Hl7Peer> {
    const p = await startHl7Peer(dir, options);
    stops.push(() => p.stop());
    return p;
  }

  /** A PACS of its own with one fresh study (its own accession), and raddraft delivering to fhir and hl7. */
  async function scenario(destination: string, extra: Record<string, string> = {}) {
    const own = path.join(dir, `s${++count}`);
    await mkdir(own, { recursive: true });
    const pacs: OrthancInstance = await startOrthanc();
    stops.push(() => pacs.stop());
    const [study] = await cloneStudies(fixture('chest-ap-mono1').files[0]!, 1, own, [`(0008,0050)=HL7OUT-${count}`]);
    await stowFiles(pacs.dicomWebUrl, [study!.file]);
    const env = serviceEnv(peers, path.join(own, 'data'), {
      RADDRAFT_DICOMWEB_URL: pacs.dicomWebUrl, RADDRAFT_OUTPUTS: 'fhir,hl7', RADDRAFT_HL7_DESTINATION: destination,
      RADDRAFT_HL7_ACK_TIMEOUT_SECONDS: '5', RADDRAFT_API_TOKEN: randomBytes(32).toString('base64url'),
      RADDRAFT_AUTH_ISSUER: issuer.issuer, RADDRAFT_AUTH_AUDIENCE: 'raddraft', RADDRAFT_AUTH_JWKS_URL: issuer.jwksUrl,
      RADDRAFT_AUTH_SIGNER_ROLE: 'radiologist', ...extra,
    });
    const start = async () => {
      const s = await startServe(env);
      running.push(s);
      return s;
    };
    return { serve: await start(), studyUid: study!.studyUid, restart: start };
  }

  async function job(serve: ServeProcess, studyUid: string): Promise<JobDetail | undefined> {
    const { jobs } = (await (await serve.api('/api/jobs?limit=100', { headers: serve.jobsHeaders })).json()) as { jobs: { id: string; studyInstanceUid: string }[] };
    const found = jobs.find((j) => j.studyInstanceUid === studyUid);
    return found ? ((await (await serve.api(`/api/jobs/${found.id}`, { headers: serve.jobsHeaders })).json()) as JobDetail) : undefined;
  }

  /** The job once `ok` holds for its delivery of `event` to hl7; a timeout says where it stands. */
  async function waitForHl7(serve: ServeProcess, studyUid: string, event: string, ok: (d: ApiDelivery) => boolean, timeoutMs = 60_000): Promise<JobDetail> {
    let last: JobDetail | undefined;
    const of = (j: JobDetail | undefined) => j?.deliveries.find((d) => d.output === 'hl7' && d.event === event);
    try {
      await waitFor(`the ${event} delivery to hl7`, async () => {
        last = await job(serve, studyUid);
        const d = of(last);
        return !!d && ok(d);
      }, timeoutMs, 200);
    } catch (err) {
      throw new Error(`${(err as Error).message}; deliveries: ${JSON.stringify(last?.deliveries ?? [])}\n${serve.output().slice(-1500)}`, { cause: err });
    }
    return last!;
  }

  /** The draft's DiagnosticReport id, once its delivery to the FHIR server is done (hl7 may have had it first). */
  async function reportIdOf(serve: ServeProcess, studyUid: string): Promise<string> {
    let ref: string | undefined;
    await waitFor('the draft at the FHIR server', async () => !!(ref = (await job(serve, studyUid))?.reportRef), 60_000, 200);
    return ref!.split('/')[1]!;
  }

  const hl7Of = (j: JobDetail, event: string) => j.deliveries.find((d) => d.output === 'hl7' && d.event === event)!;
  const segmentNames = (e: PeerEntry) => e.segments.map((s) => s[0]);
  const save = async (name: string, entry: PeerEntry) => {
    if (REPORT_DIR) await writeFile(path.join(REPORT_DIR, name), `${JSON.stringify(entry, null, 2)}\n`);
  };

  it('sends the draft as R, the signature as F and the correction as C, in that order, over TLS (mllps://), each parsed whole by the peer', async () => {
    // The peer's certificate is signed by a private CA that raddraft is given (NODE_EXTRA_CA_CERTS).
    const certs = path.join(dir, 'tls');
    await mkdir(certs, { recursive: true });
    const cert = path.join(certs, 'peer.crt');
    const privateKey = path.join(certs, 'peer.key');
    await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=ris.test', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', privateKey, '-out', cert]);
    const ris = await peer({ tls: { cert, key: privateKey } });
    const s = await scenario(`mllps://127.0.0.1:${ris.port}`, { NODE_EXTRA_CA_CERTS: cert });
    await waitForHl7(s.serve, s.studyUid, 'drafted', (d) => d.state === 'delivered');
    const reportId = await reportIdOf(s.serve, s.studyUid);
    const token = await issuer.token({ sub: 'ada', name: 'Dr Ada Example', fhirUser: `https://fhir.hospital.example/Practitioner/${radiologist.id}`, roles: ['radiologist'] });
    const post = async (action: string, body: unknown) => s.serve.api(`/api/reports/${reportId}/${action}`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body),
    });
    const version = async () => (await search<DiagnosticReport>(peers.fhir.url, `DiagnosticReport?_id=${reportId}`))[0]!.meta!.versionId!;
    expect((await post('sign', { findings: 'The lungs are clear.', impression: 'No acute disease.', version: await version() })).ok).toBe(true);
    await waitForHl7(s.serve, s.studyUid, 'signed', (d) => d.state === 'delivered');
    expect((await post('correct', { findings: 'Small left effusion.', impression: 'Small left pleural effusion.', reason: 'missed effusion', version: await version() })).ok).toBe(true);
    const done = await waitForHl7(s.serve, s.studyUid, 'corrected', (d) => d.state === 'delivered');

    const got = ris.received();
    expect(got.map((e) => [e.type, e.version, e.obr25, e.answer])).toEqual([
      ['ORU^R01^ORU_R01', '2.5.1', 'R', 'AA'], ['ORU^R01^ORU_R01', '2.5.1', 'F', 'AA'], ['ORU^R01^ORU_R01', '2.5.1', 'C', 'AA'],
    ]);
    const key = hl7Of(done, 'drafted').reportKey;
    expect(got.map((e) => e.control_id)).toEqual([0, 1, 2].map((seq) => controlIdOf(`${key}:${seq}`)));
    expect(done.deliveries.filter((d) => d.output === 'hl7').map((d) => [d.event, d.attempts, d.reference])).toEqual(
      [0, 1, 2].map((seq) => [['drafted', 'signed', 'corrected'][seq], 1, `hl7/${controlIdOf(`${key}:${seq}`)}`]));
    const [r, f, c] = got as [PeerEntry, PeerEntry, PeerEntry];
    expect(segmentNames(r).join(' ')).toMatch(/^MSH PID ORC OBR (NTE )+(TQ1 )?OBX OBX OBX$/);
    expect(segmentNames(f).join(' ')).toMatch(/^MSH PID ORC OBR NTE OBX OBX OBX$/);
    expect(r.pid3).toEqual(['RDX-PHI-100456']);
    expect(r.segments.find((x) => x[0] === 'OBR')![3]).toBe('HL7OUT-1');
    expect(r.obx11).toEqual(['R', 'R', 'R']);
    expect(r.obx5[0]).toMatch(/^UNVERIFIED AI-GENERATED DRAFT by AI model /);
    expect(r.segments.find((x) => x[0] === 'NTE')![3]).toMatch(/^AI model .+, prompt .+; raddraft /);
    expect(f.obx11).toEqual(['F', 'F', 'F']);
    expect(f.obr32).toBe(`${radiologist.id}&Dr Ada Example&&&&&&&Practitioner`);
    expect(f.obx5.slice(1)).toEqual(['The lungs are clear.', 'No acute disease.']);
    expect(c.obx11).toEqual(['C', 'C', 'C']);
    expect(c.obx5.slice(1)).toEqual(['Small left effusion.', 'Small left pleural effusion.']);
    expect(c.segments.filter((x) => x[0] === 'NTE').map((x) => x[3])).toContain('Reason: missed effusion');
    await save('outbound-R-drafted.json', r);
    await save('outbound-F-signed.json', f);
    await save('outbound-C-corrected.json', c);
  });

  it('delivers after the receiver answered AE twice then AA (three attempts, one control ID), then withdraws the rejected draft as C with OBX-11 D', async () => {
    const ris = await peer({ answers: ['AE', 'AE', 'AA'], text: 'order not yet known' });
    const s = await scenario(`mllp://127.0.0.1:${ris.port}`);
    const done = await waitForHl7(s.serve, s.studyUid, 'drafted', (d) => d.state === 'delivered');
    expect(hl7Of(done, 'drafted')).toMatchObject({ state: 'delivered', attempts: 3 });
    const got = ris.received();
    expect(got.map((e) => [e.copy, e.answer])).toEqual([[1, 'AE'], [2, 'AE'], [3, 'AA']]);
    expect(new Set(got.map((e) => e.control_id))).toEqual(new Set([controlIdOf(`${hl7Of(done, 'drafted').reportKey}:0`)]));
    expect(s.serve.output()).toContain('the HL7 receiver answered AE (error): order not yet known');

    // The radiologist rejects the draft: the RIS is told to delete its observations, and gets no AI text again.
    await ris.answer(['AA']);
    const reportId = await reportIdOf(s.serve, s.studyUid);
    const token = await issuer.token({ sub: 'ada', name: 'Dr Ada Example', fhirUser: `https://fhir.hospital.example/Practitioner/${radiologist.id}`, roles: ['radiologist'] });
    const version = (await search<DiagnosticReport>(peers.fhir.url, `DiagnosticReport?_id=${reportId}`))[0]!.meta!.versionId!;
    const rejected = await s.serve.api(`/api/reports/${reportId}/reject`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ reason: 'wrong patient', version }),
    });
    expect(rejected.ok).toBe(true);
    await waitForHl7(s.serve, s.studyUid, 'rejected', (d) => d.state === 'delivered');
    const withdrawn = ris.received().at(-1)!;
    expect([withdrawn.obr25, withdrawn.obx11, withdrawn.obx5.slice(1)]).toEqual(['C', ['D', 'D', 'D'], ['', '']]);
    expect(withdrawn.raw).not.toContain(got[0]!.obx5[1]!);
    expect(withdrawn.segments.filter((x) => x[0] === 'NTE').map((x) => x[3])).toContain('Reason: wrong patient');
    await save('outbound-C-D-rejected.json', withdrawn);
  });

  it('waits for a receiver that is down without using attempts, and delivers once it listens', async () => {
    const port = await freePort();
    const s = await scenario(`mllp://127.0.0.1:${port}`);
    const waiting = await waitForHl7(s.serve, s.studyUid, 'drafted', (d) => !!d.lastError);
    expect(hl7Of(waiting, 'drafted')).toMatchObject({ state: 'pending', attempts: 0 });
    expect(hl7Of(waiting, 'drafted').lastError).toMatch(new RegExp(`^cannot reach the HL7 receiver at mllp://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\); waiting for it$`));
    const ris = await peer({ port });
    const done = await waitForHl7(s.serve, s.studyUid, 'drafted', (d) => d.state === 'delivered', 60_000);
    expect(hl7Of(done, 'drafted')).toMatchObject({ state: 'delivered', attempts: 1 });
    expect(ris.received().map((e) => e.obr25)).toEqual(['R']);
  });

  it('sends the same control ID again after raddraft is killed (kill -9) while it waits for the ACK', async () => {
    const ris = await peer({ answers: ['none', 'AA'] });
    const s = await scenario(`mllp://127.0.0.1:${ris.port}`, { RADDRAFT_HL7_ACK_TIMEOUT_SECONDS: '120' });
    await waitFor('the peer to hold the first copy unanswered', () => Promise.resolve(ris.received().length === 1), 60_000, 100);
    await s.serve.kill('SIGKILL');
    const again = await s.restart();
    const done = await waitForHl7(again, s.studyUid, 'drafted', (d) => d.state === 'delivered');
    const got = ris.received();
    expect(got.map((e) => [e.copy, e.answer])).toEqual([[1, 'none'], [2, 'AA']]);
    expect(got[1]!.control_id).toBe(got[0]!.control_id);
    expect(got[0]!.control_id).toBe(controlIdOf(`${hl7Of(done, 'drafted').reportKey}:0`));
    expect(got[1]!.raw).toBe(got[0]!.raw);
  });

  it('has raddraft doctor connect to the RIS without sending a message, and say when it cannot', async () => {
    const ris = await peer();
    const down = await freePort();
    const doctor = async (destination: string) => {
      const run = runCli(['doctor'], serviceEnv(peers, path.join(dir, `doctor-${destination.split(':').pop()}`), { RADDRAFT_OUTPUTS: 'fhir,hl7', RADDRAFT_HL7_DESTINATION: destination }));
      await run.exited;
      return run.output().split('\n').find((l) => l.includes('HL7 receiver (MLLP)'));
    };
    const [up, unreachable] = await Promise.all([doctor(`mllp://127.0.0.1:${ris.port}`), doctor(`mllp://127.0.0.1:${down}`)]);
    expect(up).toBe(`OK   HL7 receiver (MLLP): mllp://127.0.0.1:${ris.port} accepts connections; no message was sent`);
    expect(unreachable).toBe(`FAIL HL7 receiver (MLLP): cannot reach the HL7 receiver at mllp://127.0.0.1:${down} (ECONNREFUSED); check RADDRAFT_HL7_DESTINATION and that the RIS listens there`);
    expect(ris.received()).toEqual([]);
  });
});
