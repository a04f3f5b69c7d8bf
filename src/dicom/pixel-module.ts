import dcmjs from 'dcmjs';
import { RenderError } from './render-error.js';

export { RenderError };
import { decodeFrame, decodeFrameShown, DecodeError, TRANSFER_SYNTAXES, type DecodedFrame, type EncodedFrame } from './decode.js';
import { DATA_SET_ALLOWANCE, DEFAULT_LIMITS, frameTooLarge, maxPixelDataBytes, type ImageLimits } from './limits.js';
import {
  checkHeaderBytes, DEFLATED, EXPLICIT_LE, firstFrameFragments, headerBytes, inflateDeflatedFile, inflateDeflatedHead, PixelDataError, readFileMeta, readPixelData,
  type FileMeta, type PixelDataElement,
} from './pixel-data.js';
import type { GreyFrame, LookupTable, VoiFunction } from './greyscale.js';

dcmjs.log.setLevel('error');

type Naturalized = Record<string, unknown>;

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

function bytesOf(value: unknown): Uint8Array | undefined {
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  return undefined;
}

/** 16-bit little-endian samples; a view where the bytes are aligned, a copy where they are not. */
function words(bytes: Uint8Array, count: number): Uint16Array {
  if (bytes.byteOffset % 2 === 0) return new Uint16Array(bytes.buffer, bytes.byteOffset, count);
  // Copied by hand: a Buffer's slice is a view of the same memory, not a copy.
  const copy = new Uint16Array(count);
  new Uint8Array(copy.buffer).set(bytes.subarray(0, count * 2));
  return copy;
}

/**
 * A Modality or VOI LUT Sequence item (PS3.3 C.11.1, C.11.2): LUT Descriptor [entries (0 = 65536), first value
 * mapped, bits per entry] and LUT Data, which dcmjs gives as numbers or as raw 16-bit words.
 */
function lookupTable(item: unknown): LookupTable | undefined {
  const it = item as Naturalized | undefined;
  const descriptor = Array.isArray(it?.LUTDescriptor) ? (it.LUTDescriptor as unknown[]).map(Number) : undefined;
  if (!descriptor || descriptor.length < 3) return undefined;
  const entries = descriptor[0] === 0 ? 65536 : descriptor[0]!;
  const firstMapped = descriptor[1]!;
  const bits = descriptor[2]!;
  const raw = it?.LUTData;
  let data: ArrayLike<number>;
  const bytes = bytesOf(first(raw));
  if (bytes) data = bits > 8 || bytes.length >= entries * 2 ? words(bytes, Math.min(entries, Math.floor(bytes.length / 2))) : bytes;
  else if (Array.isArray(raw)) data = (raw as unknown[]).map(Number);
  else return undefined;
  if (data.length === 0) return undefined;
  return { first: firstMapped, data, bits };
}

/**
 * The luma of a colour frame. YBR's Y is the luma itself (PS3.3 C.7.6.3.1.2); uncompressed YBR_FULL_422 holds it
 * as Y1 Y2 Cb Cr for each pair of pixels; RGB is weighted as ITU-R BT.601, as YBR_FULL defines Y, and truncated
 * as the grey-scale output is (and as DCMTK does).
 */
function toLuma(data: Uint8Array, width: number, height: number, photometric: string, planar: number, subsampled: boolean): Uint8Array {
  const n = width * height;
  const out = new Uint8Array(n);
  if (subsampled) {
    for (let i = 0; i < n; i++) out[i] = data[(i >> 1) * 4 + (i & 1)]!;
    return out;
  }
  const at = planar === 1 ? (i: number, c: number) => data[c * n + i]! : (i: number, c: number) => data[i * 3 + c]!;
  if (photometric.startsWith('YBR')) {
    for (let i = 0; i < n; i++) out[i] = at(i, 0);
  } else {
    for (let i = 0; i < n; i++) out[i] = Math.floor(0.299 * at(i, 0) + 0.587 * at(i, 1) + 0.114 * at(i, 2));
  }
  return out;
}

const VOI_FUNCTIONS: VoiFunction[] = ['LINEAR', 'LINEAR_EXACT', 'SIGMOID'];

