import { describe, expect, it } from '@jest/globals';
import { boundaryOf, firstPart, MultipartError, splitMultipart, type PartSink } from '../src/dicom/multipart.js';

function body(parts: { headers: string; data: Buffer }[], boundary: string, preamble = ''): Buffer {
  const chunks: Buffer[] = [Buffer.from(preamble)];
  for (const p of parts) chunks.push(Buffer.from(`--${boundary}\r\n${p.headers}\r\n\r\n`), p.data, Buffer.from('\r\n'));
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

function inChunks(buf: Buffer, size: number): AsyncIterable<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < buf.length; i += size) chunks.push(buf.subarray(i, i + size));
  return (async function* () {
    for (const c of chunks) yield await Promise.resolve(c);
  })();
}

async function collect(stream: AsyncIterable<Uint8Array>, boundary: string) {
  const parts: { headers: Record<string, string>; data: Buffer }[] = [];
  const count = await splitMultipart(stream, boundary, async (headers) => {
    const chunks: Buffer[] = [];
    const sink: PartSink = {
      write: (c) => {
        chunks.push(Buffer.from(c));
        return Promise.resolve();
      },
      end: () => {
        parts.push({ headers, data: Buffer.concat(chunks) });
        return Promise.resolve();
      },
    };
    return Promise.resolve(sink);
  });
  return { count, parts };
}

describe('splitMultipart', () => {
  const boundary = 'a1b2c3';
  // Payloads with CRLF, dashes and a prefix of the boundary, as binary DICOM can hold (a sender never puts the whole
  // CRLF--boundary inside a part: RFC 2046 5.1.1).
  const one = Buffer.concat([Buffer.from('DICM\r\n--a1b2c\r\n'), Buffer.alloc(5000, 7)]);
  const two = Buffer.from('--a1b2c3 at the start\r\n-- and -a1b2c3 later\r\n');
  const message = body(
    [
      { headers: 'Content-Type: application/dicom', data: one },
      { headers: 'Content-Type: application/dicom\r\nContent-Location: /x', data: two },
    ],
    boundary,
    'preamble to ignore\r\n',
  );

  it.each([1, 3, 17, 4096, message.length])('yields each part intact when the body arrives in %i-byte chunks', async (size) => {
    const { count, parts } = await collect(inChunks(message, size), boundary);
    expect(count).toBe(2);
    expect(parts[0]!.data.equals(one)).toBe(true);
    expect(parts[1]!.data.equals(two)).toBe(true);
    expect(parts[1]!.headers).toEqual({ 'content-type': 'application/dicom', 'content-location': '/x' });
  });

  it('does not mistake a boundary-like string without CRLF-dash-dash for the end of a part', async () => {
    const payload = Buffer.from('x--a1b2c3y\r\n-a1b2c3');
    const { parts } = await collect(inChunks(body([{ headers: 'Content-Type: application/dicom', data: payload }], boundary), 2), boundary);
    expect(parts[0]!.data.toString()).toBe(payload.toString());
  });

  it('fails when the body ends before the closing boundary', async () => {
    const truncated = message.subarray(0, message.length - `--${boundary}--\r\n`.length);
    await expect(collect(inChunks(truncated, 64), boundary)).rejects.toThrow(
      new MultipartError('multipart body ended before its closing boundary (after 2 part(s))'),
    );
  });

  it('reads the boundary parameter, quoted or not', () => {
    expect(boundaryOf('multipart/related; type="application/dicom"; boundary="abc def"')).toBe('abc def');
    expect(boundaryOf('multipart/related;boundary=xyz;type=application/dicom')).toBe('xyz');
    expect(boundaryOf('application/dicom')).toBeUndefined();
  });
});

describe('firstPart', () => {
  const boundary = 'a1b2c3';
  const data = Buffer.concat([Buffer.from('DICM\r\n--a1b2c\r\n'), Buffer.alloc(5000, 7)]);
  const at = (whole: Buffer, part: ReturnType<typeof firstPart>) => whole.subarray(part!.start, part!.end);

  it('finds the part by searching for the delimiter, or by its own Content-Length, checked against the delimiter', () => {
    for (const headers of ['Content-Type: application/dicom', `Content-Type: application/dicom\r\nContent-Length: ${data.length}`]) {
      const whole = body([{ headers, data }], boundary, 'preamble\r\n');
      const part = firstPart(whole, boundary);
      expect(at(whole, part).equals(data)).toBe(true);
      expect(part).toMatchObject({ headers: { 'content-type': 'application/dicom' }, more: false });
    }
  });

  it('does not trust a Content-Length that the delimiter does not follow', () => {
    const whole = body([{ headers: 'Content-Type: application/dicom\r\nContent-Length: 100', data }], boundary);
    expect(at(whole, firstPart(whole, boundary)).equals(data)).toBe(true);
  });

  it('says when more parts follow, and when there is none', () => {
    expect(firstPart(body([{ headers: 'A: 1', data }, { headers: 'A: 2', data }], boundary), boundary)?.more).toBe(true);
    expect(firstPart(body([], boundary), boundary)).toBeUndefined();
  });

  it.each([
    ['no delimiter', Buffer.from('nothing here'), 'multipart body has no boundary delimiter'],
    ['no closing delimiter', Buffer.from('--a1b2c3\r\nA: 1\r\n\r\npart without end'), 'multipart body ended before its closing boundary (after 0 part(s))'],
    ['headers that do not end', Buffer.from('--a1b2c3\r\nA: 1\r\n'), 'multipart body ended in the headers of a part'],
    ['headers of more than 16 KiB', Buffer.from(`--a1b2c3\r\n${'A: 1\r\n'.repeat(3000)}`), 'part headers exceed 16 KiB'],
    ['a boundary line without CRLF', Buffer.from(`--a1b2c3${' '.repeat(2000)}`), 'boundary line is not terminated by CRLF'],
  ])('refuses a body with %s', (_what, whole, message) => {
    expect(() => firstPart(whole, boundary)).toThrow(new MultipartError(message));
  });
});
