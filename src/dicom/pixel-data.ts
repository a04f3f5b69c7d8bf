import { constants, inflateRawSync } from 'node:zlib';
import { DATA_SET_ALLOWANCE, DEFAULT_LIMITS, maxPixelDataBytes, type ImageLimits } from './limits.js';

/**
 * Finds the Pixel Data element of a Part 10 file by walking the data set's element headers, and takes the first
 * frame's bytes out of it without copying. dcmjs fills a value that runs past the end of the file with zeros and
 * splits encapsulated pixel data by fragment rather than by frame; walking the headers ourselves is what lets a
 * truncated file be told apart from a dark image, and a frame in several fragments be put back together.
 */

const IMPLICIT_LE = '1.2.840.10008.1.2';
const EXPLICIT_BE = '1.2.840.10008.1.2.2';
export const EXPLICIT_LE = '1.2.840.10008.1.2.1';
export const DEFLATED = '1.2.840.10008.1.2.1.99';
const UNDEFINED_LENGTH = 0xffffffff;
/** VRs whose explicit-VR header has two reserved bytes and a 32-bit length (PS3.5 7.1.2). */
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

export class PixelDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PixelDataError';
  }
}

export type PixelDataElement =
  | { encapsulated: false; value: Uint8Array }
  | { encapsulated: true; offsets: number[]; fragments: Uint8Array[] };

class Truncated extends Error {}

class Walker {
  private readonly view: DataView;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly implicit: boolean,
    private readonly little: boolean,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private need(offset: number, length: number): void {
    if (offset + length > this.bytes.length) throw new Truncated();
  }

  private u16(o: number): number {
    this.need(o, 2);
    return this.view.getUint16(o, this.little);
  }

  private u32(o: number): number {
    this.need(o, 4);
    return this.view.getUint32(o, this.little);
  }

  tag(o: number): number {
    return ((this.u16(o) << 16) | this.u16(o + 2)) >>> 0;
  }

  /** An element header at `o`: its tag, value length and where the value starts. */
  header(o: number): { tag: number; length: number; value: number; vr?: string } {
    const tag = this.tag(o);
    if (tag >>> 16 === 0xfffe) return { tag, length: this.u32(o + 4), value: o + 8 };
    if (this.implicit) return { tag, length: this.u32(o + 4), value: o + 8 };
    this.need(o + 4, 2);
    const vr = String.fromCharCode(this.bytes[o + 4]!, this.bytes[o + 5]!);
    if (LONG_VRS.has(vr)) return { tag, length: this.u32(o + 8), value: o + 12, vr };
    return { tag, length: this.u16(o + 6), value: o + 8, vr };
  }

  /** Skips an undefined-length value; one of VR UN holds an implicit VR little-endian sequence (PS3.5 6.2.2). */
  private skipUndefined(h: { value: number; vr?: string }): number {
    if (h.vr === 'UN' && !this.implicit) return new Walker(this.bytes, true, true).skipSequence(h.value);
    return this.skipSequence(h.value);
  }

  /** Skips a sequence of undefined length starting at its first item; returns the offset after its delimiter. */
  skipSequence(o: number): number {
    for (;;) {
      const h = this.header(o);
      if (h.tag === 0xfffee0dd) return h.value;
      if (h.tag !== 0xfffee000) throw new PixelDataError(`an item tag was expected inside a sequence at byte ${o}`);
      o = h.length === UNDEFINED_LENGTH ? this.skipItem(h.value) : h.value + h.length;
    }
  }

  private skipItem(o: number): number {
    for (;;) {
      const h = this.header(o);
      if (h.tag === 0xfffee00d) return h.value;
      o = h.length === UNDEFINED_LENGTH ? this.skipUndefined(h) : h.value + h.length;
    }
  }