/** The attributes of the image pixel module that say how to read the first frame, checked. */
interface PixelModule {
  where: string;
  ts: string;
  sop: string;
  rows: number;
  columns: number;
  bitsAllocated: 8 | 16;
  bitsStored: number;
  samplesPerPixel: number;
  photometric: string | undefined;
  frames: number;
  planar: number;
  colour: boolean;
  /** Uncompressed YBR_FULL_422 stores two bytes a pixel: each pair shares its Cb and Cr (PS3.3 C.7.6.3.1.2). */
  subsampled: boolean;
  ds: Naturalized;
}

/** The walker's, the inflater's and the decoder's errors as a RenderError naming `where`; others as they are. */
function named(where: string, err: unknown): unknown {
  return err instanceof PixelDataError || err instanceof DecodeError ? new RenderError(`${where}: ${err.message}`) : err;
}

/** Runs a step, turning the walker's, the inflater's and the decoder's errors into a RenderError naming `where`. */
function naming<T>(where: string, step: () => T): T {
  try {
    return step();
  } catch (err) {
    throw named(where, err);
  }
}

/** The header up to Pixel Data; for a deflated file, inflated only that far. */
function parseHeader(bytes: Buffer, fileMeta: FileMeta, label: string): { meta: Naturalized; ds: Naturalized; headBytes: number } {
  const deflated = fileMeta.transferSyntaxUid === DEFLATED;
  const where = `instance ${fileMeta.sopInstanceUid ?? label} (transfer syntax ${fileMeta.transferSyntaxUid ?? '(none)'})`;
  // Both bound what dcmjs is given: it builds every element before Pixel Data on this thread's heap.
  const head = deflated ? naming(where, () => inflateDeflatedHead(bytes, fileMeta)) : bytes;
  if (!deflated) naming(where, () => checkHeaderBytes(bytes, fileMeta, fileMeta.transferSyntaxUid));
  let dict;
  try {
    // dcmjs wants an ArrayBuffer of its own: a file read on its own is one; from a view into a larger buffer (a
    // rendering thread's scratch, a staging buffer) only the elements before Pixel Data, and its element header,
    // are copied out, not the pixels.
    const whole = head.byteOffset === 0 && head.byteLength === head.buffer.byteLength && head.buffer instanceof ArrayBuffer;
    const before = deflated ? undefined : headerBytes(head, fileMeta, fileMeta.transferSyntaxUid);
    const end = before === undefined ? head.byteLength : Math.min(head.byteLength, fileMeta.dataSetStart + before + 12);
    const ab = whole ? head.buffer : new Uint8Array(head.subarray(0, end)).buffer;
    // The header only: the pixel data is taken from the file's bytes by readPixelData, without a copy.
    dict = dcmjs.data.DicomMessage.readFile(ab, { ignoreErrors: false, untilTag: '7FE00010', includeUntilTagValue: false });
  } catch (err) {
    throw new RenderError(`${label}: the DICOM file cannot be parsed (${(err as Error).message})`);
  }
  return {
    meta: dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.meta),
    ds: dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.dict),
    headBytes: deflated ? head.length : 0,
  };
}

