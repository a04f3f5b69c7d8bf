import { open } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { renderGrey, windowTable, type GreyFrame, type WindowUsed } from './greyscale.js';
import { DEFAULT_LIMITS, instanceTooLarge, type ImageLimits } from './limits.js';
import { readFrameShown, RenderError } from './pixel-module.js';
import type { RenderScratch } from './scratch.js';
import { modelImageSize, QWEN_BUDGET } from './resize.js';

export { RenderError, readFrame } from './pixel-module.js';

export interface RenderedImage {
  png: Buffer;
  width: number;
  height: number;
  sourceWidth: number;
  sourceHeight: number;
  /** The size the frame was decoded at: the source's, or a JPEG 2000 resolution level's. */
  decodedWidth: number;
  decodedHeight: number;
  /** Milliseconds from reading the file to the encoded PNG. */
  ms: number;
  sha256: string;
  window: WindowUsed;
  photometric: 'MONOCHROME1' | 'MONOCHROME2';
  transferSyntaxUid: string;
}

export interface RenderOptions {
  /** Output size from the source size; the model's size by default. */
  size?: (width: number, height: number) => { width: number; height: number };
  /** A window (modality units) to use instead of the file's. */
  window?: { center: number; width: number };
  /**
   * Decode at full size and run the grey-scale pipeline there before resampling, even where a JPEG 2000 resolution
   * level or resampling first would do.
   */
  exact?: boolean;
  /** Size ceilings checked before anything is inflated or decoded; RADDRAFT_MAX_PIXELS by default. */
  limits?: ImageLimits;
  /** Buffers kept from one image to the next by a thread that renders one image at a time. */
  scratch?: RenderScratch;
  /** Told how long each stage took, in milliseconds: for bench:images and profiling. */
  onStage?: (stage: RenderStage, ms: number) => void;
}

export type RenderStage = 'read' | 'decode' | 'greyscale' | 'encode';

/**
 * A frame to be shown much smaller than it is stored, first shrunk by an integer factor (each k × k block averaged)
 * on the stored values, so that the grey-scale pipeline runs on a fraction of the pixels; the remaining resampling
 * is done after it on 8-bit pixels. This is the shrink-then-reduce split libvips itself uses, and like DCMTK's
 * scaling it resamples before the VOI transform: value transforms are point-wise, so the order changes pixels only
 * where the window clips. Frames with padding values, signed samples or bits above BitsStored take the exact path.
 */
export function shrinkFirst(frame: GreyFrame, size: { width: number; height: number }, scratch?: RenderScratch): GreyFrame | undefined {
  const k = Math.floor(Math.min(frame.width / size.width, frame.height / size.height));
  if (k < 2 || frame.signed || frame.pixelPaddingValue !== undefined) return undefined;
  const w = Math.floor(frame.width / k);
  const h = Math.floor(frame.height / k);
  // A block average exactly halfway between two values rounds towards the brighter one on the display, so that an
  // image and its inverted twin (MONOCHROME1 and MONOCHROME2) shrink to the same picture.
  const inverse = frame.inverse ?? frame.photometric === 'MONOCHROME1';
  const half = Math.floor((k * k) / 2);
  const bias = (k * k) % 2 === 0 && inverse ? half - 1 : half;
  const out = scratch ? scratch.uint16(w * h) : new Uint16Array(w * h);
  const shrunk = frame.samples instanceof Uint16Array
    ? k === 2 ? halve16(frame.samples, frame.width, w, h, bias, out) : blockAverage16(frame.samples, frame.width, k, w, h, bias, out)
    : blockAverage8(frame.samples, frame.width, k, w, h, bias, out);
  if ((shrunk.bits & ~((1 << frame.bitsStored) - 1)) !== 0) return undefined;
  return { ...frame, width: w, height: h, samples: shrunk.out };
}

