import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import dcmjs from 'dcmjs';
import sharp from 'sharp';
import { renderGrey, type GreyFrame, type WindowUsed } from './greyscale.js';
import { modelImageSize, QWEN_BUDGET } from './resize.js';

dcmjs.log.setLevel('error');

/** Transfer syntaxes whose pixel data raddraft decodes itself. */
export const NATIVE_TRANSFER_SYNTAXES: Record<string, string> = {
  '1.2.840.10008.1.2': 'Implicit VR Little Endian',
  '1.2.840.10008.1.2.1': 'Explicit VR Little Endian',
};

const KNOWN_TRANSFER_SYNTAXES: Record<string, string> = {
  '1.2.840.10008.1.2.1.99': 'Deflated Explicit VR Little Endian',
  '1.2.840.10008.1.2.2': 'Explicit VR Big Endian',
  '1.2.840.10008.1.2.4.50': 'JPEG Baseline',
  '1.2.840.10008.1.2.4.51': 'JPEG Extended',
  '1.2.840.10008.1.2.4.57': 'JPEG Lossless',
  '1.2.840.10008.1.2.4.70': 'JPEG Lossless SV1',
  '1.2.840.10008.1.2.4.80': 'JPEG-LS Lossless',
  '1.2.840.10008.1.2.4.81': 'JPEG-LS Near-Lossless',
  '1.2.840.10008.1.2.4.90': 'JPEG 2000 Lossless',
  '1.2.840.10008.1.2.4.91': 'JPEG 2000',
  '1.2.840.10008.1.2.4.201': 'HTJ2K Lossless',
  '1.2.840.10008.1.2.4.203': 'HTJ2K',
  '1.2.840.10008.1.2.5': 'RLE Lossless',
};

/** An instance that cannot be rendered; the message names the SOP Instance UID, transfer syntax and fault. */
export class RenderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RenderError';
  }
}

export interface RenderedImage {
  png: Buffer;
  width: number;
  height: number;
  sourceWidth: number;
  sourceHeight: number;
  sha256: string;
  window: WindowUsed;
  photometric: 'MONOCHROME1' | 'MONOCHROME2';
  transferSyntaxUid: string;
}

function first(value: unknown): unknown {
  return Array.isArray(value) ? value[0] : value;
}