/** The pixel module's attributes, each checked, and the frame's size checked against the ceiling before anything is allocated. */
function pixelModule(meta: Naturalized, ds: Naturalized, fileMeta: FileMeta, label: string, limits: ImageLimits): PixelModule {
  const sop = textOf(ds.SOPInstanceUID) ?? textOf(meta.MediaStorageSOPInstanceUID) ?? label;
  // A deflated file is named by the transfer syntax it arrived in.
  const ts = fileMeta.transferSyntaxUid === DEFLATED ? DEFLATED : textOf(meta.TransferSyntaxUID) ?? '(none)';
  const where = `instance ${sop} (transfer syntax ${ts})`;
  if (!TRANSFER_SYNTAXES[ts]) throw new RenderError(`${where}: unknown transfer syntax`);
  const rows = numberOf(ds.Rows);
  const columns = numberOf(ds.Columns);
  const bitsAllocated = numberOf(ds.BitsAllocated);
  const bitsStored = numberOf(ds.BitsStored) ?? bitsAllocated;
  const samplesPerPixel = numberOf(ds.SamplesPerPixel) ?? 1;
  const photometric = textOf(ds.PhotometricInterpretation);
  const frames = numberOf(ds.NumberOfFrames) ?? 1;
  if (!rows || !columns) throw new RenderError(`${where}: Rows or Columns missing`);
  if (!Number.isInteger(rows) || !Number.isInteger(columns) || rows < 0 || columns < 0) throw new RenderError(`${where}: Rows ${rows} or Columns ${columns} is not a positive whole number`);
  if (!Number.isInteger(frames) || frames < 1) throw new RenderError(`${where}: NumberOfFrames ${frames} is not a positive whole number`);
  const tooLarge = frameTooLarge(rows, columns, limits);
  if (tooLarge) throw new RenderError(`${where}: ${tooLarge}`);
  if (bitsAllocated !== 8 && bitsAllocated !== 16) throw new RenderError(`${where}: BitsAllocated ${bitsAllocated ?? '(missing)'} is not 8 or 16`);
  if (!bitsStored || bitsStored > bitsAllocated) throw new RenderError(`${where}: BitsStored ${bitsStored} exceeds BitsAllocated ${bitsAllocated}`);
  const grey = photometric === 'MONOCHROME1' || photometric === 'MONOCHROME2';
  const colour = samplesPerPixel === 3 && bitsAllocated === 8 && /^(RGB|YBR_FULL|YBR_FULL_422|YBR_ICT|YBR_RCT)$/.test(photometric ?? '');
  if (!grey && !colour) {
    throw new RenderError(`${where}: PhotometricInterpretation ${photometric ?? '(missing)'} with ${samplesPerPixel} sample(s) of ${bitsAllocated} bits is not a grey-scale or 8-bit colour image`);
  }
  if (grey && samplesPerPixel !== 1) throw new RenderError(`${where}: SamplesPerPixel ${samplesPerPixel} is not 1 for a grey-scale image`);
  const native = TRANSFER_SYNTAXES[ts].kind === 'native' || TRANSFER_SYNTAXES[ts].kind === 'big-endian';
  return {
    where, ts, sop, rows, columns, bitsAllocated, bitsStored, samplesPerPixel, photometric, frames,
    planar: numberOf(ds.PlanarConfiguration) ?? 0, colour, subsampled: native && photometric === 'YBR_FULL_422', ds,
  };
}

/** Bytes of one frame as stored uncompressed. */
function frameBytes(m: PixelModule): number {
  return m.subsampled ? m.rows * m.columns * 2 : m.rows * m.columns * m.samplesPerPixel * (m.bitsAllocated / 8);
}

/**
 * The file with its data set inflated, for a deflated file: no further than the header declares (every frame's
 * pixels and an allowance for the other elements), and never past the ceiling whatever NumberOfFrames says.
 */
function inflated(bytes: Buffer, fileMeta: FileMeta, m: PixelModule, headBytes: number, limits: ImageLimits): Buffer {
  const declared = frameBytes(m) * m.frames;
  const formula = `Rows × Columns × SamplesPerPixel × BitsAllocated/8 × NumberOfFrames = ${m.rows} × ${m.columns} × ${m.samplesPerPixel} × ${m.bitsAllocated / 8} × ${m.frames}`;
  if (declared > maxPixelDataBytes(limits)) {
    throw new RenderError(`${m.where}: ${formula} = ${declared} bytes of pixel data, more than the ${maxPixelDataBytes(limits)} raddraft inflates (4 bytes × RADDRAFT_MAX_PIXELS)`);
  }
  const bound = { maxBytes: headBytes + declared + DATA_SET_ALLOWANCE, declared: `${formula} = ${declared} bytes of pixel data` };
  return naming(m.where, () => inflateDeflatedFile(bytes, fileMeta, bound));
}