  /**
   * Walks the top-level elements from `o`: the offset of the Pixel Data element, `none` when an element after it
   * (or the end of the bytes, at an element boundary) comes first. Throws Truncated when the bytes end inside one.
   */
  locatePixelData(o: number): number | 'none' {
    while (o < this.bytes.length) {
      const h = this.header(o);
      if (h.tag === 0x7fe00010) return o;
      if (h.tag > 0x7fe00010) return 'none';
      o = h.length === UNDEFINED_LENGTH ? this.skipUndefined(h) : h.value + h.length;
      if (o > this.bytes.length) throw new Truncated();
    }
    return 'none';
  }

  /** The Pixel Data element found from `o`. */
  pixelData(o: number): PixelDataElement | undefined {
    const at = this.locatePixelData(o);
    if (at === 'none') return undefined;
    const h = this.header(at);
    if (h.length !== UNDEFINED_LENGTH) {
      const held = this.bytes.length - h.value;
      if (h.length > held) throw new PixelDataError(`Pixel Data is truncated: the element declares ${h.length} bytes, the file holds ${held}`);
      return { encapsulated: false, value: this.bytes.subarray(h.value, h.value + h.length) };
    }
    return this.items(h.value);
  }

  /** The Basic Offset Table and fragments of encapsulated pixel data (PS3.5 A.4). */
  private items(o: number): PixelDataElement {
    let offsets: number[] | undefined;
    const fragments: Uint8Array[] = [];
    try {
      this.itemsInto(o, fragments, (table) => (offsets = table));
    } catch (err) {
      if (!(err instanceof Truncated)) throw err;
      const where = offsets === undefined ? 'the Basic Offset Table' : `fragment ${fragments.length + 1}`;
      throw new PixelDataError(`Pixel Data is truncated: the file ends inside ${where} of the encapsulated pixel data`);
    }
    return { encapsulated: true, offsets: offsets ?? [], fragments };
  }

  private itemsInto(o: number, fragments: Uint8Array[], setOffsets: (table: number[]) => void): void {
    let first = true;
    for (;;) {
      const h = this.header(o);
      if (h.tag === 0xfffee0dd) break;
      if (h.tag !== 0xfffee000) throw new PixelDataError(`an item tag was expected in the encapsulated Pixel Data at byte ${o}`);
      this.need(h.value, h.length);
      const value = this.bytes.subarray(h.value, h.value + h.length);
      if (first) {
        const table: number[] = [];
        for (let i = 0; i + 4 <= value.length; i += 4) table.push(this.u32(h.value + i));
        setOffsets(table);
        first = false;
      } else {
        fragments.push(value);
      }
      o = h.value + h.length;
    }
  }
}

export interface FileMeta {
  transferSyntaxUid?: string;
  sopInstanceUid?: string;
  /** Offset of the data set after the File Meta Information group (PS3.10 7.1). */
  dataSetStart: number;
}

/** The File Meta Information group of a Part 10 file (always explicit VR little endian), walked without a parser. */
export function readFileMeta(bytes: Uint8Array): FileMeta {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const meta: FileMeta = { dataSetStart: 132 };
  let o = 132;
  while (o + 8 <= bytes.length && view.getUint16(o, true) === 0x0002) {
    const element = view.getUint16(o + 2, true);
    const vr = String.fromCharCode(bytes[o + 4]!, bytes[o + 5]!);
    const long = LONG_VRS.has(vr);
    const length = long ? (o + 12 <= bytes.length ? view.getUint32(o + 8, true) : 0) : view.getUint16(o + 6, true);
    const value = o + (long ? 12 : 8);
    const text = () => Buffer.from(bytes.buffer, bytes.byteOffset + value, Math.min(length, bytes.length - value)).toString('latin1').replace(/[\0 ]+$/, '');
    if (element === 0x0010) meta.transferSyntaxUid = text();
    if (element === 0x0003) meta.sopInstanceUid = text();
    o = value + length;
  }
  meta.dataSetStart = o;
  return meta;
}

