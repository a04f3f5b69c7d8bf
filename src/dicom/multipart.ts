/**
 * Streaming reader for multipart/related bodies (RFC 2046), as WADO-RS returns them. Parts are handed to sinks as
 * they arrive, so an instance of any size passes through with only a boundary's worth of bytes held back.
 */
export interface PartSink {
  write(chunk: Buffer): Promise<void>;
  end(): Promise<void>;
}

export type PartOpener = (headers: Record<string, string>, index: number) => Promise<PartSink>;

export class MultipartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MultipartError';
  }
}

/** The boundary parameter of a multipart Content-Type, or undefined when there is none. */
export function boundaryOf(contentType: string | null | undefined): string | undefined {
  if (!contentType || !/^\s*multipart\//i.test(contentType)) return undefined;
  const m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m?.[1] ?? m?.[2];
}

function parseHeaders(block: Buffer): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of block.toString('latin1').split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return headers;
}

/**
 * Where the bytes at the end of `b` that could be the start of `needle` begin (b.length when none could): only
 * those need holding back until more arrives. Binary data rarely ends in a CR, so a chunk is usually passed on
 * whole, without being copied.
 */
function heldBackFrom(b: Buffer, needle: Buffer): number {
  for (let k = Math.min(needle.length - 1, b.length); k > 0; k--) {
    const at = b.length - k;
    if (b[at] === needle[0] && b.subarray(at).equals(needle.subarray(0, k))) return at;
  }
  return b.length;
}

/** A chunk as a Buffer sharing its memory. */
function asBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');
const MAX_HEADER_BYTES = 16 * 1024;

export async function splitMultipart(
  body: AsyncIterable<Uint8Array>,
  boundary: string,
  openPart: PartOpener,
): Promise<number> {
  const delimiter = Buffer.from(`--${boundary}`);
  const bodyEnd = Buffer.from(`\r\n--${boundary}`);
  type State = 'preamble' | 'delimiter' | 'headers' | 'body' | 'done';
  let state = 'preamble' as State;
  let buf: Buffer = Buffer.alloc(0);
  let sink: PartSink | undefined;
  let parts = 0;

  const step = async (): Promise<boolean> => {
    switch (state) {
      case 'preamble': {
        const i = buf.indexOf(delimiter);
        if (i < 0) {
          buf = buf.subarray(Math.max(0, buf.length - delimiter.length));
          return false;
        }
        buf = buf.subarray(i);
        state = 'delimiter';
        return true;
      }
      case 'delimiter': {
        if (buf.length < delimiter.length + 2) return false;
        const after = buf.subarray(delimiter.length, delimiter.length + 2).toString('latin1');
        if (after === '--') {
          state = 'done';
          return false;
        }
        const lineEnd = buf.indexOf(CRLF, delimiter.length);
        if (lineEnd < 0) {
          if (buf.length > delimiter.length + 1024) throw new MultipartError('boundary line is not terminated by CRLF');
          return false;
        }
        buf = buf.subarray(lineEnd);
        state = 'headers';
        return true;
      }
      case 'headers': {
        const i = buf.indexOf(HEADER_END);
        if (i < 0) {
          if (buf.length > MAX_HEADER_BYTES) throw new MultipartError('part headers exceed 16 KiB');
          return false;
        }
        const headers = parseHeaders(buf.subarray(CRLF.length, Math.max(CRLF.length, i)));
        sink = await openPart(headers, parts);
        parts += 1;
        buf = buf.subarray(i + HEADER_END.length);
        state = 'body';
        return true;
      }
      case 'body': {
        const i = buf.indexOf(bodyEnd);
        if (i >= 0) {
          if (i > 0) await sink!.write(buf.subarray(0, i));
          await sink!.end();
          sink = undefined;
          buf = buf.subarray(i + CRLF.length);
          state = 'delimiter';
          return true;
        }
        const held = heldBackFrom(buf, bodyEnd);
        if (held > 0) {
          await sink!.write(buf.subarray(0, held));
          buf = buf.subarray(held);
        }
        return false;
      }
      case 'done':
        return false;
    }
  };

  for await (const chunk of body) {
    // Chunks are not reused by their producer (undici, Node streams), so the parts can be views of them.
    buf = buf.length === 0 ? asBuffer(chunk) : Buffer.concat([buf, chunk]);
    while (await step());
    if (state === 'done') break;
  }
  if (state !== 'done') {
    if (sink) await sink.end().catch(() => undefined);
    throw new MultipartError(`multipart body ended before its closing boundary (after ${parts} part(s))`);
  }
  return parts;
}

/** The first part of a whole multipart body: its headers, where its content lies, and whether other parts follow. */
export interface FirstPart {
  headers: Record<string, string>;
  start: number;
  end: number;
  more: boolean;
}

/**
 * Finds the first part of a multipart body held whole in memory; undefined when the body has no part. A part's own
 * Content-Length (Orthanc and dcm4chee give one) is checked against the delimiter it must be followed by, which
 * spares searching tens of megabytes for the boundary.
 */
export function firstPart(body: Buffer, boundary: string): FirstPart | undefined {
  const delimiter = Buffer.from(`--${boundary}`);
  const bodyEnd = Buffer.from(`\r\n--${boundary}`);
  const at = body.indexOf(delimiter);
  if (at < 0) throw new MultipartError('multipart body has no boundary delimiter');
  const afterDelimiter = at + delimiter.length;
  if (body.subarray(afterDelimiter, afterDelimiter + 2).toString('latin1') === '--') return undefined;
  const lineEnd = body.indexOf(CRLF, afterDelimiter);
  if (lineEnd < 0 || lineEnd > afterDelimiter + 1024) throw new MultipartError('boundary line is not terminated by CRLF');
  const headerEnd = body.subarray(0, lineEnd + MAX_HEADER_BYTES + HEADER_END.length).indexOf(HEADER_END, lineEnd);
  if (headerEnd < 0) throw new MultipartError(body.length - lineEnd > MAX_HEADER_BYTES ? 'part headers exceed 16 KiB' : 'multipart body ended in the headers of a part');
  const headers = parseHeaders(body.subarray(lineEnd + CRLF.length, Math.max(lineEnd + CRLF.length, headerEnd)));
  const start = headerEnd + HEADER_END.length;
  const declared = /^\d{1,15}$/.test(headers['content-length'] ?? '') ? start + Number(headers['content-length']) : -1;
  const end = declared >= start && body.subarray(declared, declared + bodyEnd.length).equals(bodyEnd) ? declared : body.indexOf(bodyEnd, start);
  if (end < 0) throw new MultipartError('multipart body ended before its closing boundary (after 0 part(s))');
  const next = end + bodyEnd.length;
  return { headers, start, end, more: body.subarray(next, next + 2).toString('latin1') !== '--' };
}
