import openJpegFactory from '@cornerstonejs/codec-openjpeg/decodewasmjs';
import openJphFactory from '@cornerstonejs/codec-openjph';
import { j2kDecompositionLevels } from './codestream.js';

/**
 * Decoding JPEG 2000 and HTJ2K at a lower resolution level: a codestream holds its image at every 1/2^L of its
 * size (L up to its decomposition levels), and the smaller levels cost a fraction of a whole decode, since the
 * finer sub-bands are never decoded. dcmjs-codecs decodes only at full size, so these levels come from the
 * OpenJPEG (reduce factor) and OpenJPH (skipped resolutions) WebAssembly builds that expose them.
 */

export interface Size {
  width: number;
  height: number;
}

type Decoders = { openJpeg?: { J2KDecoder: new () => WasmJ2kDecoder }; openJph?: { HTJ2KDecoder: new () => WasmJ2kDecoder } };

const decoders: Decoders = {};
const loading: Partial<Record<'jpeg2000' | 'htj2k', Promise<void>>> = {};

// OpenJPEG writes "[INFO] …" lines for every codestream to standard output; they say nothing an administrator needs.
const quiet = { print: () => undefined, printErr: () => undefined };

/** Loads one decoder's WebAssembly once per thread: OpenJPEG for JPEG 2000, OpenJPH for HTJ2K. */
export function initSubResolutionCodec(kind: 'jpeg2000' | 'htj2k'): Promise<void> {
  loading[kind] ??= kind === 'jpeg2000'
    ? openJpegFactory(quiet).then((m) => void (decoders.openJpeg = m))
    : openJphFactory(quiet).then((m) => void (decoders.openJph = m));
  return loading[kind];
}

/** Loads both decoders' WebAssembly once per thread. */
export function initSubResolutionCodecs(): Promise<void> {
  return Promise.all([initSubResolutionCodec('jpeg2000'), initSubResolutionCodec('htj2k')]).then(() => undefined);
}

/** The size of resolution level `level` of a `width` × `height` image with no image offset (T.800 B.5). */
export function sizeAtLevel(width: number, height: number, level: number): Size {
  return { width: Math.ceil(width / 2 ** level), height: Math.ceil(height / 2 ** level) };
}

/**
 * The coarsest resolution level of the codestream whose image is still at least `target` in both directions; 0
 * (decode whole) when the codestream's levels cannot be read or none is small enough to help.
 */
export function levelFor(data: Uint8Array, width: number, height: number, target: Size): number {
  const levels = j2kDecompositionLevels(data) ?? 0;
  let level = 0;
  while (level < levels) {
    const next = sizeAtLevel(width, height, level + 1);
    if (next.width < target.width || next.height < target.height) break;
    level++;
  }
  return level;
}

export interface SubResolutionFrame {
  data: Uint8Array;
  width: number;
  height: number;
}

/**
 * One grey-scale frame decoded at resolution level `level` (≥ 1), as little-endian samples of `bytesPerSample`.
 * Undefined when the decoder cannot give that level as expected (it throws, or reports another size or sample
 * width); the caller then decodes the frame whole, which names any fault in the data.
 */
export function decodeAtLevel(kind: 'jpeg2000' | 'htj2k', encoded: Uint8Array, size: Size, level: number, bytesPerSample: number): SubResolutionFrame | undefined {
  const module = kind === 'jpeg2000' ? decoders.openJpeg?.J2KDecoder : decoders.openJph?.HTJ2KDecoder;
  if (!module) throw new Error(`the ${kind} sub-resolution decoder is not loaded (initSubResolutionCodec() was not awaited)`);
  const decoder = new module();
  try {
    decoder.getEncodedBuffer(encoded.length).set(encoded);
    // OpenJPEG's second argument is the number of quality layers to decode: 0 for all of them.
    if (kind === 'jpeg2000') decoder.decodeSubResolution(level, 0);
    else decoder.decodeSubResolution(level);
    const info = decoder.getFrameInfo();
    const want = sizeAtLevel(size.width, size.height, level);
    const bytes = info.bitsPerSample <= 8 ? 1 : 2;
    if (info.width !== size.width || info.height !== size.height || info.componentCount !== 1 || bytes !== bytesPerSample) return undefined;
    const decoded = decoder.getDecodedBuffer();
    if (decoded.length !== want.width * want.height * bytes) return undefined;
    // A copy out of the WebAssembly memory, which the next decode reuses.
    return { data: decoded.slice(), width: want.width, height: want.height };
  } catch {
    return undefined;
  } finally {
    decoder.delete();
  }
}
