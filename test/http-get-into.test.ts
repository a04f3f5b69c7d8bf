import { afterEach, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { HttpGetError, httpGetInto, type GrowableBytes } from '../src/util/http-get-into.js';

/** Memory as the staging buffers give it, with a ceiling, counting the largest size it was asked to hold. */
function memory(ceiling = 64 << 20): GrowableBytes & { peak: number } {
  let buf = Buffer.alloc(0);
  let length = 0;
  return {
    peak: 0,
    space(min) {
      if (length + min > buf.length && buf.length < ceiling) {
        const next = Buffer.alloc(Math.min(ceiling, Math.max(length + min, buf.length * 2)));
        buf.copy(next, 0, 0, length);
        buf = next;
      }
      return buf.subarray(length);
    },
    advance(n) {
      length += n;
      this.peak = Math.max(this.peak, length);
    },
    truncate(to) {
      length = Math.min(length, to);
    },
    written: () => buf.subarray(0, length),
    refusal: () => new Error('too large for this memory'),
  };
}

const servers: { close(): void }[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** A TCP server answering each connection with `answer`, written in the pieces given, after reading the request. */
async function rawServer(answer: (socket: net.Socket, request: string) => void): Promise<URL> {
  const server = net.createServer((socket) => {
    let request = '';
    socket.on('data', (d) => {
      request += d.toString('latin1');
      if (request.includes('\r\n\r\n')) answer(socket, request);
    });
    socket.on('error', () => undefined);
  });
  servers.push({ close: () => server.close() });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return new URL(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}/dicom-web/studies/1.2?x=1`);
}

/** Writes pieces one after another, letting each reach the client on its own. */
async function writeInPieces(socket: net.Socket, pieces: Buffer[]): Promise<void> {
  for (const p of pieces) {
    socket.write(p);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const get = (url: URL, into: GrowableBytes, timeoutMs = 5000) => httpGetInto(url, into, { headers: { accept: 'application/dicom', authorization: 'Basic eDp5' }, timeoutMs });

describe('httpGetInto', () => {
  it('reads a Content-Length body into the memory given, and sends the path, query and headers asked for', async () => {
    const body = randomBytes(3_000_000);
    let seen = '';
    const url = await rawServer((socket, request) => {
      seen = request;
      socket.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: application/dicom\r\nContent-Length: ${body.length}\r\nX-Twice: 1\r\nX-Twice: 2\r\n\r\n`), body]));
    });
    const into = memory();
    const res = await get(url, into);
    expect(res.status).toBe(200);
    expect(res.headers).toMatchObject({ 'content-type': 'application/dicom', 'x-twice': '1' });
    expect(into.written().subarray(res.bodyStart, res.bodyEnd).equals(body)).toBe(true);
    expect(seen).toMatch(/^GET \/dicom-web\/studies\/1\.2\?x=1 HTTP\/1\.1\r\n/);
    expect(seen).toContain('\r\nConnection: close\r\n');
    expect(seen).toContain('\r\naccept: application/dicom\r\n');
    expect(seen).toContain('\r\nauthorization: Basic eDp5\r\n');
  });

  it('decodes a chunked body in place, whatever the split of chunks into reads, with extensions and trailers', async () => {
    const body = randomBytes(1_500_000);
    const url = await rawServer((socket) => {
      const pieces: Buffer[] = [Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')];
      let at = 0;
      for (const size of [1, 4096, 70_000, 3, 400_000, 2_000_000]) {
        const chunk = body.subarray(at, Math.min(body.length, at + size));
        at += chunk.length;
        if (chunk.length) pieces.push(Buffer.from(`${chunk.length.toString(16)};name=value\r\n`), chunk, Buffer.from('\r\n'));
      }
      const wire = Buffer.concat([...pieces, Buffer.from('0\r\nX-Trailer: yes\r\n\r\n')]);
      // Cut the wire at odd places, through size lines and CRLFs as well as data.
      const cuts = [45, 46, 47, 50, 4200, 4203, 80_000, 480_000, 480_002, wire.length - 5, wire.length - 1];
      const parts = cuts.map((c, i) => wire.subarray(i === 0 ? 0 : cuts[i - 1], c));
      void writeInPieces(socket, [...parts, wire.subarray(cuts.at(-1))]).then(() => socket.end());
    });
    const into = memory();
    const res = await get(url, into);
    expect(res.bodyEnd - res.bodyStart).toBe(body.length);
    expect(into.written().subarray(res.bodyStart, res.bodyEnd).equals(body)).toBe(true);
    // The size lines were moved out as the chunks arrived: no more memory than the head, the body and one read.
    expect(into.written().length).toBe(res.bodyEnd);
  });

  it('passes over an interim response to the final one', async () => {
    const url = await rawServer((socket) => socket.end('HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello'));
    const into = memory();
    const res = await get(url, into);
    expect(res.status).toBe(200);
    expect(into.written().subarray(res.bodyStart, res.bodyEnd).toString()).toBe('hello');
  });

  it('reads a body of no stated length to the end of the connection', async () => {
    const body = randomBytes(200_000);
    const url = await rawServer((socket) => socket.end(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\n\r\n'), body])));
    const into = memory();
    const res = await get(url, into);
    expect(into.written().subarray(res.bodyStart, res.bodyEnd).equals(body)).toBe(true);
  });

  it('gives the memory\'s own refusal for a body larger than the memory may grow', async () => {
    const url = await rawServer((socket) => socket.end(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n'), Buffer.alloc(2_000_000)])));
    await expect(get(url, memory(1 << 20))).rejects.toThrow('too large for this memory');
    // Without a stated length, as the bytes overflow the memory.
    const unstated = await rawServer((socket) => socket.end(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\n\r\n'), Buffer.alloc(2_000_000)])));
    const into = memory(1 << 20);
    await expect(get(unstated, into)).rejects.toThrow('too large for this memory');
    expect(into.written().length).toBe(1 << 20);
  });

  it.each([
    ['headers of more than 64 KiB', `HTTP/1.1 200 OK\r\n${'X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n'.repeat(2000)}`, /response headers exceed 64 KiB/],
    ['no status line', 'SSH-2.0-OpenSSH_9.2\r\n\r\n', /does not start with an HTTP\/1.x status line/],
    ['a header line without a name', 'HTTP/1.1 200 OK\r\n: x\r\n\r\n', /header line has no name/],
    ['a Content-Length that is no number', 'HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n', /Content-Length "-5" is not a number/],
    ['an unknown transfer coding', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', /Transfer-Encoding gzip, chunked is not supported/],
    ['a chunk size that is no number', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', /chunk size line of the response reads "zz"/],
    ['a chunk longer than its size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n', /chunk of the response is not followed by CRLF/],
    ['a chunk size line without end', `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${'1'.repeat(5000)}`, /chunk size line of the response is longer than 4 KiB/],
  ])('refuses a response with %s, saying what is wrong', async (_what, wire, message) => {
    const url = await rawServer((socket) => socket.write(wire));
    await expect(get(url, memory())).rejects.toThrow(message);
  });

  it('says when the connection closes before the body is complete, with the status it had', async () => {
    const url = await rawServer((socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly this'));
    const err = await get(url, memory()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpGetError);
    expect(err).toMatchObject({ status: 200, message: 'the connection closed before the body was complete' });
  });

  it('gives up on a server that never answers within the time allowed', async () => {
    const url = await rawServer(() => undefined);
    const err = await get(url, memory(), 300).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'HttpGetError', status: undefined, code: 'ETIMEDOUT', message: 'no complete answer within 0.3 s' });
  });

  it('names the socket error when nothing listens', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as net.AddressInfo;
    await new Promise((r) => server.close(r));
    const err = await get(new URL(`http://127.0.0.1:${port}/`), memory()).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'HttpGetError', status: undefined, code: 'ECONNREFUSED' });
  });

  it('refuses a URL that is not HTTP', async () => {
    await expect(get(new URL('ftp://127.0.0.1/x'), memory())).rejects.toThrow('ftp: is not HTTP');
  });

  it('reads over TLS, checking the server\'s certificate', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'raddraft-tls-'));
    try {
      const cert = path.join(dir, 'pacs.crt');
      const key = path.join(dir, 'pacs.key');
      await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=pacs.test', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert]);
      const body = randomBytes(1_000_000);
      const server = https.createServer({ cert: await readFile(cert), key: await readFile(key) }, (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/dicom' });
        res.end(body);
      });
      servers.push({ close: () => server.close() });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const url = new URL(`https://127.0.0.1:${(server.address() as net.AddressInfo).port}/x`);
      const into = memory();
      const res = await httpGetInto(url, into, { headers: {}, timeoutMs: 5000, ca: await readFile(cert) });
      expect(into.written().subarray(res.bodyStart, res.bodyEnd).equals(body)).toBe(true);
      // Without the certificate's issuer among those trusted, nothing is read.
      await expect(httpGetInto(url, memory(), { headers: {}, timeoutMs: 5000 })).rejects.toMatchObject({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