// Two copies of one loop, so that each reads a single array type and the JIT keeps it monomorphic (several times
// faster on a 3000 × 2500 frame than one loop over a union).
function blockAverage16(src: Uint16Array, stride: number, k: number, w: number, h: number, bias: number, out: Uint16Array): { out: Uint16Array; bits: number } {
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
    for (let bx = 0; bx < w; bx++) out[o + bx] = (sums[bx]! + bias) / area;
  }
  return { out, bits };
}

/**
 * The 2 × 2 case of blockAverage16, the one a 2000–3500-pixel radiograph takes on its way to the model's size,
 * written out: reading both rows at once without the running sums is about four times faster.
 */
function halve16(src: Uint16Array, stride: number, w: number, h: number, bias: number, out: Uint16Array): { out: Uint16Array; bits: number } {
  let bits = 0;
  for (let by = 0; by < h; by++) {
    let a = 2 * by * stride;
    let b = a + stride;
    const o = by * w;
    for (let bx = 0; bx < w; bx++) {
      const s0 = src[a]!;
      const s1 = src[a + 1]!;
      const s2 = src[b]!;
      const s3 = src[b + 1]!;
      bits |= s0 | s1 | s2 | s3;
      out[o + bx] = (s0 + s1 + s2 + s3 + bias) >>> 2;
      a += 2;
      b += 2;
    }
  }
  return { out, bits };
}

/**
 * shrinkFirst and renderGrey in one pass, for the commonest radiograph: 16-bit samples halved on the way to the
 * model's size, with the window in the file. Each 2 × 2 average is looked up in the window's table as it is made,
 * giving the same pixels as the two steps apart without writing and re-reading the shrunk frame. Undefined where
 * the two steps are needed (another factor, no window, padding, signed samples, bits above BitsStored).
 */
export function shrinkThroughWindow(frame: GreyFrame, size: { width: number; height: number }, scratch?: RenderScratch): { width: number; height: number; pixels: Uint8Array; window: WindowUsed } | undefined {
  const k = Math.floor(Math.min(frame.width / size.width, frame.height / size.height));
  if (k !== 2 || !(frame.samples instanceof Uint16Array)) return undefined;
  const table = windowTable(frame);
  if (!table) return undefined;
  const w = Math.floor(frame.width / 2);
  const h = Math.floor(frame.height / 2);
  const inverse = frame.inverse ?? frame.photometric === 'MONOCHROME1';
  // The rounding shrinkFirst uses for a 2 × 2 block.
  const bias = inverse ? 1 : 2;
  const pixels = scratch ? scratch.uint8(w * h) : new Uint8Array(w * h);
  const bits = halve16Through(frame.samples, frame.width, w, h, bias, table.table, pixels);
  if ((bits & ~((1 << frame.bitsStored) - 1)) !== 0) return undefined;
  return { width: w, height: h, pixels, window: table.window };
}

// halve16's loop again, with the lookup in its store: a table or callback parameter shared by both would cost the
// per-pixel indirection this pass exists to avoid.
function halve16Through(src: Uint16Array, stride: number, w: number, h: number, bias: number, table: Uint8Array, out: Uint8Array): number {
  let bits = 0;
  for (let by = 0; by < h; by++) {
    let a = 2 * by * stride;
    let b = a + stride;
    const o = by * w;
    for (let bx = 0; bx < w; bx++) {
      const s0 = src[a]!;
      const s1 = src[a + 1]!;
      const s2 = src[b]!;
      const s3 = src[b + 1]!;
      bits |= s0 | s1 | s2 | s3;
      out[o + bx] = table[(s0 + s1 + s2 + s3 + bias) >>> 2]!;
      a += 2;
      b += 2;
    }
  }
  return bits;
}

function blockAverage8(src: Uint8Array, stride: number, k: number, w: number, h: number, bias: number, out: Uint16Array): { out: Uint16Array; bits: number } {
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
    for (let bx = 0; bx < w; bx++) out[o + bx] = (sums[bx]! + bias) / area;
  }
  return { out, bits };
}

