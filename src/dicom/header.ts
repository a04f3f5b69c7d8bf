import { open } from 'node:fs/promises';
import dcmjs from 'dcmjs';
import { checkHeaderBytes, DEFLATED, inflateDeflatedHead, PixelDataError, readFileMeta } from './pixel-data.js';
import type { DicomJson } from './tags.js';

dcmjs.log.setLevel('error');

export class HeaderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HeaderError';
  }
}

const PIXEL_DATA = '7FE00010';

/**
 * The bytes dcmjs should parse: for a deflated file, only the start of its data set inflated, natively and bounded,
 * because dcmjs would inflate all of it, pixels included, in JavaScript on the calling thread; for any other, the
 * file as read once its elements before Pixel Data are known to fit the allowance.
 */
function parseable(buf: Buffer, label: string): { bytes: Buffer; deflated: boolean } {
  const meta = readFileMeta(buf);
  try {
    if (meta.transferSyntaxUid === DEFLATED) return { bytes: inflateDeflatedHead(buf, meta), deflated: true };
    // dcmjs builds every element before Pixel Data on the heap of the thread that serves HTTP: bound them first.
    checkHeaderBytes(buf, meta, meta.transferSyntaxUid);
    return { bytes: buf, deflated: false };
  } catch (err) {
    if (err instanceof PixelDataError) throw new HeaderError(`${label}: ${err.message}`);
    throw err;
  }
}

/**
 * Reads the attributes of a DICOM Part 10 file up to its pixel data, in the DICOM JSON model, without reading the
 * pixels: it reads the first 256 KiB and reads more only if the header is longer.
 */
export async function readHeader(file: string, label = file): Promise<{ dataset: DicomJson; transferSyntaxUid: string | undefined }> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    if (size < 132) throw new HeaderError(`${label}: not a DICOM Part 10 file (only ${size} bytes)`);
    for (let length = Math.min(size, 256 * 1024); ; length = Math.min(size, length * 4)) {
      const buf = Buffer.alloc(length);
      await handle.read(buf, 0, length, 0);
      if (buf.toString('latin1', 128, 132) !== 'DICM') throw new HeaderError(`${label}: not a DICOM Part 10 file (no DICM preamble)`);
      const { bytes, deflated } = parseable(buf, label);
      try {
        const dict = dcmjs.data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer, { untilTag: PIXEL_DATA, includeUntilTagValue: false, ignoreErrors: false });
        const ts = deflated ? DEFLATED : (dict.meta['00020010']?.Value?.[0] as string | undefined)?.trim();
        return { dataset: dict.dict, transferSyntaxUid: ts };
      } catch (err) {
        const charset = /Unsupported character set: (\S+)/i.exec((err as Error).message);
        if (charset) {
          // Text in an unknown encoding cannot be trusted for linking to a patient: refuse rather than guess.
          throw new HeaderError(`${label}: Specific Character Set ${charset[1]!.toUpperCase().replace(/^ISO-IR-/, 'ISO_IR ')} is not one raddraft can read, so its text (patient ID, accession number) cannot be trusted`);
        }
        if (length >= size) throw new HeaderError(`${label}: the DICOM file cannot be parsed (${(err as Error).message})`);
      }
    }
  } finally {
    await handle.close();
  }
}
