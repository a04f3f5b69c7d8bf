import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { waitFor } from '../../src/demo/ports.js';
import type { EvalResult } from '../../src/eval/result.js';
import { cloneStudies } from '../harness/dcmtk.js';
import { sendHl7, type PeerAnswer } from '../harness/hl7-peer.js';
import { fixture, serviceEnv, startPeers, type Peers } from '../harness/peers.js';
import { runCli, startServe, waitForJobs, type ServeProcess } from '../harness/serve-process.js';

jest.setTimeout(180_000);

const REPORT_DIR = process.env.HL7_REPORT_DIR;
const MAX_KB = 64;

interface ApiMessage { id: string; controlId: string; senderFacility: string; status: string; ackCode: string; reason?: string; studyUid?: string; raw?: string }

/** An ORU^R01 final report as a RIS sends it; `segments` replace or add segments by name. */
function oru(control: string, accession: string, options: { facility?: string; status?: string; segments?: Record<string, string | null>; extra?: string[] } = {}): string {
  const segments: Record<string, string | null> = {
    MSH: `MSH|^~\\&|RIS|${options.facility ?? 'RIS_MAIN'}|RADDRAFT|RAD|20261201120000||ORU^R01^ORU_R01|${control}|P|2.5.1||||||UNICODE UTF-8`,
    PID: 'PID|1||RDX-PHI-100456^^^HOSP||Example^Patient',
    OBR: `OBR|1||${accession}|^XR CHEST|||20260301093000|||||||||||||||20261201115500||RAD|${options.status ?? 'F'}|||||||r7&Radiologist&Rita`,
    OBX1: 'OBX|1|TX|18782-3^Radiology Study observation (narrative)^LN|1|The heart is enlarged.~Small left pleural effusion.||||||F',
    OBX2: 'OBX|2|TX|19005-8^Radiology Imaging study [Impression] (narrative)^LN|1|Cardiomegaly and a small left effusion.||||||F',
    ...options.segments,
  };
  return [...Object.values(segments).filter((s): s is string => !!s), ...(options.extra ?? [])].join('\r');
}

const framed = (...parts: (string | Buffer)[]) => Buffer.concat([Buffer.from([0x0b]), ...parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)), Buffer.from([0x1c, 0x0d])]);

