/**
 * An HTTP/1.1 GET whose response is read by the kernel straight into memory the caller provides (a socket's
 * `onread` buffer), for bodies of tens of megabytes that are read once, whole. A general client (undici) allocates a
 * fresh buffer for every 64 KiB read, copies each into its parser's WebAssembly memory and hands the caller a view
 * to copy again; here the body's bytes are written once, where they will be read from. Chunked bodies are
 * de-chunked in place. One connection per request (`Connection: close`): its setup is nothing beside the body.
 */
import net from 'node:net';
import tls from 'node:tls';

/** Memory a response is read into: `space` gives a writable view just past what has been written. */
export interface GrowableBytes {
  /** A view of at least `min` free bytes after the written ones, or fewer (possibly none) at the ceiling. */
  space(min: number): Uint8Array;
  /** `n` more bytes of the last view given by `space` hold data. */
  advance(n: number): void;
  /** Drops what was written from `length` on: data moved down by de-chunking. */
  truncate(length: number): void;
  /** Everything written so far. */
  written(): Buffer;
  /** The error for a response that outgrows this memory. */
  refusal(): Error;
}

export interface HttpGetResult {
  status: number;
  /** Header names in lower case; a repeated header keeps its first value. */
  headers: Record<string, string>;
  /** The body: `written().subarray(bodyStart, bodyEnd)`, de-chunked. */
  bodyStart: number;
  bodyEnd: number;
}

export interface HttpGetOptions {
  headers: Record<string, string>;
  /** The whole exchange, from connecting to the body's last byte. */
  timeoutMs: number;
  /** Trust anchors for https in place of the system's; tests use it for a certificate of their own. */
  ca?: string | Buffer;
}

/** Why a GET got no complete answer: `status` is set once the response head has arrived. */
export class HttpGetError extends Error {
  constructor(message: string, readonly status: number | undefined, readonly code?: string) {
    super(message);
    this.name = 'HttpGetError';
  }
}

const MAX_HEAD_BYTES = 64 * 1024;
const READ_SIZE = 256 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');
const CRLF = Buffer.from('\r\n');

type Framing = { kind: 'length'; length: number } | { kind: 'chunked' } | { kind: 'close' };

export function httpGetInto(url: URL, target: GrowableBytes, options: HttpGetOptions): Promise<HttpGetResult> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return Promise.reject(new HttpGetError(`${url.protocol} is not HTTP`, undefined));
  return new Promise<HttpGetResult>((resolve, reject) => {
    let settled = false;
    let head: { status: number; headers: Record<string, string>; bodyStart: number; framing: Framing } | undefined;
    const dechunk = new Dechunker();
    // A read that found no room left: the body is larger than the target may grow.
    const overflow = Buffer.allocUnsafe(4096);
    let lastView: Uint8Array | undefined;

    const finish = (err: Error | undefined, result?: HttpGetResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      socket.destroy();
      if (err) reject(err);
      else resolve(result!);
    };
    const fail = (message: string, code?: string) => finish(new HttpGetError(message, head?.status, code));

    const complete = (bodyEnd: number) => finish(undefined, { status: head!.status, headers: head!.headers, bodyStart: head!.bodyStart, bodyEnd });

    /** Looks at what has arrived: the head once it is whole, then the body, until it is complete. */
    const examine = (): void => {
      let bytes = target.written();
      while (!head) {
        const end = bytes.subarray(0, Math.min(bytes.length, MAX_HEAD_BYTES + HEAD_END.length)).indexOf(HEAD_END);
        if (end < 0) {
          if (bytes.length > MAX_HEAD_BYTES) fail(`the response headers exceed ${MAX_HEAD_BYTES / 1024} KiB`);
          return;
        }
        const parsed = parseHead(bytes.subarray(0, end).toString('latin1'));
        if (typeof parsed === 'string') return fail(parsed);
        const bodyStart = end + HEAD_END.length;
        if (parsed.status < 200) {
          // An interim response (103 Early Hints, say) is dropped: the final one follows it.
          bytes.copyWithin(0, bodyStart);
          target.truncate(bytes.length - bodyStart);
          bytes = target.written();
          continue;
        }
        head = { ...parsed, bodyStart };
        dechunk.start(bodyStart);
        if (head.framing.kind === 'length') {
          // Room for the whole body at once: one allocation, and a body beyond the memory's ceiling refused unread.
          const missing = bodyStart + head.framing.length - bytes.length;
          if (missing > 0 && target.space(missing).length < missing) return finish(target.refusal());
          bytes = target.written();
        }
      }
      const { framing, bodyStart } = head;
      if (framing.kind === 'length' && bytes.length - bodyStart >= framing.length) complete(bodyStart + framing.length);
      else if (framing.kind === 'chunked') {
        const outcome = dechunk.step(bytes);
        if (typeof outcome === 'object') return fail(outcome.error);
        target.truncate(dechunk.kept);
        if (outcome === 'done') complete(dechunk.decoded);
      }
    };

    const onread = {
      buffer: () => {
        const room = target.space(READ_SIZE);
        lastView = room.length > 0 ? room : overflow;
        return lastView;
      },
      callback: (n: number) => {
        if (settled) return false;
        if (lastView === overflow) {
          finish(target.refusal());
          return false;
        }
        target.advance(n);
        examine();
        return !settled;
      },
    };
    const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const socket = url.protocol === 'https:'
      ? tls.connect({ host, port, servername: net.isIP(host) ? '' : host, onread, ...(options.ca ? { ca: options.ca } : {}) } as tls.ConnectionOptions)
      : net.connect({ host, port, onread } as net.NetConnectOpts);
    const deadline = setTimeout(() => fail(`no complete answer within ${options.timeoutMs / 1000} s`, 'ETIMEDOUT'), options.timeoutMs);
    socket.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
      const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`, 'Connection: close'];
      for (const [name, value] of Object.entries(options.headers)) lines.push(`${name}: ${value}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => fail(err.message, err.code));
    const ended = () => {
      if (settled) return;
      if (head?.framing.kind === 'close') return complete(target.written().length);
      fail(head ? 'the connection closed before the body was complete' : 'the connection closed before a response', 'ECONNRESET');
    };
    socket.on('end', ended);
    socket.on('close', ended);
  });
}

