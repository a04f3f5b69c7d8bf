import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { request, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { DiagnosticReport } from '@medplum/fhirtypes';
import express from 'express';
import { waitFor } from '../../src/demo/ports.js';
import { stowFiles } from '../../src/demo/stow.js';
import { errorHandler } from '../../src/http/errors.js';
import { ReceivedStore } from '../../src/intake/received-store.js';
import { stowRouter } from '../../src/intake/stow-receiver.js';
import { createLogger } from '../../src/log.js';
import { cloneStudies, dcmtk } from '../harness/dcmtk.js';
import { search } from '../harness/fhir-queries.js';
import { fixture, serviceEnv, startPeers, type Peers } from '../harness/peers.js';
import { listJobs, runCli, startServe, waitForJobs, type ServeProcess } from '../harness/serve-process.js';

jest.setTimeout(240_000);
const run = promisify(execFile);

const TOKEN = 'stow-token-0123456789abcdef';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const KEY = 'https://raddraft.dev/fhir/sid/ai-draft-report';
const reportsFor = (fhirUrl: string, uid: string) =>
  search<DiagnosticReport>(fhirUrl, `DiagnosticReport?identifier=${encodeURIComponent(`${KEY}|${uid}_lingshu-medical-mllm-Lingshu-7B`)}`);
const MiB = 2 ** 20;

interface Part {
  type: string;
  body: Buffer;
}

/** One STOW-RS request with its whole body in memory (small parts). */
function stow(port: number, parts: Part[], headers: Record<string, string> = AUTH): Promise<Response> {
  const chunks = parts.flatMap((p) => [Buffer.from(`--b\r\nContent-Type: ${p.type}\r\n\r\n`, 'latin1'), p.body, Buffer.from('\r\n')]);
  return fetch(`http://127.0.0.1:${port}/dicom-web/studies`, {
    method: 'POST',
    headers: { 'content-type': 'multipart/related; type="application/dicom"; boundary=b', ...headers },
    body: Buffer.concat([...chunks, Buffer.from('--b--\r\n')]),
  });
}

/**
 * A STOW-RS request over a raw HTTP connection whose parts are streamed, `partBytes` each, a chunk at a time; it
 * stops sending as soon as the answer arrives (as a sender should on an early refusal) and resolves with it.
 */
function streamStow(port: number, partBytes: number[], headers: Record<string, string> = AUTH): Promise<{ status: number; body: string; sent: number }> {
  return new Promise((resolve, reject) => {
    let answered = false;
    let sent = 0;
    const req = request({
      host: '127.0.0.1', port, method: 'POST', path: '/dicom-web/studies',
      headers: { 'content-type': 'multipart/related; type="application/dicom"; boundary=b', ...headers },
    }, (res) => {
      answered = true;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, sent }));
      res.on('error', reject);
    });
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    const chunk = Buffer.alloc(256 * 1024, 0x5a);
    const write = async (buf: Buffer) => {
      sent += buf.length;
      if (!req.write(buf)) await new Promise<void>((r) => req.once('drain', r));
    };
    void (async () => {
      for (const bytes of partBytes) {
        await write(Buffer.from('--b\r\nContent-Type: application/dicom\r\n\r\n'));
        for (let left = bytes; left > 0 && !answered && !req.destroyed; left -= chunk.length) await write(chunk.subarray(0, Math.min(left, chunk.length)));
        if (answered || req.destroyed) return;
        await write(Buffer.from('\r\n'));
      }
      req.end('--b--\r\n');
    })().catch(() => undefined);
  });
}

const availMiB = async (dir: string) => Number((await run('df', ['-m', '--output=avail', dir])).stdout.trim().split('\n').pop());
const diagnosticsOf = (text: string) => (JSON.parse(text) as { issue: { diagnostics: string }[] }).issue[0]!.diagnostics;
const filesUnder = async (dir: string): Promise<string[]> =>
  (await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])).filter((e) => e.isFile()).map((e) => e.name);

