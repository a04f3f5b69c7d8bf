import { createReadStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

/**
 * Sends DICOM files to a DICOMweb server with one STOW-RS request, streaming them from disk as a multipart/related
 * body. Returns the HTTP status; a failure throws with the server's answer.
 */
export async function stowFiles(dicomWebUrl: string, files: string[], headers: Record<string, string> = {}): Promise<number> {
  const boundary = `raddraft-${randomBytes(12).toString('hex')}`;
  async function* body(): AsyncGenerator<Buffer> {
    for (const file of files) {
      yield Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`);
      for await (const chunk of createReadStream(file)) yield chunk as Buffer;
      yield Buffer.from('\r\n');
    }
    yield Buffer.from(`--${boundary}--\r\n`);
  }
  // `duplex` is required for a streamed request body in Node's fetch.
  const init: RequestInit & { duplex: 'half' } = {
    method: 'POST',
    headers: { 'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`, accept: 'application/dicom+json', ...headers },
    body: Readable.toWeb(Readable.from(body())),
    duplex: 'half',
  };
  const res = await fetch(`${dicomWebUrl}/studies`, init);
  if (!res.ok) throw new Error(`STOW-RS to ${dicomWebUrl} answered HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`);
  await res.body?.cancel();
  return res.status;
}
