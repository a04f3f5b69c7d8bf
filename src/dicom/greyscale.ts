/**
 * The grey-scale display pipeline of DICOM PS3.14 / PS3.3 C.11 for one frame: stored value → Modality LUT (rescale
 * slope/intercept, or a Modality LUT Sequence) → VOI LUT (window with the LINEAR, LINEAR_EXACT or SIGMOID function,
 * or a VOI LUT Sequence, or a robust percentile window when the file has neither) → presentation inversion
 * (MONOCHROME1, Presentation LUT Shape INVERSE) → 8-bit. Pixel padding is left out of the window and shown black.
 * The pipeline is computed once per distinct stored value as a lookup table, so a 3000 × 3000 16-bit frame costs
 * one pass over its pixels.
 */
export interface LookupTable {
  /** The stored (or modality) value that maps to the first entry; lower values map to it, higher to the last. */
  first: number;
  data: ArrayLike<number>;
  /** Bits per entry: output range 0 .. 2^bits − 1. */
  bits: number;
}

export type VoiFunction = 'LINEAR' | 'LINEAR_EXACT' | 'SIGMOID';

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
  modalityLut?: LookupTable;
  window?: { center: number; width: number };
  voiFunction?: VoiFunction;
  voiLut?: LookupTable;
  /** True to show high values dark: MONOCHROME1, or Presentation LUT Shape INVERSE. */
  inverse?: boolean;
  pixelPaddingValue?: number;
  /** With a padding value, the other end of the padding range (Pixel Padding Range Limit). */
  pixelPaddingLimit?: number;
}