/** A data set in explicit VR little endian behind a File Meta Information group that names only that syntax. */
function asExplicitPart10(dataSet: Buffer): Buffer {
  const uid = Buffer.from(`${EXPLICIT_LE}\0`, 'latin1');
  const header = Buffer.alloc(132 + 12 + 8 + uid.length);
  header.write('DICM', 128, 'latin1');
  // (0002,0000) UL File Meta Information Group Length, then (0002,0010) UI Transfer Syntax UID.
  header.writeUInt16LE(0x0002, 132);
  header.writeUInt16LE(0x0000, 134);
  header.write('UL', 136, 'latin1');
  header.writeUInt16LE(4, 138);
  header.writeUInt32LE(8 + uid.length, 140);
  header.writeUInt16LE(0x0002, 144);
  header.writeUInt16LE(0x0010, 146);
  header.write('UI', 148, 'latin1');
  header.writeUInt16LE(uid.length, 150);
  uid.copy(header, 152);
  return Buffer.concat([header, dataSet]);
}

function isTooLarge(err: unknown): boolean {
  return (err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE';
}

/** The output of a prefix of a deflate stream, or undefined when it would exceed `limit` bytes. */
function inflatePrefix(input: Uint8Array, limit: number): Buffer | undefined {
  try {
    // A sync flush instead of a finish: a prefix ends mid-stream, and what it holds so far is what is wanted.
    return inflateRawSync(input, { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: limit });
  } catch (err) {
    if (isTooLarge(err)) return undefined;
    throw new PixelDataError(`the deflated data set cannot be inflated (${(err as Error).message})`);
  }
}

/** Whether an inflated prefix holds the elements before Pixel Data and Pixel Data's own header. */
function holdsHead(dataSet: Buffer, whole: boolean): boolean {
  try {
    return new Walker(dataSet, false, true).locatePixelData(0) !== 'none' || whole;
  } catch (err) {
    // A whole data set that ends early is left for the parsers to report as truncated.
    if (err instanceof Truncated) return whole;
    throw err;
  }
}

/**
 * The start of a deflated file's data set (PS3.5 A.5), inflated only as far as the elements before Pixel Data and
 * Pixel Data's header, as a file in explicit VR little endian: what a header parser needs, without inflating the
 * pixels. Longer prefixes of the deflated bytes are tried until one holds them; none may inflate past `allowance`.
 */
export function inflateDeflatedHead(file: Uint8Array, meta: FileMeta, allowance = DATA_SET_ALLOWANCE): Buffer {
  const input = file.subarray(meta.dataSetStart);
  let good = 0;
  let bad = Infinity;
  let length = Math.min(input.length, 4096);
  for (;;) {
    const out = inflatePrefix(input.subarray(0, length), allowance);
    if (out && holdsHead(out, length === input.length)) return asExplicitPart10(out);
    if (out) good = length;
    else bad = length;
    // Grow fourfold until a prefix inflates too far, then close in between the last two.
    length = bad === Infinity ? Math.min(input.length, length * 4) : Math.floor((good + bad) / 2);
    if (length <= good) throw new PixelDataError(`the deflated data set inflates past ${allowance} bytes before its Pixel Data`);
  }
}

/**
 * A deflated file (PS3.5 A.5) as the same file in explicit VR little endian: the data set inflated once, natively,
 * behind a File Meta Information group that names only that transfer syntax. Parsers then read it without
 * inflating it again (dcmjs would, in JavaScript, several times slower than zlib). The inflate stops at
 * `bound.maxBytes`: what the header declares, with an allowance for the other elements.
 */
export function inflateDeflatedFile(file: Uint8Array, meta: FileMeta, bound: { maxBytes: number; declared: string }): Buffer {
  let dataSet: Buffer;
  try {
    dataSet = inflateRawSync(file.subarray(meta.dataSetStart), { maxOutputLength: bound.maxBytes });
  } catch (err) {
    if (isTooLarge(err)) throw new PixelDataError(`the deflated data set inflates past ${bound.maxBytes} bytes, more than its header declares (${bound.declared})`);
    throw new PixelDataError(`the deflated data set cannot be inflated (${(err as Error).message})`);
  }
  return asExplicitPart10(dataSet);
}

/**
 * Bytes of a data set before its Pixel Data element (all of them when it has none), or undefined when the bytes
 * given end inside an element first. What a header parser would have to hold.
 */
export function headerBytes(file: Uint8Array, meta: FileMeta, transferSyntaxUid: string | undefined): number | undefined {
  const walker = new Walker(file, transferSyntaxUid === IMPLICIT_LE, transferSyntaxUid !== EXPLICIT_BE);
  try {
    const at = walker.locatePixelData(meta.dataSetStart);
    return (at === 'none' ? file.length : at) - meta.dataSetStart;
  } catch (err) {
    if (err instanceof Truncated) return undefined;
    throw err;
  }
}

/**
 * Refuses a data set whose elements before Pixel Data are larger than `allowance`, before any parser builds them in
 * memory. `file` may be only the start of the file; undefined `headerBytes` then counts all of it.
 */
export function checkHeaderBytes(file: Uint8Array, meta: FileMeta, transferSyntaxUid: string | undefined, allowance = DATA_SET_ALLOWANCE): void {
  const known = headerBytes(file, meta, transferSyntaxUid);
  const bytes = known ?? file.length - meta.dataSetStart;
  if (bytes > allowance) throw new PixelDataError(`the elements before Pixel Data take ${known === undefined ? 'more than ' : ''}${bytes} bytes, more than the ${allowance} raddraft reads`);
}

/**
 * The Pixel Data element of a Part 10 file, or undefined when it has none. A file that ends inside the element,
 * or before it, is reported as truncated.
 */
export function readPixelData(file: Uint8Array, transferSyntaxUid: string, limits: ImageLimits = DEFAULT_LIMITS): PixelDataElement | undefined {
  const meta = readFileMeta(file);
  if (transferSyntaxUid === DEFLATED) {
    const maxBytes = DATA_SET_ALLOWANCE + maxPixelDataBytes(limits);
    return readPixelData(inflateDeflatedFile(file, meta, { maxBytes, declared: `at most ${maxPixelDataBytes(limits)} bytes of pixel data under RADDRAFT_MAX_PIXELS` }), EXPLICIT_LE);
  }
  const walker = new Walker(file, transferSyntaxUid === IMPLICIT_LE, transferSyntaxUid !== EXPLICIT_BE);
  try {
    return walker.pixelData(meta.dataSetStart);
  } catch (err) {
    if (err instanceof Truncated) throw new PixelDataError('the file is truncated before the Pixel Data element');
    throw err;
  }
}

/** JPEG EOI and JPEG 2000 EOC are both FFD9; a fragment ending with it ends a frame (trailing pad byte allowed). */
function endsCodestream(fragment: Uint8Array): boolean {
  const n = fragment.length;
  return (n >= 2 && fragment[n - 2] === 0xff && fragment[n - 1] === 0xd9) || (n >= 3 && fragment[n - 3] === 0xff && fragment[n - 2] === 0xd9 && fragment[n - 1] === 0);
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  return new Uint8Array(Buffer.concat(parts));
}

/**
 * The fragments of the first frame (PS3.5 A.4): those before the second Basic Offset Table entry; without a table,
 * all of them for a single frame, one per frame when the counts agree, otherwise up to the end of the first codestream.
 */
export function firstFrameFragments(element: Extract<PixelDataElement, { encapsulated: true }>, frames: number): Uint8Array {
  const { offsets, fragments } = element;
  if (fragments.length === 0) throw new PixelDataError('the encapsulated Pixel Data has no fragments');
  if (frames <= 1) return concat(fragments);
  if (offsets.length > 1) {
    const parts: Uint8Array[] = [];
    // Offsets count from the first byte of the first fragment's item tag; each item adds an 8-byte header.
    let position = 0;
    for (const f of fragments) {
      if (position >= offsets[1]!) break;
      parts.push(f);
      position += 8 + f.length;
    }
    return concat(parts);
  }
  if (fragments.length === frames) return fragments[0]!;
  const parts: Uint8Array[] = [];
  for (const f of fragments) {
    parts.push(f);
    if (endsCodestream(f)) break;
  }
  return concat(parts);
}
