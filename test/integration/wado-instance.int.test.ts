import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DicomWebClient } from '../../src/dicom/dicomweb.js';
import { startOrthanc, type OrthancInstance } from '../../src/demo/orthanc.js';
import { fixtureUid } from '../../src/demo/phantom.js';
import { stowFiles } from '../../src/demo/stow.js';
import { StagingBuffers } from '../../src/dicom/staging.js';
import { PacsSource } from '../../src/dicom/study-source.js';
import { fixture } from '../harness/peers.js';

jest.setTimeout(60_000);

const study = fixture('chest-pa-lat');
const series = fixtureUid('chest-pa-lat/pa');
const sop = fixtureUid('chest-pa-lat/pa/pa');

describe('an instance read from the PACS straight into a staging buffer', () => {
  let orthanc: OrthancInstance;

  beforeAll(async () => {
    orthanc = await startOrthanc();
    await stowFiles(orthanc.dicomWebUrl, study.files);
  });
  afterAll(() => orthanc.stop());

  it('is, byte for byte, the instance the PACS holds, and the rendering thread is shown exactly it', async () => {
    const staging = new StagingBuffers(1, { maxPixels: 50_000_000 });
    const loan = await staging.acquire();
    try {
      const source = new PacsSource(new DicomWebClient({ url: orthanc.dicomWebUrl, auth: { kind: 'none' } }));
      const got = await source.readInstance(study.studyUid, series, sop, loan);
      const file = await readFile(study.files.find((f) => f.endsWith('pa-pa.dcm'))!);
      const { buffer, offset, length } = loan.shared();
      expect(got).toEqual({ streamed: file.length });
      expect(offset).toBeGreaterThan(0); // past the HTTP head and the part's headers
      expect(Buffer.from(buffer, offset, length).equals(file)).toBe(true);
    } finally {
      loan.release();
    }
  });

  it('from a PACS that is not there, is a fault to wait out, naming the PACS', async () => {
    const staging = new StagingBuffers(1, { maxPixels: 50_000_000 });
    const client = new DicomWebClient({ url: 'http://127.0.0.1:9/dicom-web', auth: { kind: 'none' } });
    const err = await client.readInstanceInto(study.studyUid, series, sop, (await staging.acquire()).bytes('x')).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'DicomWebError', message: `WADO-RS instance ${sop}: cannot reach the PACS at http://127.0.0.1:9/dicom-web (ECONNREFUSED)`, fault: 'wait' });
  });
});

describe('a PACS answering an instance request wrongly', () => {
  let answer: (res: http.ServerResponse) => void = () => undefined;
  let server: http.Server;
  let client: DicomWebClient;
  const part = (type: string, data: string) => `--b1\r\nContent-Type: ${type}\r\n\r\n${data}\r\n`;

  beforeAll(async () => {
    server = http.createServer((_req, res) => answer(res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    client = new DicomWebClient({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/dicom-web`, auth: { kind: 'none' }, timeoutMs: 2000 });
  });
  afterAll(() => new Promise((r) => server.close(r)));

  const read = async () => {
    const staging = new StagingBuffers(1, { maxPixels: 1000 });
    return client.readInstanceInto('1.2', '1.2.3', '1.2.3.4', (await staging.acquire()).bytes('instance 1.2.3.4')).catch((e: unknown) => e);
  };
  const multipart = (body: string) => (res: http.ServerResponse) => {
    res.writeHead(200, { 'content-type': 'multipart/related; type="application/dicom"; boundary=b1' });
    res.end(body);
  };

  it.each([
    ['HTTP 401', (res: http.ServerResponse) => res.writeHead(401).end(), 'the PACS answered HTTP 401; check RADDRAFT_DICOMWEB_AUTH', 'permanent'],
    ['HTTP 503', (res: http.ServerResponse) => res.writeHead(503).end(), 'the PACS answered HTTP 503', 'retry'],
    ['no multipart', (res: http.ServerResponse) => res.writeHead(200, { 'content-type': 'application/json' }).end('[]'), 'the PACS answered application/json, expected multipart/related with a boundary', 'permanent'],
    ['no part', multipart('--b1--\r\n'), 'the PACS returned no instance', 'retry'],
    ['two instances', multipart(`${part('application/dicom', 'one')}${part('application/dicom', 'two')}--b1--`), 'the PACS returned more than one instance', 'permanent'],
    ['another type of part', multipart(`${part('text/html', 'oops')}--b1--`), 'a part has Content-Type text/html, expected application/dicom', 'permanent'],
    ['a body cut short', multipart('--b1\r\nContent-Type: application/dicom\r\n\r\nDICM...'), 'the response is not a well-formed multipart body (multipart body ended before its closing boundary (after 0 part(s)))', 'retry'],
    ['an instance larger than raddraft reads', (res: http.ServerResponse) => {
      res.writeHead(200, { 'content-type': 'multipart/related; type="application/dicom"; boundary=b1' });
      res.end(Buffer.alloc(40 << 20));
    }, 'the instance has more than the 33558432 bytes raddraft reads for one image', undefined],
  ])('%s: says so, naming the instance', async (_what, respond, message, fault) => {
    answer = respond;
    const err = (await read()) as Error & { fault?: string };
    expect(err.message).toContain(message);
    expect(err.message).toContain('1.2.3.4');
    if (fault) expect(err.fault).toBe(fault);
    else expect(err.name).toBe('RenderError');
  });

  it('an instance arriving at an odd offset is moved to an even one, for its 16-bit pixels to be read in place', async () => {
    const instance = Buffer.from('DICM and the rest of an instance');
    // A part header one byte longer moves the instance by one byte.
    for (const pad of ['', ' ']) {
      answer = multipart(`${part(`application/dicom${pad}`, instance.toString('latin1'))}--b1--`);
      const staging = new StagingBuffers(1, { maxPixels: 1000 });
      const loan = await staging.acquire();
      const source = new PacsSource(client);
      expect(await source.readInstance('1.2', '1.2.3', '1.2.3.4', loan)).toEqual({ streamed: instance.length });
      const { buffer, offset, length } = loan.shared();
      expect(offset % 2).toBe(0);
      expect(Buffer.from(buffer, offset, length).equals(instance)).toBe(true);
    }
  });

  it('a response that stops half-way is given up at the timeout, as a fault to retry', async () => {
    answer = (res) => {
      res.writeHead(200, { 'content-type': 'multipart/related; type="application/dicom"; boundary=b1', 'content-length': '100000' });
      res.write('--b1\r\n');
    };
    const err = (await read()) as Error & { fault?: string };
    expect(err.message).toBe('WADO-RS instance 1.2.3.4: the response broke off (no complete answer within 2 s)');
    expect(err.fault).toBe('retry');
  });
});