export interface WindowUsed {
  center: number;
  width: number;
  source: 'file' | 'percentile' | 'voi-lut';
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

function lookup(table: LookupTable, value: number): number {
  const i = Math.round(value) - table.first;
  return table.data[i < 0 ? 0 : i >= table.data.length ? table.data.length - 1 : i]!;
}

/** PS3.3 C.11.1: the Modality LUT, from a table or from rescale slope and intercept. */
function modality(frame: GreyFrame): (s: number) => number {
  const lut = frame.modalityLut;
  if (lut) return (s) => lookup(lut, s);
  const { rescaleSlope: slope, rescaleIntercept: intercept } = frame;
  return (s) => s * slope + intercept;
}

function percentileWindow(hist: Uint32Array, min: number, counted: number, toModality: (s: number) => number): WindowUsed {
  const clip = Math.floor(counted * PERCENTILE_CLIP);
  let lo = 0;
  for (let acc = 0; lo < hist.length - 1 && acc + hist[lo]! <= clip; lo++) acc += hist[lo]!;
  let hi = hist.length - 1;
  for (let acc = 0; hi > 0 && acc + hist[hi]! <= clip; hi--) acc += hist[hi]!;
  if (hi <= lo) hi = lo + 1;
  const a = toModality(lo + min);
  const b = toModality(hi + min);
  const low = Math.min(a, b);
  const high = Math.max(a, b);
  // Chosen so that the LINEAR function maps `low` to 0 and `high` to 255.
  return { center: (low + high) / 2 + 0.5, width: high - low + 1, source: 'percentile' };
}

/** PS3.3 C.11.2.1.2: the VOI LUT functions, scaled to 0..255. */
function voiFunction(kind: VoiFunction, center: number, width: number): (x: number) => number {
  if (kind === 'SIGMOID') return (x) => 255 / (1 + Math.exp((-4 * (x - center)) / width));
  if (kind === 'LINEAR_EXACT') {
    return (x) => (x <= center - width / 2 ? 0 : x > center + width / 2 ? 255 : ((x - center) / width + 0.5) * 255);
  }
  const c = center - 0.5;
  const w = width - 1;
  return (x) => {
    if (w <= 0) return x <= c ? 0 : 255;
    if (x <= c - w / 2) return 0;
    if (x > c + w / 2) return 255;
    return ((x - c) / w + 0.5) * 255;
  };
}

/** The frame as 8-bit display values, written into `out` when given (at least width × height bytes). */
/** The 8-bit display value of every stored value from `lo` to `hi`; padding values show black. */
function displayTable(frame: GreyFrame, lo: number, hi: number, voi: (m: number) => number, isPadding: (v: number) => boolean = () => false): Uint8Array {
  const toModality = modality(frame);
  const invert = frame.inverse ?? frame.photometric === 'MONOCHROME1';
  const lut = new Uint8Array(hi - lo + 1);
  for (let s = lo; s <= hi; s++) {
    if (isPadding(s)) continue;
    // Inverted before it is truncated to an integer, so that an image and its inverted twin come out the same;
    // truncated as DCMTK does, since the standard leaves the rounding open and agreeing with a reference viewer
    // to the grey level makes real differences stand out.
    const y = voi(toModality(s));
    lut[s - lo] = Math.min(255, Math.max(0, Math.floor(invert ? 255 - y : y)));
  }
  return lut;
}

/**
 * For a frame whose window is known before its pixels are read (in the file, or asked for) and that has no padding
 * or signed samples: the display value of every stored value BitsStored can hold, so that a pass shrinking the frame
 * can look each averaged value up as it goes; what renderGrey would give for the same values. Undefined otherwise.
 */
export function windowTable(frame: GreyFrame): { table: Uint8Array; window: WindowUsed } | undefined {
  if (!frame.window || frame.window.width < 1 || frame.signed || frame.pixelPaddingValue !== undefined || frame.bitsStored > 16) return undefined;
  const voi = voiFunction(frame.voiFunction ?? 'LINEAR', frame.window.center, frame.window.width);
  return { table: displayTable(frame, 0, 2 ** frame.bitsStored - 1, voi), window: { ...frame.window, source: 'file' } };
}

export function renderGrey(frame: GreyFrame, out?: Uint8Array): Rendered8 {
  const values = storedValues(frame);
  const n = values.length;
  const padLo = frame.pixelPaddingValue === undefined ? undefined : Math.min(frame.pixelPaddingValue, frame.pixelPaddingLimit ?? frame.pixelPaddingValue);
  const padHi = frame.pixelPaddingValue === undefined ? undefined : Math.max(frame.pixelPaddingValue, frame.pixelPaddingLimit ?? frame.pixelPaddingValue);
  const isPadding = (v: number) => padLo !== undefined && v >= padLo && v <= padHi!;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const allMin = min;
  const allMax = max;
  if (padLo !== undefined) {
    // The window must come from the patient's pixels alone.
    min = Infinity;
    max = -Infinity;
    for (let i = 0; i < n; i++) {
      const v = values[i]!;
      if (isPadding(v)) continue;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  if (min === Infinity) {
    min = allMin === Infinity ? 0 : allMin;
    max = allMax === -Infinity ? 0 : allMax;
  }
  const toModality = modality(frame);
  let window: WindowUsed;
  let voi: (m: number) => number;
  if (frame.voiLut && !frame.window) {
    const table = frame.voiLut;
    const scale = 255 / (2 ** table.bits - 1);
    voi = (m) => lookup(table, m) * scale;
    window = { center: table.first + table.data.length / 2, width: table.data.length, source: 'voi-lut' };
  } else {
    if (frame.window && frame.window.width >= 1) {
      window = { ...frame.window, source: 'file' };
    } else {
      const hist = new Uint32Array(max - min + 1);
      let counted = 0;
      for (let i = 0; i < n; i++) {
        const v = values[i]!;
        if (v < min || v > max || isPadding(v)) continue;
        hist[v - min]! += 1;
        counted++;
      }
      window = percentileWindow(hist, min, counted, toModality);
    }
    voi = voiFunction(frame.voiFunction ?? 'LINEAR', window.center, window.width);
  }

  // One table entry per stored value present; padding shows black, whatever the photometric interpretation.
  const lo = Math.min(min, allMin === Infinity ? min : allMin);
  const hi = Math.max(max, allMax === -Infinity ? max : allMax);
  const lut = displayTable(frame, lo, hi, voi, isPadding);
  const pixels = out ? out.subarray(0, n) : new Uint8Array(n);
  for (let i = 0; i < n; i++) pixels[i] = lut[values[i]! - lo]!;
  return { pixels, window };
}