function numberOf(value: unknown): number | undefined {
  const v = first(value);
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

function textOf(value: unknown): string | undefined {
  const v = first(value);
  return typeof v === 'string' ? v.trim() : undefined;
}

/** Pixel Data as bytes, whether dcmjs gives an ArrayBuffer or (without copying) a view into the file. */
function bytesOf(value: unknown): Uint8Array | undefined {
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  return undefined;
}

/** 16-bit little-endian samples; a view where the bytes are aligned, a copy where they are not. */
function words(bytes: Uint8Array, count: number): Uint16Array {
  if (bytes.byteOffset % 2 === 0) return new Uint16Array(bytes.buffer, bytes.byteOffset, count);
  return new Uint16Array(bytes.slice(0, count * 2).buffer);
}

/** Reads the pixel module of a DICOM Part 10 file into a frame ready for the grey-scale pipeline. */
export function readFrame(bytes: Buffer, label: string): { frame: GreyFrame; transferSyntaxUid: string; sopInstanceUid: string } {
  if (bytes.length < 132 || bytes.toString('latin1', 128, 132) !== 'DICM') {
    throw new RenderError(`${label}: not a DICOM Part 10 file (no DICM preamble)`);
  }
  let dict;
  try {
    // A file read on its own has its own ArrayBuffer; only a view into a shared one needs copying out.
    const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
    const ab = (whole ? bytes.buffer : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)) as ArrayBuffer;
    // noCopy: pixel data stays a view into the file's bytes instead of a second copy.
    dict = dcmjs.data.DicomMessage.readFile(ab, { ignoreErrors: false, noCopy: true });
  } catch (err) {
    throw new RenderError(`${label}: the DICOM file cannot be parsed (${(err as Error).message})`);
  }
  const meta = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.meta);
  const ds = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.dict);
  const sop = textOf(ds.SOPInstanceUID) ?? textOf(meta.MediaStorageSOPInstanceUID) ?? label;
  const ts = textOf(meta.TransferSyntaxUID) ?? '(none)';
  const where = `instance ${sop} (transfer syntax ${ts})`;

  if (!NATIVE_TRANSFER_SYNTAXES[ts]) {
    const name = KNOWN_TRANSFER_SYNTAXES[ts];
    throw new RenderError(
      name
        ? `${where}: ${name} pixel data cannot be decoded by this version of raddraft`
        : `${where}: unknown transfer syntax`,
    );
  }
  const rows = numberOf(ds.Rows);
  const columns = numberOf(ds.Columns);
  const bitsAllocated = numberOf(ds.BitsAllocated);
  const bitsStored = numberOf(ds.BitsStored) ?? bitsAllocated;
  const samplesPerPixel = numberOf(ds.SamplesPerPixel) ?? 1;
  const photometric = textOf(ds.PhotometricInterpretation);
  const frames = numberOf(ds.NumberOfFrames) ?? 1;
  if (!rows || !columns) throw new RenderError(`${where}: Rows or Columns missing`);
  if (bitsAllocated !== 8 && bitsAllocated !== 16) {
    throw new RenderError(`${where}: BitsAllocated ${bitsAllocated ?? '(missing)'} is not 8 or 16`);
  }
  if (!bitsStored || bitsStored > bitsAllocated) throw new RenderError(`${where}: BitsStored ${bitsStored} exceeds BitsAllocated ${bitsAllocated}`);
  if (photometric !== 'MONOCHROME1' && photometric !== 'MONOCHROME2') {
    throw new RenderError(`${where}: PhotometricInterpretation ${photometric ?? '(missing)'} is not MONOCHROME1 or MONOCHROME2`);
  }
  if (samplesPerPixel !== 1) throw new RenderError(`${where}: SamplesPerPixel ${samplesPerPixel} is not 1 for a grey-scale image`);

  const pixelData = bytesOf(first(ds.PixelData));
  if (!pixelData) throw new RenderError(`${where}: no Pixel Data`);
  const bytesPerSample = bitsAllocated / 8;
  const frameBytes = rows * columns * bytesPerSample;
  if (pixelData.byteLength < frameBytes * frames) {
    throw new RenderError(
      `${where}: Pixel Data has ${pixelData.byteLength} bytes, but Rows × Columns × SamplesPerPixel × frames = ${rows} × ${columns} × 1 × ${frames} needs ${frameBytes * frames}`,
    );
  }
  const samples = bitsAllocated === 8 ? pixelData.subarray(0, rows * columns) : words(pixelData, rows * columns);
  const center = numberOf(ds.WindowCenter);
  const width = numberOf(ds.WindowWidth);
  const padding = numberOf(ds.PixelPaddingValue);
  const frame: GreyFrame = {
    width: columns,
    height: rows,
    bitsStored,
    signed: numberOf(ds.PixelRepresentation) === 1,
    samples,
    photometric,
    rescaleSlope: numberOf(ds.RescaleSlope) ?? 1,
    rescaleIntercept: numberOf(ds.RescaleIntercept) ?? 0,
    ...(center !== undefined && width !== undefined ? { window: { center, width } } : {}),
    ...(padding !== undefined ? { pixelPaddingValue: padding } : {}),
  };
  return { frame, transferSyntaxUid: ts, sopInstanceUid: sop };
}

export interface RenderOptions {
  /** Output size from the source size; the model's size by default. */
  size?: (width: number, height: number) => { width: number; height: number };
  /** A window (modality units) to use instead of the file's. */
  window?: { center: number; width: number };
  /** Run the grey-scale pipeline at full size before resampling, even where resampling first would do. */
  exact?: boolean;
}

/**
 * A frame to be shown much smaller than it is stored, first shrunk by an integer factor (each k × k block averaged)
 * on the stored values, so that the grey-scale pipeline runs on a fraction of the pixels; the remaining resampling
 * is done after it on 8-bit pixels. This is the shrink-then-reduce split libvips itself uses, and like DCMTK's
 * scaling it resamples before the VOI transform: value transforms are point-wise, so the order changes pixels only
 * where the window clips. Frames with padding values, signed samples or bits above BitsStored take the exact path.
 */
