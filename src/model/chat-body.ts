import { randomBytes } from 'node:crypto';
import type { ChatMessage } from './profiles.js';

const IMAGE_HEAD = Buffer.from('{"type":"image_url","image_url":{"url":"data:image/png;base64,');
const IMAGE_TAIL = Buffer.from('"}}');

/**
 * The JSON body of a chat completions request, as bytes. Images are written as base64 straight into the body: given
 * to the OpenAI client as parameters, each image's megabyte of base64 would be made into a string, scanned again by
 * JSON.stringify and turned back into bytes by the socket, several times the work of the request itself.
 */
export function chatRequestBody(request: { messages: ChatMessage[] } & Record<string, unknown>): Buffer {
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
  // Laid out once, written once: the texts as UTF-8, each image as its base64 between the JSON around it.
  const encoded = pieces.map((piece, i) => (i % 2 === 0 ? piece : images[Number(piece)]!.toString('base64')));
  const size = encoded.reduce((n, text, i) => n + (i % 2 === 0 ? Buffer.byteLength(text) : IMAGE_HEAD.length + text.length + IMAGE_TAIL.length), 0);
  const body = Buffer.allocUnsafe(size);
  let at = 0;
  encoded.forEach((text, i) => {
    if (i % 2 === 0) at += body.write(text, at, 'utf8');
    else {
      at += IMAGE_HEAD.copy(body, at);
      at += body.write(text, at, 'latin1');
      at += IMAGE_TAIL.copy(body, at);
    }
  });
  return body;
}
