import codecs, { type Context } from 'dcmjs-codecs';
import { TRANSFER_SYNTAXES } from './transfer-syntaxes.js';
import { codestreamFault, rleFault } from './codestream.js';
import { DEFAULT_LIMITS, frameTooLarge, type ImageLimits } from './limits.js';
import { decodeJpegScaled, jpegScaleFor } from './jpeg-scaled.js';
import { decodeAtLevel, initSubResolutionCodec, initSubResolutionCodecs, levelFor, type Size } from './sub-resolution.js';

/**
 * Pixel data decoding for every transfer syntax a chest X-ray archive holds. Native little endian (implicit or
 * explicit, and deflated, which readFrame inflates first) needs nothing; big endian is byte-swapped; the compressed syntaxes
 * are decoded by dcmjs-codecs (libjpeg-turbo, CharLS, OpenJPEG, OpenJPH compiled to WebAssembly). Only the first
 * frame is decoded: a chest radiograph is one frame, and a multi-frame object is shown by its first.
 */

export { TRANSFER_SYNTAXES };

let nativeCodecs: Promise<void> | undefined;

function loadNativeCodecs(): Promise<void> {
  nativeCodecs ??= codecs.NativeCodecs.isInitialized() ? Promise.resolve() : codecs.NativeCodecs.initializeAsync();
  return nativeCodecs;
}

/** Loads every codec's WebAssembly once per thread (decodeFrame needs them loaded; decodeFrameShown loads its own). */
export function initCodecs(): Promise<void> {
  return Promise.all([loadNativeCodecs(), initSubResolutionCodecs()]).then(() => undefined);
}

export interface EncodedFrame {
  width: number;
  height: number;
  bitsAllocated: number;
  bitsStored: number;
  samplesPerPixel: number;
  signed: boolean;
  planarConfiguration: number;
  photometric: string;
  /** The frame's bytes as stored: compressed for encapsulated syntaxes. */
  data: Uint8Array;
}

export interface DecodedFrame {
  /** Samples in little-endian order, `samplesPerPixel` per pixel. */
  data: Uint8Array;
  /** The decoded size: the frame's, or a JPEG 2000 resolution level's when a smaller picture was asked for. */
  width: number;
  height: number;
  photometric: string;
  planarConfiguration: number;
}

export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecodeError';
  }
}

/** A byte-swapped copy (the file's bytes stay as read); Buffer.swap16 is native and many times faster than a loop. */
function swap16(bytes: Uint8Array): Uint8Array {
  const copy = Buffer.from(bytes.subarray(0, bytes.length - (bytes.length % 2)));
  return copy.swap16();
}

/** Bytes of WebAssembly memory the codecs hold on this thread; it grows with the largest frame and never shrinks. */
export function codecMemoryBytes(): number {
  const api = (codecs.NativeCodecs as unknown as { wasmApi?: { wasmMemory?: { buffer: ArrayBuffer } } }).wasmApi;
  return api?.wasmMemory?.buffer.byteLength ?? 0;
}

/** Refuses, before the codec sees it, a frame larger than the ceiling or one whose codestream cannot decode whole. */
function checkBeforeDecoding(kind: (typeof TRANSFER_SYNTAXES)[string]['kind'], name: string, frame: EncodedFrame, limits: ImageLimits): void {
  const tooLarge = frameTooLarge(frame.height, frame.width, limits);
  if (tooLarge) throw new DecodeError(tooLarge);
  if (kind === 'native' || kind === 'big-endian') return;
  const fault = kind === 'rle'
    ? rleFault(frame.data, frame.height, frame.width, frame.samplesPerPixel * (frame.bitsAllocated / 8))
    : codestreamFault(kind, name, frame.data, frame.height, frame.width, limits);
  if (fault) throw new DecodeError(fault);
}

/**
 * A JPEG 2000 or HTJ2K grey-scale frame decoded at the coarsest resolution level that is still at least `target`,
 * or undefined when the whole frame is to be decoded (no level helps, or the decoder could not give one).
 */
function decodeReduced(kind: 'jpeg2000' | 'htj2k', frame: EncodedFrame, target: Size): DecodedFrame | undefined {
  if (frame.samplesPerPixel !== 1) return undefined;
  const level = levelFor(frame.data, frame.width, frame.height, target);
  if (level === 0) return undefined;
  const reduced = decodeAtLevel(kind, frame.data, frame, level, frame.bitsAllocated / 8);
  return reduced && { ...reduced, photometric: frame.photometric, planarConfiguration: frame.planarConfiguration };
}

/**
 * Decodes one frame; the codec's own complaint is passed on in the error. With `target`, the size the frame will
 * be shown at, a JPEG 2000 or HTJ2K frame may come back smaller than stored (see DecodedFrame's width and height).
 */