/** Renders a DICOM file to the PNG the model receives (or, with options, the picture a reviewer asked for). */
export async function renderInstance(file: string, label: string, options: RenderOptions = {}): Promise<RenderedImage> {
  const started = performance.now();
  // The whole file is read into memory: one larger than any image raddraft renders is refused unread.
  const limits = options.limits ?? DEFAULT_LIMITS;
  const handle = await open(file, 'r');
  let bytes: Buffer;
  try {
    const { size: fileBytes } = await handle.stat();
    const tooLarge = instanceTooLarge(label, 'the file', fileBytes, limits);
    if (tooLarge) throw new RenderError(tooLarge);
    bytes = options.scratch ? options.scratch.fileBytes(fileBytes) : Buffer.allocUnsafe(fileBytes);
    let at = 0;
    while (at < fileBytes) {
      const { bytesRead } = await handle.read(bytes, at, fileBytes - at, at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
    // A file cut short while it was read is rendered as far as it goes, which readFrame reports as truncated.
    bytes = bytes.subarray(0, at);
  } finally {
    await handle.close();
  }
  options.onStage?.('read', performance.now() - started);
  return renderBytes(bytes, label, options, started);
}

/**
 * Renders a DICOM Part 10 object held in memory. With `options.scratch` the bytes, the intermediate pixels and the
 * returned PNG's inputs share that scratch's buffers, so `bytes` may be one of them.
 */
export async function renderBytes(bytes: Buffer, label: string, options: RenderOptions = {}, started = performance.now()): Promise<RenderedImage> {
  let mark = performance.now();
  const lap = (stage: RenderStage) => {
    const now = performance.now();
    options.onStage?.(stage, now - mark);
    mark = now;
  };
  const limits = options.limits ?? DEFAULT_LIMITS;
  const tooLarge = instanceTooLarge(label, 'the object', bytes.length, limits);
  if (tooLarge) throw new RenderError(tooLarge);
  const sizeFor = options.size ?? ((w: number, h: number) => modelImageSize(w, h, QWEN_BUDGET));
  const { frame, source, transferSyntaxUid } = await readFrameShown(bytes, label, limits, options.exact ? undefined : sizeFor);
  lap('decode');
  if (options.window && options.window.width >= 1) frame.window = options.window;
  const size = sizeFor(source.width, source.height);
  let shown = options.exact ? undefined : shrinkThroughWindow(frame, size, options.scratch);
  if (!shown) {
    const grey = (options.exact ? undefined : shrinkFirst(frame, size, options.scratch)) ?? frame;
    shown = { width: grey.width, height: grey.height, ...renderGrey(grey, options.scratch?.uint8(grey.width * grey.height)) };
  }
  const { pixels, window } = shown;
  lap('greyscale');
  const png = await sharp(pixels, { raw: { width: shown.width, height: shown.height, channels: 1 } })
    // Bicubic (Catmull-Rom), the resampling of Qwen2.5-VL's image processor (Pillow's BICUBIC), which Lingshu was
    // trained and evaluated with; the evaluation sets are resized the same way (eval/sets/medevalkit.ts).
    .resize(size.width, size.height, { kernel: 'cubic', fit: 'fill' })
    // Without this sharp writes a grey picture as RGB: three times the bytes for the same image.
    .toColourspace('b-w')
    // The fastest deflate: the picture goes once over a hospital network to the model server, which decodes it
    // at once; level 3 made it a third smaller for half again the encoding time.
    .png({ compressionLevel: 1, adaptiveFiltering: false })
    .toBuffer();
  lap('encode');
  return {
    png,
    width: size.width,
    height: size.height,
    sourceWidth: source.width,
    sourceHeight: source.height,
    decodedWidth: frame.width,
    decodedHeight: frame.height,
    ms: performance.now() - started,
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