describe('raddraft serve with stow and no RADDRAFT_STOW_AUTH', () => {
  it('refuses to start (exit 78), naming RADDRAFT_STOW_AUTH with an example', async () => {
    const p = runCli(['serve'], {
      RADDRAFT_DICOMWEB_URL: 'http://127.0.0.1:1/dicom-web', RADDRAFT_FHIR_URL: 'http://127.0.0.1:1/fhir', RADDRAFT_LINGSHU_URL: 'http://127.0.0.1:1/v1',
      RADDRAFT_INTAKE: 'qido,stow',
    });
    expect(await p.exited).toBe(78);
    expect(p.output()).toContain('RADDRAFT_STOW_AUTH is missing: STOW-RS accepts pushes only from senders with credentials; for example RADDRAFT_STOW_AUTH=bearer:a-long-random-token (or RADDRAFT_STOW_AUTH=none to accept any sender on the network)');
  });
});

describe('studies pushed with STOW-RS are checked against the PACS', () => {
  let peers: Peers;
  let serve: ServeProcess;
  let dir: string;
  let data: string;
  const ap = fixture('chest-ap-mono1');
  const env = () => serviceEnv(peers, data, { RADDRAFT_INTAKE: 'stow', RADDRAFT_STOW_AUTH: `bearer:${TOKEN}`, RADDRAFT_MAX_ATTEMPTS: '2' });
  const receivedOf = (uid: string) => path.join(data, 'received', uid);
  const gone = (what: string, p: string) => waitFor(what, async () => (await filesUnder(p)).length === 0, 20_000);

  beforeAll(async () => {
    peers = await startPeers();
    dir = await mkdtemp(path.join(tmpdir(), 'raddraft-stow-hostile-'));
    data = path.join(dir, 'data');
    serve = await startServe(env());
  });

  afterAll(async () => {
    await serve?.kill('SIGTERM');
    await peers?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a push without credentials, or with wrong ones, with 401 and keeps nothing', async () => {
    const [study] = await cloneStudies(ap.files[0]!, 1, dir);
    const body = await readFile(study!.file);
    const tries: Record<string, string>[] = [{}, { authorization: 'Bearer wrong-token-0123456789abcdef' }, { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` }];
    for (const headers of tries) {
      const res = await stow(serve.port, [{ type: 'application/dicom', body }], headers);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="raddraft STOW-RS"');
      expect(diagnosticsOf(await res.text())).toBe('STOW-RS: missing or wrong credentials (raddraft checks RADDRAFT_STOW_AUTH)');
    }
    expect(await filesUnder(path.join(data, 'received'))).toEqual([]);
    expect((await listJobs(serve)).some((j) => j.studyInstanceUid === study!.studyUid)).toBe(false);
  });

  it('drafts a pushed study the PACS holds, then removes the pushed instances', async () => {
    const [study] = await cloneStudies(ap.files[0]!, 1, dir);
    await stowFiles(peers.orthanc.dicomWebUrl, [study!.file]);
    expect(await stowFiles(`http://127.0.0.1:${serve.port}/dicom-web`, [study!.file], AUTH)).toBe(200);
    await waitForJobs(serve, [study!.studyUid], ['reported']);
    expect(await reportsFor(peers.fhir.url, study!.studyUid)).toHaveLength(1);
    await gone('the posted study\'s pushed instances to be removed', receivedOf(study!.studyUid));

    // Pushed again after its job has ended: nothing will read it, so it is not kept.
    expect(await stowFiles(`http://127.0.0.1:${serve.port}/dicom-web`, [study!.file], AUTH)).toBe(200);
    await gone('instances pushed after the job ended to be removed', receivedOf(study!.studyUid));
    expect(serve.output()).toContain('"msg":"pushed instances removed: their job no longer needs them"');
  });

  it('does not draft a pushed study the PACS does not hold; after waiting, the job says why', async () => {
    const [study] = await cloneStudies(ap.files[0]!, 1, dir);
    expect(await stowFiles(`http://127.0.0.1:${serve.port}/dicom-web`, [study!.file], AUTH)).toBe(200);
    const [job] = (await waitForJobs(serve, [study!.studyUid], ['dead'])).filter((j) => j.studyInstanceUid === study!.studyUid);
    expect(job).toMatchObject({
      attempts: 2,
      reason: `study ${study!.studyUid} was pushed to raddraft but the PACS (QIDO-RS at RADDRAFT_DICOMWEB_URL) does not hold it; a pushed study is drafted only once the PACS confirms it (RADDRAFT_PUSH_VERIFY=pacs)`,
    });
    expect(await reportsFor(peers.fhir.url, study!.studyUid)).toEqual([]);
    await gone('the dead study\'s pushed instances to be removed', receivedOf(study!.studyUid));
  });

  it('refuses a pushed study whose patient differs from the one the PACS holds, without naming either', async () => {
    const [study] = await cloneStudies(ap.files[0]!, 1, dir);
    await stowFiles(peers.orthanc.dicomWebUrl, [study!.file]);
    const forged = path.join(dir, 'forged.dcm');
    await copyFile(study!.file, forged);
    await dcmtk('dcmodify', ['-nb', '-m', '(0010,0020)=VICTIM-4711', forged]);
    expect(await stowFiles(`http://127.0.0.1:${serve.port}/dicom-web`, [forged], AUTH)).toBe(200);
    const [job] = (await waitForJobs(serve, [study!.studyUid], ['dead'])).filter((j) => j.studyInstanceUid === study!.studyUid);
    expect(job).toMatchObject({
      attempts: 1,
      reason: `1 of the 1 instance(s) pushed for study ${study!.studyUid} name a different patient (Patient ID) than the PACS holds for that study; raddraft drafts nothing from them`,
    });
    expect(await reportsFor(peers.fhir.url, study!.studyUid)).toEqual([]);
    expect(serve.output()).not.toContain('VICTIM-4711');
  });

  it('on start, removes pushed instances whose job has ended and old ones no job knows', async () => {
    const [posted] = (await listJobs(serve)).filter((j) => j.state === 'drafted');
    await serve.kill('SIGTERM');
    const orphan = receivedOf('1.2.826.0.1.3680043.8.498.424242');
    const young = receivedOf('1.2.826.0.1.3680043.8.498.434343');
    for (const d of [orphan, young, receivedOf(posted!.studyInstanceUid)]) {
      await mkdir(d, { recursive: true });
      await writeFile(path.join(d, '1.2.3.dcm'), 'left behind');
    }
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    await utimes(orphan, twoHoursAgo, twoHoursAgo);
    serve = await startServe(env());
    expect(await filesUnder(orphan)).toEqual([]);
    expect(await filesUnder(receivedOf(posted!.studyInstanceUid))).toEqual([]);
    expect(await filesUnder(young)).toEqual(['1.2.3.dcm']);
  });
});

describe('STOW-RS on a small disk (a tmpfs as the data directory)', () => {
  let serve: ServeProcess;
  let dir: string;
  let data: string;
  const spool = () => path.join(data, 'received', '.spool');

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'raddraft-stow-disk-'));
    data = path.join(dir, 'data');
    await mkdir(data);
    await run('mount', ['-t', 'tmpfs', '-o', 'size=192m', 'tmpfs', data]);
    serve = await startServe({
      RADDRAFT_DICOMWEB_URL: 'http://127.0.0.1:1/dicom-web', RADDRAFT_FHIR_URL: 'http://127.0.0.1:1/fhir', RADDRAFT_LINGSHU_URL: 'http://127.0.0.1:1/v1',
      RADDRAFT_DATA_DIR: data, RADDRAFT_PORT: '0', RADDRAFT_INTAKE: 'stow', RADDRAFT_STOW_AUTH: 'none',
      RADDRAFT_MIN_FREE_MB: '165', RADDRAFT_MAX_INSTANCE_MB: '20', RADDRAFT_STABLE_SECONDS: '3600',
    });
  });

  afterAll(async () => {
    await serve?.kill('SIGTERM');
    await run('umount', [data]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('warns at start-up that RADDRAFT_STOW_AUTH=none lets anyone push', () => {
    expect(serve.output()).toContain('"msg":"RADDRAFT_STOW_AUTH=none: STOW-RS accepts pushes from anyone who can reach this port; set RADDRAFT_STOW_AUTH=bearer:TOKEN or basic:USER:PASS"');
  });

  it('refuses an instance over RADDRAFT_MAX_INSTANCE_MB with 413 while it streams, keeping no partial file', async () => {
    const res = await streamStow(serve.port, [60 * MiB], {});
    expect(res.status).toBe(413);
    expect(diagnosticsOf(res.body)).toBe('STOW-RS: part 1 is larger than the 20 MiB raddraft accepts for one instance (RADDRAFT_MAX_INSTANCE_MB); it was not kept; nothing in this request was stored');
    expect(res.sent).toBeLessThan(60 * MiB);
    expect(await filesUnder(spool())).toEqual([]);
  });

  it('refuses with 503 when the reserve is crossed in the middle of a request, keeping none of its parts', async () => {
    // Each part starts above the 165 MiB reserve (about 191 MiB free, then 173); the second crosses it.
    expect(await availMiB(data)).toBeGreaterThan(165 + 18);
    const res = await streamStow(serve.port, [18 * MiB, 18 * MiB], {});
    expect(res.status).toBe(503);
    expect(diagnosticsOf(res.body)).toMatch(/^STOW-RS: raddraft's disk has \d+ MiB free, below the 165 MiB it keeps in reserve \(RADDRAFT_MIN_FREE_MB\); the instance was not accepted — send it again once space is freed$/);
    expect(await filesUnder(spool())).toEqual([]);
    expect(await availMiB(data)).toBeGreaterThan(165 + 18);
  });

  it('answers a part whose Content-Type holds control characters with a readable Warning, not a 500', async () => {
    const file = await readFile(fixture('chest-ap-mono1').files[0]!);
    const res = await stow(serve.port, [{ type: 'application/dicom', body: file }, { type: 'text/plain\x7f\x01\xff', body: Buffer.from('hello') }], {});
    expect(res.status).toBe(202);
    expect(res.headers.get('warning')).toBe('299 raddraft "part 2: Content-Type \'text/plain???\' is not application/dicom"');
    const body = (await res.json()) as Record<string, { Value: Record<string, { Value: unknown[] }>[] }>;
    expect(body['00081199']!.Value).toHaveLength(1);
    expect(body['00081198']!.Value[0]!['00081197']!.Value).toEqual([0xc000]);
  });
});

describe('a STOW-RS sender that goes quiet in the middle of a request', () => {
  let server: Server;
  let port: number;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'raddraft-stow-idle-'));
    const app = express();
    const refused: string[] = [];
    app.use(stowRouter({
      received: new ReceivedStore(dir, 0), auth: { kind: 'none' }, idleMs: 500,
      onInstance: () => Promise.resolve(), onRefused: (why) => refused.push(why), log: createLogger({ level: 'silent' }),
    }));
    app.use(errorHandler(createLogger({ level: 'silent' })));
    server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  it('is answered 408 and dropped once it has sent nothing for the idle limit, and its partial instance is removed', async () => {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    let answer = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (answer += d));
    const closed = once(socket, 'close');
    socket.write('POST /dicom-web/studies HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/related; type="application/dicom"; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n');
    const part = Buffer.concat([Buffer.from('--b\r\nContent-Type: application/dicom\r\n\r\n'), Buffer.alloc(256 * 1024, 1)]);
    socket.write(`${part.length.toString(16)}\r\n`);
    socket.write(part);
    socket.write('\r\n');
    await waitFor('the partial instance in the spool', async () => (await filesUnder(path.join(dir, 'received', '.spool'))).length === 1, 5_000);
    await Promise.race([closed, new Promise((_r, reject) => setTimeout(() => reject(new Error('the connection was not closed within 10 s')), 10_000))]);
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer).toContain('STOW-RS: the sender sent nothing for 1 s; nothing in this request was stored');
    expect(await filesUnder(path.join(dir, 'received', '.spool'))).toEqual([]);
  });
});