export function decodeFrame(transferSyntaxUid: string, frame: EncodedFrame, limits: ImageLimits = DEFAULT_LIMITS, target?: Size): DecodedFrame {
  const syntax = TRANSFER_SYNTAXES[transferSyntaxUid];
  if (!syntax) throw new DecodeError('unknown transfer syntax');
  checkBeforeDecoding(syntax.kind, syntax.name, frame, limits);
  const { width, height, photometric, planarConfiguration } = frame;
  if (syntax.kind === 'native') return { data: frame.data, width, height, photometric, planarConfiguration };
  if (syntax.kind === 'big-endian') {
    return { data: frame.bitsAllocated === 16 ? swap16(frame.data) : frame.data, width, height, photometric, planarConfiguration };
  }
  if (target && (syntax.kind === 'jpeg2000' || syntax.kind === 'htj2k')) {
    const reduced = decodeReduced(syntax.kind, frame, target);
    if (reduced) return reduced;
  }
  if (!codecs.NativeCodecs.isInitialized()) throw new DecodeError('the codecs are not loaded (initCodecs() was not awaited)');
  const context = new codecs.Context({
    width: frame.width,
    height: frame.height,
    bitsAllocated: frame.bitsAllocated,
    bitsStored: frame.bitsStored,
    samplesPerPixel: frame.samplesPerPixel,
    pixelRepresentation: frame.signed ? 1 : 0,
    planarConfiguration: frame.planarConfiguration,
    photometricInterpretation: frame.photometric,
    encodedBuffer: frame.data,
  });
  let decoded: Context;
  try {
    switch (syntax.kind) {
      case 'rle':
        decoded = codecs.NativeCodecs.decodeRle(context);
        break;
      case 'jpeg':
        decoded = codecs.NativeCodecs.decodeJpeg(context, { convertColorspaceToRgb: true });
        break;
      case 'jpeg-ls':
        decoded = codecs.NativeCodecs.decodeJpegLs(context);
        break;
      case 'jpeg2000':
        decoded = codecs.NativeCodecs.decodeJpeg2000(context);
        break;
      case 'htj2k':
        decoded = codecs.NativeCodecs.decodeHtJpeg2000(context);
        break;
    }
  } catch (err) {
    // A WebAssembly trap says only "unreachable"; what it means to an administrator is invalid data. The codecs'
    // own messages start with the C++ function that failed (e.g. JpegDecoder12::ErrorExit::), left out here.
    const reason = (err as Error).name === 'RuntimeError' ? 'the decoder stopped on invalid data' : (err as Error).message.replace(/^(\w+::)+/, '').replace(/\s+/g, ' ').trim();
    throw new DecodeError(`the ${syntax.name} data cannot be decoded (${reason})`);
  }
  const data = decoded.getDecodedBuffer();
  const expected = frame.width * frame.height * frame.samplesPerPixel * (frame.bitsAllocated / 8);
  if (!data || data.length < expected) {
    throw new DecodeError(`the ${syntax.name} data decoded to ${data?.length ?? 0} bytes, but Rows × Columns × SamplesPerPixel needs ${expected}`);
  }
  return {
    data,
    width,
    height,
    photometric: decoded.getPhotometricInterpretation() ?? frame.photometric,
    planarConfiguration: decoded.getPlanarConfiguration() ?? frame.planarConfiguration,
  };
}

const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';

/**
 * decodeFrame for a frame shown at `target`, loading only the codecs the frame needs (none for native pixel data,
 * which most chest radiographs are: compiling every codec costs about half a CPU-second a thread) and decoding only
 * what the output needs: a JPEG 2000 or HTJ2K frame at its coarsest resolution level that covers `target`, an 8-bit
 * JPEG baseline frame at the smallest DCT scale that does.
 */
export async function decodeFrameShown(transferSyntaxUid: string, frame: EncodedFrame, limits: ImageLimits = DEFAULT_LIMITS, target?: Size): Promise<DecodedFrame> {
  const kind = TRANSFER_SYNTAXES[transferSyntaxUid]?.kind;
  if (kind === undefined || kind === 'native' || kind === 'big-endian') return decodeFrame(transferSyntaxUid, frame, limits);
  if (target && (kind === 'jpeg2000' || kind === 'htj2k') && frame.samplesPerPixel === 1) {
    checkBeforeDecoding(kind, TRANSFER_SYNTAXES[transferSyntaxUid]!.name, frame, limits);
    await initSubResolutionCodec(kind);
    const reduced = decodeReduced(kind, frame, target);
    if (reduced) return reduced;
  }
  if (target && transferSyntaxUid === JPEG_BASELINE && frame.samplesPerPixel === 1 && frame.bitsAllocated === 8) {
    checkBeforeDecoding(kind, TRANSFER_SYNTAXES[transferSyntaxUid]!.name, frame, limits);
    const factor = jpegScaleFor(frame, target);
    const scaled = factor > 1 ? await decodeJpegScaled(frame.data, frame, factor) : undefined;
    if (scaled) return { ...scaled, photometric: frame.photometric, planarConfiguration: frame.planarConfiguration };
  }
  await loadNativeCodecs();
  // The smaller pictures were tried above: what is left is a whole decode.
  return decodeFrame(transferSyntaxUid, frame, limits);
}