/** The first frame's bytes as stored: compressed for encapsulated syntaxes. */
function firstFrame(bytes: Buffer, m: PixelModule): Uint8Array {
  const element: PixelDataElement | undefined = naming(m.where, () => readPixelData(bytes, m.ts === DEFLATED ? EXPLICIT_LE : m.ts));
  if (!element) throw new RenderError(`${m.where}: no Pixel Data`);
  const kind = TRANSFER_SYNTAXES[m.ts]!.kind;
  const native = kind === 'native' || kind === 'big-endian';
  if (element.encapsulated !== !native) {
    throw new RenderError(`${m.where}: Pixel Data is ${element.encapsulated ? 'encapsulated' : 'not encapsulated'}, which the transfer syntax does not allow`);
  }
  if (element.encapsulated) return naming(m.where, () => firstFrameFragments(element, m.frames));
  const all = element.value;
  const size = frameBytes(m);
  if (all.length < size * m.frames) {
    const { where, rows, columns, samplesPerPixel, frames } = m;
    throw new RenderError(
      m.subsampled
        ? `${where}: Pixel Data has ${all.length} bytes, but Rows × Columns × 2 bytes (YBR_FULL_422) × frames = ${rows} × ${columns} × 2 × ${frames} needs ${size * frames}`
        : `${where}: Pixel Data has ${all.length} bytes, but Rows × Columns × SamplesPerPixel × frames = ${rows} × ${columns} × ${samplesPerPixel} × ${frames} needs ${size * frames}`,
    );
  }
  return all.subarray(0, size);
}

/** The grey-scale frame (decoded at `columns` × `rows`), with the Modality, VOI and Presentation LUT attributes of the header. */
function greyFrame(m: PixelModule, data: Uint8Array, columns: number, rows: number): GreyFrame {
  const { ds } = m;
  const samples = m.bitsAllocated === 8 ? data.subarray(0, rows * columns) : words(data, rows * columns);
  const centers = Array.isArray(ds.WindowCenter) ? ds.WindowCenter : [ds.WindowCenter];
  const widths = Array.isArray(ds.WindowWidth) ? ds.WindowWidth : [ds.WindowWidth];
  const center = numberOf(centers[0]);
  const width = numberOf(widths[0]);
  const voiFunction = textOf(ds.VOILUTFunction)?.toUpperCase() as VoiFunction | undefined;
  const padding = numberOf(ds.PixelPaddingValue);
  const paddingLimit = numberOf(ds.PixelPaddingRangeLimit);
  const presentationShape = textOf(ds.PresentationLUTShape)?.toUpperCase();
  const modalityLut = lookupTable(first(ds.ModalityLUTSequence));
  const voiLut = lookupTable(first(ds.VOILUTSequence));
  return {
    width: columns,
    height: rows,
    bitsStored: m.bitsStored,
    signed: numberOf(ds.PixelRepresentation) === 1,
    samples,
    photometric: m.photometric as 'MONOCHROME1' | 'MONOCHROME2',
    rescaleSlope: numberOf(ds.RescaleSlope) ?? 1,
    rescaleIntercept: numberOf(ds.RescaleIntercept) ?? 0,
    ...(modalityLut ? { modalityLut } : {}),
    ...(center !== undefined && width !== undefined && width >= 1 ? { window: { center, width } } : {}),
    ...(voiFunction && VOI_FUNCTIONS.includes(voiFunction) ? { voiFunction } : {}),
    ...(voiLut ? { voiLut } : {}),
    // Presentation LUT Shape, where present, says whether high values are dark; otherwise the photometric
    // interpretation does (PS3.3 C.11.6).
    inverse: presentationShape === 'INVERSE' ? true : presentationShape === 'IDENTITY' ? false : m.photometric === 'MONOCHROME1',
    ...(padding !== undefined ? { pixelPaddingValue: padding } : {}),
    ...(padding !== undefined && paddingLimit !== undefined ? { pixelPaddingLimit: paddingLimit } : {}),
  };
}

export interface ReadFrame {
  frame: GreyFrame;
  /** Columns × Rows as stored; `frame` may be smaller when it was decoded at a lower resolution level. */
  source: { width: number; height: number };
  transferSyntaxUid: string;
  sopInstanceUid: string;
  frames: number;
}