describe('the HL7 listener takes final reports from the RIS and answers every message', () => {
  let peers: Peers;
  let dir: string;
  let serve: ServeProcess;
  let port: number;
  let drafted: string;
  let ct: string;
  let exchanges: string;

  beforeAll(async () => {
    peers = await startPeers();
    dir = await mkdtemp(path.join(tmpdir(), 'raddraft-hl7-in-'));
    exchanges = path.join(dir, 'exchanges.jsonl');
    const [cxr] = await cloneStudies(fixture('chest-ap-mono1').files[0]!, 1, dir, ['(0008,0050)=HL7IN-1']);
    const [scan] = await cloneStudies(fixture('ct-chest').files[0]!, 1, dir, ['(0008,0050)=HL7IN-CT']);
    await peers.upload([{ key: 'cxr', studyUid: cxr!.studyUid, modality: 'CR', files: [cxr!.file] }, { key: 'ct', studyUid: scan!.studyUid, modality: 'CT', files: [scan!.file] }]);
    drafted = cxr!.studyUid;
    ct = scan!.studyUid;
    serve = await startServe(serviceEnv(peers, path.join(dir, 'data'), {
      RADDRAFT_HL7_LISTEN_PORT: '0', RADDRAFT_HL7_SENDERS: 'RIS_MAIN@127.0.0.1,REMOTE_RIS@192.0.2.9', RADDRAFT_HOST: '127.0.0.1',
      RADDRAFT_HL7_MAX_MESSAGE_KB: String(MAX_KB), RADDRAFT_HL7_IDLE_SECONDS: '2', RADDRAFT_API_TOKEN: randomBytes(32).toString('base64url'),
    }));
    port = Number(/"hl7Port":(\d+)/.exec(serve.output())![1]);
    await waitForJobs(serve, [drafted], ['reported']);
    await waitForJobs(serve, [ct], ['ineligible']);
  });

  afterAll(async () => {
    await serve?.kill('SIGTERM');
    // Every exchange as the peer logged it, for the record.
    if (REPORT_DIR) await writeFile(path.join(REPORT_DIR, 'inbound-exchanges-all.jsonl'), await readFile(exchanges, 'utf8')).catch(() => undefined);
    await peers?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const send = async (message: string) => (await sendHl7(port, dir, { messages: [message] }, { log: exchanges }))[0]!;
  const sendRaw = async (bytes: Buffer) => (await sendHl7(port, dir, { raw: bytes }, { log: exchanges }))[0]!;
  const msaErr = (a: PeerAnswer) => ({ msa: a.msa, err: a.err?.map((e) => e.slice(0, 9)) });
  const messages = async (query = '') => ((await (await serve.api(`/api/hl7-messages${query}`, { headers: serve.jobsHeaders })).json()) as { messages: ApiMessage[] }).messages;
  const kept = async (control: string) => (await messages()).find((m) => m.controlId === control);

  it('records a final ORU for a drafted study, answers AA, and shows it on the quality page and in eval --production', async () => {
    const answer = await send(oru('FIN-1', 'HL7IN-1'));
    expect(msaErr(answer)).toEqual({ msa: ['MSA', 'AA', 'FIN-1'], err: [] });
    const record = (await kept('FIN-1'))!;
    expect(record).toMatchObject({ status: 'accepted', ackCode: 'AA', studyUid: drafted, senderFacility: 'RIS_MAIN' });
    const whole = (await (await serve.api(`/api/hl7-messages/${record.id}`, { headers: serve.jobsHeaders })).json()) as { findings: string; impression: string };
    expect(whole).toMatchObject({ findings: 'The heart is enlarged.\nSmall left pleural effusion.', impression: 'Cardiomegaly and a small left effusion.' });
    // The same message sent again (its ACK was lost) is recognised by its control ID and kept once.
    expect(msaErr(await send(oru('FIN-1', 'HL7IN-1')))).toEqual({ msa: ['MSA', 'AA', 'FIN-1'], err: [] });
    expect((await messages('?status=accepted')).filter((m) => m.controlId === 'FIN-1')).toHaveLength(1);

    const page = await (await serve.api('/review/quality')).text();
    const table = /<table class="quality" id="ris-quality">([\s\S]*?)<\/table>/.exec(page)?.[1] ?? '';
    expect(table).toContain('<td>lingshu-medical-mllm/Lingshu-7B</td><td>medevalkit-report-1</td><td>1</td>');
    const quality = (await (await serve.api('/api/quality', { headers: serve.jobsHeaders })).json()) as { risByModel: { reports: number; unchanged: number }[] };
    expect(quality.risByModel).toMatchObject([{ reports: 1, unchanged: 0 }]);

    const out = path.join(dir, 'eval');
    const since = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    const run = runCli(['eval', '--production', '--since', since, '--out', out], serviceEnv(peers, path.join(dir, 'data')));
    expect({ code: await run.exited, output: run.output().slice(-500) }).toMatchObject({ code: 0 });
    const result = JSON.parse(await readFile(path.join(out, 'results.json'), 'utf8')) as EvalResult;
    const study = result.studies.find((s) => s.id === drafted)!;
    expect(study.reference).toEqual({ findings: 'The heart is enlarged.\nSmall left pleural effusion.', impression: 'Cardiomegaly and a small left effusion.' });
    expect(study.labels!.reference).toMatchObject({ Cardiomegaly: 1, 'Pleural Effusion': 1 });
    if (REPORT_DIR) await writeFile(path.join(REPORT_DIR, 'inbound-exchange.jsonl'), await readFile(exchanges, 'utf8'));
  });

  it('records an MDM^T02 that names its study in ZDS (its accession checked against the PACS), and refuses one whose accession is another study\'s', async () => {
    const txa = (accession: string) => ['TXA', '1', 'RAD', 'TX', '20261201120000', '', '', '', '', '', '', '', 'DOC-1', '', '', accession, '', 'AU', '', '', '', '', 'r7^Radiologist^Rita'].join('|');
    const mdm = (control: string, accession: string) => [
      `MSH|^~\\&|DICT|RIS_MAIN|RADDRAFT|RAD|20261201120000||MDM^T02^MDM_T02|${control}|P|2.5.1`, 'EVN|T02|20261201120000',
      'PID|1||RDX-PHI-100456^^^HOSP', 'PV1|1|O', txa(accession), `ZDS|${drafted}^RADDRAFT^Application^DICOM`,
      'OBX|1|TX|GDT^Report^L|1|FINDINGS: The heart is enlarged.~IMPRESSION: Cardiomegaly.||||||F',
    ].join('\r');
    expect(msaErr(await send(mdm('MDM-1', 'HL7IN-1')))).toEqual({ msa: ['MSA', 'AA', 'MDM-1'], err: [] });
    const record = (await kept('MDM-1'))!;
    expect(record).toMatchObject({ status: 'accepted', studyUid: drafted });
    expect(await (await serve.api(`/api/hl7-messages/${record.id}`, { headers: serve.jobsHeaders })).json()).toMatchObject({ messageType: 'MDM^T02', findings: 'The heart is enlarged.', impression: 'Cardiomegaly.' });
    const reason = 'the accession number does not match the study the message names';
    expect(msaErr(await send(mdm('MDM-2', 'HL7IN-CT')))).toEqual({ msa: ['MSA', 'AE', 'MDM-2', reason], err: [['ERR', '', 'ZDS^1^1', '204^Unknown key identifier^HL70357', 'E', '', '', '', reason]] });
  });

  it.each([
    ['an unknown accession', oru('BAD-ACC', 'NOPE-1'), 'AE', 'OBR^1^3', '204^Unknown key identifier^HL70357', 'no study in the PACS has the accession number of this report'],
    ['a study raddraft has no draft for', oru('BAD-CT', 'HL7IN-CT'), 'AE', 'OBR^1^3', '204^Unknown key identifier^HL70357', 'raddraft has no draft for the study of this report'],
    ['no report text', oru('BAD-TEXT', 'HL7IN-1', { segments: { OBX1: null, OBX2: null } }), 'AE', 'OBX^1^5', '101^Required field missing^HL70357', 'the message holds no report text (no OBX of type TX, FT or ST with a value)'],
    ['no OBR (wrong structure)', oru('BAD-OBR', 'HL7IN-1', { segments: { OBR: null } }), 'AE', 'OBR', '100^Segment sequence error^HL70357', 'an ORU^R01 needs PID and OBR segments; this one has no OBR'],
    ['a preliminary report', oru('BAD-P', 'HL7IN-1', { status: 'P' }), 'AE', 'OBR^1^25', '102^Data type error^HL70357', 'OBR-25 is "P"; raddraft records final reports only (F or C)'],
    ['another message type', oru('BAD-ADT', 'HL7IN-1').replace('ORU^R01^ORU_R01', 'ADT^A01^ADT_A01'), 'AR', 'MSH^1^9', '200^Unsupported message type^HL70357', 'raddraft takes ORU^R01 and MDM^T02 final reports, not ADT^A01'],
  ])('answers %s with the exact MSA and ERR and keeps the message', async (_what, message, code, location, error, reason) => {
    const control = /\|ORU\^R01\^ORU_R01\|([^|]+)\||\|ADT\^A01\^ADT_A01\|([^|]+)\|/.exec(message)!.slice(1).find(Boolean)!;
    const answer = await send(message);
    expect(msaErr(answer)).toEqual({ msa: ['MSA', code, control, reason.slice(0, 80)], err: [['ERR', '', location, error, 'E', '', '', '', reason]] });
    expect(await kept(control)).toMatchObject({ status: 'refused', ackCode: code, reason: `${error.split('^')[1]} at ${location}: ${reason}` });
  });

  it('answers AE for bytes that are not UTF-8, naming the segment, and keeps the message', async () => {
    const bytes = framed(oru('BAD-UTF8', 'HL7IN-1', { segments: { OBX2: null } }), '\rOBX|2|TX|19005-8^Impression^LN|1|caf', Buffer.from([0xe9, 0x0d]));
    const answer = await sendRaw(bytes);
    const reason = `the message holds bytes that are not UNICODE UTF-8 (first at byte ${bytes.indexOf(0xe9) - 1}); declare its character set in MSH-18`;
    expect(msaErr(answer)).toEqual({ msa: ['MSA', 'AE', 'BAD-UTF8', reason.slice(0, 80)], err: [['ERR', '', 'OBX^2', '102^Data type error^HL70357', 'E', '', '', '', reason]] });
    expect((await kept('BAD-UTF8'))!.raw).toBeUndefined();
    const detail = (await (await serve.api(`/api/hl7-messages/${(await kept('BAD-UTF8'))!.id}`, { headers: serve.jobsHeaders })).json()) as ApiMessage;
    expect(detail.raw).toContain('caf\\xe9');
  });

  it('refuses a sending facility not on the allow-list, or one from another address, and keeps no content of it', async () => {
    const reason = 'the sending facility (MSH-4) is not allowed to send to raddraft from this address';
    for (const [control, facility] of [['EVIL-1', 'EVIL'], ['EVIL-2', 'REMOTE_RIS']] as const) {
      const answer = await send(oru(control, 'HL7IN-1', { facility }));
      expect(msaErr(answer)).toEqual({ msa: ['MSA', 'AR', control, reason.slice(0, 80)], err: [['ERR', '', 'MSH^1^4', '207^Application internal error^HL70357', 'E', '', '', '', reason]] });
      const record = (await kept(control))!;
      expect(record).toMatchObject({ status: 'refused', ackCode: 'AR', senderFacility: facility });
      expect(((await (await serve.api(`/api/hl7-messages/${record.id}`, { headers: serve.jobsHeaders })).json()) as ApiMessage).raw).toBeUndefined();
    }
  });

  it('answers an oversized message AR with its control ID and closes, and answers bytes outside MLLP framing AR and closes', async () => {
    const big = framed(oru('BIG-1', 'HL7IN-1', { extra: [`OBX|3|TX|x^y^L|1|${'A'.repeat(MAX_KB * 1024)}||||||F`] }));
    const reason = `the message is larger than ${MAX_KB * 1024} bytes, the most this listener takes`;
    expect(msaErr(await sendRaw(big))).toEqual({ msa: ['MSA', 'AR', 'BIG-1', reason.slice(0, 80)], err: [['ERR', '', '', '207^Application internal error^HL70357', 'E', '', '', '', reason]] });
    expect(await kept('BIG-1')).toMatchObject({ status: 'refused', ackCode: 'AR' });

    const garbage = 'bytes outside an MLLP block: each message must be framed as <VT> message <FS><CR>';
    const answer = await sendRaw(Buffer.from('GET / HTTP/1.1\r\nHost: raddraft\r\n\r\n'));
    expect(msaErr(answer)).toEqual({ msa: ['MSA', 'AR', '', garbage.slice(0, 80)], err: [['ERR', '', '', '100^Segment sequence error^HL70357', 'E', '', '', '', garbage]] });
  });

  it('still answers a sender that ends its side of the connection right after its message', async () => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.on('error', () => undefined);
    socket.end(framed(oru('HALF-1', 'HL7IN-1')));
    await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 15 s')), 15_000))]);
    const answer = Buffer.concat(chunks).toString('utf8');
    expect([answer.at(0), answer.slice(-2)]).toEqual(['\u000b', '\u001c\r']);
    expect(answer.slice(1, -2).split('\r')[1]).toBe('MSA|AA|HALF-1');
  });

  it('closes a connection that goes quiet in the middle of a message, and goes on answering others', async () => {
    const socket = net.connect(port, '127.0.0.1');
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(framed(oru('IDLE-1', 'HL7IN-1')).subarray(0, 40));
    let closedAt = 0;
    await waitFor('raddraft to close the idle connection', async () => {
      closedAt = await Promise.race([closed, new Promise<number>((resolve) => setTimeout(() => resolve(0), 100))]);
      return closedAt > 0;
    }, 15_000, 10);
    await waitFor('raddraft to log why it closed the connection', () => Promise.resolve(serve.output().includes('"partial":true,"msg":"closed an idle HL7 connection"')), 10_000);
    expect(msaErr(await send(oru('AFTER-1', 'HL7IN-1')))).toEqual({ msa: ['MSA', 'AA', 'AFTER-1'], err: [] });
    expect((await serve.api('/healthz')).status).toBe(200);
  });
});
