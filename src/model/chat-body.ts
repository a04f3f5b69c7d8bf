import { randomBytes } from 'node:crypto';
import type { ChatMessage } from './profiles.js';

const IMAGE_HEAD = Buffer.from('{"type":"image_url","image_url":{"url":"data:image/png;base64,');
const IMAGE_TAIL = Buffer.from('"}}');

/**
 * The JSON body of a chat completions request, as bytes. Images are encoded as base64 straight into the body: given
 * to the OpenAI client as parameters, each image's base64 would be made into a string, scanned again by
 * JSON.stringify and turned back into bytes by the socket, several times the work of the request itself.
 */
export function chatRequestBody(request: { messages: ChatMessage[] } & Record<string, unknown>, memory: (size: number) => Buffer = (size) => Buffer.allocUnsafe(size)): Buffer {
  const images: Buffer[] = [];
  // A marker no text can hold by chance: NUL characters around a fresh nonce, escaped by JSON as \u0000.
  const nonce = randomBytes(8).toString('hex');
  const json = JSON.stringify(request, (_key, value: unknown) => {
    const part = value as { type?: unknown; png?: unknown } | null;
    if (part && typeof part === 'object' && part.type === 'image_url' && Buffer.isBuffer(part.png)) {
      images.push(part.png);
      return `\u0000${nonce}:${images.length - 1}\u0000`;
    }
    return value;
  });
  const pieces = json.split(new RegExp(`"\\\\u0000${nonce}:(\\d+)\\\\u0000"`));
  // Laid out once, written once: the texts as UTF-8, each image's base64 between the JSON around it.
  const size = pieces.reduce((n, piece, i) => n + (i % 2 === 0 ? Buffer.byteLength(piece) : IMAGE_HEAD.length + base64Length(images[Number(piece)]!) + IMAGE_TAIL.length), 0);
  const body = memory(size);
  let at = 0;
  pieces.forEach((piece, i) => {
    if (i % 2 === 0) at += body.write(piece, at, 'utf8');
    else {
      at += IMAGE_HEAD.copy(body, at);
      at = base64Into(images[Number(piece)]!, body, at);
      at += IMAGE_TAIL.copy(body, at);
    }
  });
  return body;
}

const ALPHABET = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');

function base64Length(bytes: Uint8Array): number {
  return Math.ceil(bytes.length / 3) * 4;
}

/**
 * Writes `src` as padded base64 (RFC 4648) into `dst` from `at`; returns where it ends. Node's own encoder makes a
 * string: for a picture of half a megabyte that string's fresh memory costs more than encoding in place.
 */
export function base64Into(src: Uint8Array, dst: Uint8Array, at: number): number {
  const whole = src.length - (src.length % 3);
  let o = at;
  for (let i = 0; i < whole; i += 3) {
    const v = (src[i]! << 16) | (src[i + 1]! << 8) | src[i + 2]!;
    dst[o] = ALPHABET[v >>> 18]!;
    dst[o + 1] = ALPHABET[(v >>> 12) & 63]!;
    dst[o + 2] = ALPHABET[(v >>> 6) & 63]!;
    dst[o + 3] = ALPHABET[v & 63]!;
    o += 4;
  }
  const rest = src.length - whole;
  if (rest > 0) {
    const v = (src[whole]! << 16) | (rest === 2 ? src[whole + 1]! << 8 : 0);
    dst[o] = ALPHABET[v >>> 18]!;
    dst[o + 1] = ALPHABET[(v >>> 12) & 63]!;
    dst[o + 2] = rest === 2 ? ALPHABET[(v >>> 6) & 63]! : 61; // '='
    dst[o + 3] = 61;
    o += 4;
  }
  return o;
}

/**
 * Request bodies kept for the next request. A body of a megabyte or two per draft, made and dropped, is external
 * memory that V8 counts towards its next full collection of the main thread's heap; reused, it is not. A body is
 * given back only once the server has answered it in full (so nothing of it is still being sent). At most `keep`
 * idle ones are kept, the largest.
 */
export class BodyBuffers {
  private readonly idle: ArrayBuffer[] = [];

  constructor(private readonly keep = 4) {}

  /** `size` bytes, in an idle buffer large enough or a new one with room for the next body being a little larger. */
  take(size: number): Buffer {
    const fits = this.idle.findIndex((b) => b.byteLength >= size);
    const memory = fits >= 0 ? this.idle.splice(fits, 1)[0]! : new ArrayBuffer(Math.ceil(size * 1.25));
    return Buffer.from(memory, 0, size);
  }

  /** A body `take` gave, for reuse. */
  give(body: Buffer): void {
    const memory = body.buffer;
    if (!(memory instanceof ArrayBuffer)) return;
    this.idle.push(memory);
    this.idle.sort((a, b) => a.byteLength - b.byteLength);
    if (this.idle.length > this.keep) this.idle.shift();
  }
}