/** Status and headers of a response head, or why it is unusable. */
function parseHead(text: string): { status: number; headers: Record<string, string>; framing: Framing } | string {
  const [statusLine = '', ...lines] = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine);
  if (!m) return `the response does not start with an HTTP/1.x status line`;
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    if (i <= 0) return 'a response header line has no name';
    const name = line.slice(0, i).trim().toLowerCase();
    headers[name] ??= line.slice(i + 1).trim();
  }
  const status = Number(m[1]);
  const coding = headers['transfer-encoding']?.toLowerCase();
  if (coding !== undefined && coding !== 'identity') {
    if (coding !== 'chunked') return `the response's Transfer-Encoding ${coding} is not supported`;
    return { status, headers, framing: { kind: 'chunked' } };
  }
  const length = headers['content-length'];
  if (length !== undefined) {
    if (!/^\d{1,15}$/.test(length)) return `the response's Content-Length ${JSON.stringify(length.slice(0, 40))} is not a number`;
    return { status, headers, framing: { kind: 'length', length: Number(length) } };
  }
  return { status, headers, framing: { kind: 'close' } };
}

/**
 * Decodes a chunked body where it lies: each chunk's data is moved down over the size lines before it, so the
 * decoded body is contiguous from the body's start and what remains of the read follows it. `kept` is where the
 * written bytes end after a step.
 */
class Dechunker {
  decoded = 0;
  kept = 0;
  private at = 0;
  private left = 0;
  private state: 'size' | 'data' | 'data-end' | 'trailer' = 'size';

  start(bodyStart: number): void {
    this.decoded = bodyStart;
    this.at = bodyStart;
  }

  step(bytes: Buffer): 'more' | 'done' | { error: string } {
    for (;;) {
      if (this.state === 'data') {
        const take = Math.min(this.left, bytes.length - this.at);
        if (take > 0 && this.decoded !== this.at) bytes.copyWithin(this.decoded, this.at, this.at + take);
        this.decoded += take;
        this.at += take;
        this.left -= take;
        if (this.left > 0) break;
        this.state = 'data-end';
      }
      const eol = bytes.indexOf(CRLF, this.at);
      if (eol < 0) {
        if (bytes.length - this.at > 4096) return { error: 'a chunk size line of the response is longer than 4 KiB' };
        break;
      }
      const line = bytes.subarray(this.at, eol).toString('latin1');
      this.at = eol + CRLF.length;
      if (this.state === 'data-end') {
        if (line !== '') return { error: 'a chunk of the response is not followed by CRLF' };
        this.state = 'size';
      } else if (this.state === 'size') {
        const m = /^([0-9a-fA-F]{1,12})(?:[ \t]*;.*)?$/.exec(line);
        if (!m) return { error: `a chunk size line of the response reads ${JSON.stringify(line.slice(0, 40))}` };
        this.left = parseInt(m[1]!, 16);
        this.state = this.left === 0 ? 'trailer' : 'data';
      } else if (line === '') {
        this.kept = this.decoded;
        return 'done';
      }
    }
    // What is not yet decoded moves down behind the decoded body, so the memory used stays the body's size.
    if (this.at > this.decoded) {
      bytes.copyWithin(this.decoded, this.at);
      this.kept = this.decoded + (bytes.length - this.at);
      this.at = this.decoded;
    } else this.kept = bytes.length;
    return 'more';
  }
}