export function shrinkFirst(frame: GreyFrame, size: { width: number; height: number }): GreyFrame | undefined {
  const k = Math.floor(Math.min(frame.width / size.width, frame.height / size.height));
  if (k < 2 || frame.signed || frame.pixelPaddingValue !== undefined) return undefined;
  const w = Math.floor(frame.width / k);
  const h = Math.floor(frame.height / k);
  const shrunk = frame.samples instanceof Uint16Array
    ? blockAverage16(frame.samples, frame.width, k, w, h)
    : blockAverage8(frame.samples, frame.width, k, w, h);
  if ((shrunk.bits & ~((1 << frame.bitsStored) - 1)) !== 0) return undefined;
  return { ...frame, width: w, height: h, samples: shrunk.out };
}

// Two copies of one loop, so that each reads a single array type and the JIT keeps it monomorphic (several times
// faster on a 3000 × 2500 frame than one loop over a union).
function blockAverage16(src: Uint16Array, stride: number, k: number, w: number, h: number): { out: Uint16Array; bits: number } {
  const out = new Uint16Array(w * h);
  const sums = new Uint32Array(w);
  const area = k * k;
  let bits = 0;
  for (let by = 0; by < h; by++) {
    sums.fill(0);
    for (let dy = 0; dy < k; dy++) {
      let x = (by * k + dy) * stride;
      for (let bx = 0; bx < w; bx++) {
        let acc = 0;
        for (let dx = 0; dx < k; dx++) {
          const v = src[x++]!;
          bits |= v;
          acc += v;
        }
        sums[bx] = sums[bx]! + acc;
      }
    }
    const o = by * w;
    for (let bx = 0; bx < w; bx++) out[o + bx] = (sums[bx]! + (area >> 1)) / area;
  }
  return { out, bits };
}

function blockAverage8(src: Uint8Array, stride: number, k: number, w: number, h: number): { out: Uint16Array; bits: number } {
  const out = new Uint16Array(w * h);
  const sums = new Uint32Array(w);
  const area = k * k;
  let bits = 0;
  for (let by = 0; by < h; by++) {
    sums.fill(0);
    for (let dy = 0; dy < k; dy++) {
      let x = (by * k + dy) * stride;
      for (let bx = 0; bx < w; bx++) {
        let acc = 0;
        for (let dx = 0; dx < k; dx++) {
          const v = src[x++]!;
          bits |= v;
          acc += v;
        }
        sums[bx] = sums[bx]! + acc;
      }
    }
    const o = by * w;
    for (let bx = 0; bx < w; bx++) out[o + bx] = (sums[bx]! + (area >> 1)) / area;
  }
  return { out, bits };
}

/** Renders a DICOM file to the PNG the model receives (or, with options, the picture a reviewer asked for). */
export async function renderInstance(file: string, label: string, options: RenderOptions = {}): Promise<RenderedImage> {
  const bytes = await readFile(file);
  const { frame, transferSyntaxUid } = readFrame(bytes, label);
  if (options.window && options.window.width >= 1) frame.window = options.window;
  const size = (options.size ?? ((w, h) => modelImageSize(w, h, QWEN_BUDGET)))(frame.width, frame.height);
  const shown = (options.exact ? undefined : shrinkFirst(frame, size)) ?? frame;
  const { pixels, window } = renderGrey(shown);
  const png = await sharp(pixels, { raw: { width: shown.width, height: shown.height, channels: 1 } })
    .resize(size.width, size.height, { kernel: 'lanczos3', fit: 'fill' })
    .png({ compressionLevel: 3, adaptiveFiltering: false })
    .toBuffer();
  return {
    png,
    width: size.width,
    height: size.height,
    sourceWidth: frame.width,
    sourceHeight: frame.height,
    sha256: createHash('sha256').update(png).digest('hex'),
    window,
    photometric: frame.photometric,
    transferSyntaxUid,
  };
}

/** Fits width × height within a square of `maxSide`, keeping the aspect ratio and never enlarging. */
export function fitWithin(maxSide: number): (width: number, height: number) => { width: number; height: number } {
  return (width, height) => {
    const scale = Math.min(1, maxSide / Math.max(width, height));
    return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
  };
}