interface PreparedFrame {
  m: PixelModule;
  encoded: EncodedFrame;
  target?: { width: number; height: number };
  result: Omit<ReadFrame, 'frame'>;
}

/** Everything readFrame does before decoding: the header parsed and checked, the first frame's bytes found. */
function prepareFrame(bytes: Buffer, label: string, limits: ImageLimits, shownAt?: (width: number, height: number) => { width: number; height: number }): PreparedFrame {
  if (bytes.length < 132 || bytes.toString('latin1', 128, 132) !== 'DICM') {
    throw new RenderError(`${label}: not a DICOM Part 10 file (no DICM preamble)`);
  }
  const fileMeta = readFileMeta(bytes);
  const { meta, ds, headBytes } = parseHeader(bytes, fileMeta, label);
  const m = pixelModule(meta, ds, fileMeta, label, limits);
  const file = m.ts === DEFLATED ? inflated(bytes, fileMeta, m, headBytes, limits) : bytes;
  const target = shownAt && !m.colour ? shownAt(m.columns, m.rows) : undefined;
  const encoded: EncodedFrame = {
    width: m.columns, height: m.rows, bitsAllocated: m.bitsAllocated, bitsStored: m.bitsStored, samplesPerPixel: m.samplesPerPixel,
    signed: numberOf(ds.PixelRepresentation) === 1, planarConfiguration: m.planar, photometric: m.photometric ?? 'MONOCHROME2', data: firstFrame(file, m),
  };
  return { m, encoded, ...(target ? { target } : {}), result: { source: { width: m.columns, height: m.rows }, transferSyntaxUid: m.ts, sopInstanceUid: m.sop, frames: m.frames } };
}

/** The decoded frame as the grey-scale pipeline takes it: colour scans of film taken to grey. */
function finishFrame({ m, result }: PreparedFrame, decoded: DecodedFrame): ReadFrame {
  if (!m.colour) return { frame: greyFrame(m, decoded.data, decoded.width, decoded.height), ...result };
  return {
    frame: {
      width: m.columns, height: m.rows, bitsStored: 8, signed: false, photometric: 'MONOCHROME2',
      samples: toLuma(decoded.data, m.columns, m.rows, decoded.photometric, decoded.planarConfiguration, m.subsampled),
      rescaleSlope: 1, rescaleIntercept: 0, window: { center: 128, width: 256 },
    },
    ...result,
  };
}

/**
 * Reads the pixel module of a DICOM Part 10 file and decodes its first frame into a frame for the grey-scale
 * pipeline. Every fault is a RenderError naming the instance, its transfer syntax and what is wrong; every size is
 * checked against `limits` before the pixels are inflated or decoded. With `shownAt` (the output size for a
 * Columns × Rows source), a JPEG 2000 or HTJ2K frame is decoded only as finely as that output needs. The codecs
 * must have been loaded (initCodecs).
 */
export function readFrame(
  bytes: Buffer, label: string, limits: ImageLimits = DEFAULT_LIMITS, shownAt?: (width: number, height: number) => { width: number; height: number },
): ReadFrame {
  const prepared = prepareFrame(bytes, label, limits, shownAt);
  return finishFrame(prepared, naming(prepared.m.where, () => decodeFrame(prepared.m.ts, prepared.encoded, limits, prepared.target)));
}

/**
 * readFrame loading only the codecs the frame needs, and decoding only as finely as `shownAt` needs: a JPEG 2000 or
 * HTJ2K frame at a resolution level, an 8-bit JPEG baseline frame at a DCT scale (decodeFrameShown).
 */
export async function readFrameShown(
  bytes: Buffer, label: string, limits: ImageLimits = DEFAULT_LIMITS, shownAt?: (width: number, height: number) => { width: number; height: number },
): Promise<ReadFrame> {
  const prepared = prepareFrame(bytes, label, limits, shownAt);
  let decoded: DecodedFrame;
  try {
    decoded = await decodeFrameShown(prepared.m.ts, prepared.encoded, limits, prepared.target);
  } catch (err) {
    throw named(prepared.m.where, err);
  }
  return finishFrame(prepared, decoded);
}
