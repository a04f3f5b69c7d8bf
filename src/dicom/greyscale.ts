/**
 * The grey-scale display pipeline of DICOM PS3.14 / PS3.3 C.11 for one frame: stored value → Modality LUT
 * (rescale slope/intercept) → VOI LUT (window, or a robust percentile window when the file has none) → MONOCHROME1
 * inversion → 8-bit. It is computed once per distinct stored value as a lookup table, so a 3000×3000 16-bit frame
 * costs one pass over its pixels.
 */
export interface GreyFrame {
  width: number;
  height: number;
  bitsStored: number;
  signed: boolean;
  /** Raw samples as stored: 8- or 16-bit words, high bits not yet masked. */
  samples: Uint8Array | Uint16Array;
  photometric: 'MONOCHROME1' | 'MONOCHROME2';
  rescaleSlope: number;
  rescaleIntercept: number;
  window?: { center: number; width: number };
  pixelPaddingValue?: number;
}

export interface WindowUsed {
  center: number;
  width: number;
  source: 'file' | 'percentile';
}

export interface Rendered8 {
  pixels: Uint8Array;
  window: WindowUsed;
}

/** Fraction of pixels clipped at each end by the fallback window. */
const PERCENTILE_CLIP = 0.005;

/**
 * Stored values as one array the later passes can index without a per-pixel branch: the high bits above BitsStored
 * masked off and, for PixelRepresentation 1, the sign extended. Unsigned data whose high bits are clear is used as
 * it is, without a copy.
 */
function storedValues(frame: GreyFrame): Uint8Array | Uint16Array | Int32Array {
  const n = frame.width * frame.height;
  const src = frame.samples;
  const mask = frame.bitsStored >= 32 ? 0xffffffff : (1 << frame.bitsStored) - 1;
  if (!frame.signed) {
    // One pass tells whether any sample has bits above BitsStored; usually none has, and the data is used as it is.
    let bits = 0;
    for (let i = 0; i < n; i++) bits |= src[i]!;
    if ((bits & ~mask) === 0) return src.length === n ? src : src.subarray(0, n);
    const masked = src instanceof Uint8Array ? new Uint8Array(n) : new Uint16Array(n);
    for (let i = 0; i < n; i++) masked[i] = src[i]! & mask;
    return masked;
  }
  const signBit = 1 << (frame.bitsStored - 1);
  const range = 1 << frame.bitsStored;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = src[i]! & mask;
    out[i] = v & signBit ? v - range : v;
  }
  return out;
}

function percentileWindow(hist: Uint32Array, min: number, counted: number, slope: number, intercept: number): WindowUsed {
  const clip = Math.floor(counted * PERCENTILE_CLIP);
  let lo = 0;
  for (let acc = 0; lo < hist.length - 1 && acc + hist[lo]! <= clip; lo++) acc += hist[lo]!;
  let hi = hist.length - 1;
  for (let acc = 0; hi > 0 && acc + hist[hi]! <= clip; hi--) acc += hist[hi]!;
  if (hi <= lo) hi = lo + 1;
  const a = (lo + min) * slope + intercept;
  const b = (hi + min) * slope + intercept;
  const low = Math.min(a, b);
  const high = Math.max(a, b);
  // Chosen so that the linear VOI function below maps `low` to 0 and `high` to 255.
  return { center: (low + high) / 2 + 0.5, width: high - low + 1, source: 'percentile' };
}

/** PS3.3 C.11.2.1.2.1, the LINEAR VOI function, scaled to 0..255. */
function linearVoi(x: number, center: number, width: number): number {
  const c = center - 0.5;
  const w = width - 1;
  if (w <= 0) return x <= c ? 0 : 255;
  if (x <= c - w / 2) return 0;
  if (x > c + w / 2) return 255;
  return ((x - c) / w + 0.5) * 255;
}

export function renderGrey(frame: GreyFrame): Rendered8 {
  const values = storedValues(frame);
  const n = values.length;
  const padding = frame.pixelPaddingValue;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (padding !== undefined && (padding === min || padding === max)) {
    // Padding sits at one end of the range; the window must come from the patient's pixels alone.
    min = Infinity;
    max = -Infinity;
    for (let i = 0; i < n; i++) {
      const v = values[i]!;
      if (v === padding) continue;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  if (min === Infinity) {
    min = 0;
    max = 0;
  }
  const { rescaleSlope: slope, rescaleIntercept: intercept } = frame;
  let window: WindowUsed;
  if (frame.window && frame.window.width >= 1) {
    window = { ...frame.window, source: 'file' };
  } else {
    const hist = new Uint32Array(max - min + 1);
    let counted = 0;
    for (let i = 0; i < n; i++) {
      const v = values[i]!;
      if (v === padding || v < min || v > max) continue;
      hist[v - min]! += 1;
      counted++;
    }
    window = percentileWindow(hist, min, counted, slope, intercept);
  }

  // One table entry per stored value from the lowest to the highest present, padding included (shown black:
  // it is outside the patient, whatever the photometric interpretation).
  const lo = padding !== undefined ? Math.min(min, padding) : min;
  const hi = padding !== undefined ? Math.max(max, padding) : max;
  const invert = frame.photometric === 'MONOCHROME1';
  const lut = new Uint8Array(hi - lo + 1);
  for (let s = lo; s <= hi; s++) {
    if (s === padding) continue;
    const y = Math.round(linearVoi(s * slope + intercept, window.center, window.width));
    lut[s - lo] = invert ? 255 - y : y;
  }
  const pixels = new Uint8Array(n);
  for (let i = 0; i < n; i++) pixels[i] = lut[values[i]! - lo]!;
  return { pixels, window };
}
