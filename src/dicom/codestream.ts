import { frameTooLarge, type ImageLimits } from './limits.js';

/**
 * What a compressed frame says about itself, read before it is handed to a decoder. The decoders size their
 * buffers from the codestream (JPEG and JPEG-LS start-of-frame, JPEG 2000 SIZ), not from the DICOM header, and
 * RLE decodes into whatever Rows × Columns says while filling short segments with zeros: a frame must show that it
 * fits the ceiling, agrees with its header and, for RLE, holds every byte, before it is decoded.
 */

export type CodestreamKind = 'rle' | 'jpeg' | 'jpeg-ls' | 'jpeg2000' | 'htj2k';

interface Size {
  width: number;
  height: number;
}

/** The size in a JPEG (ITU T.81) or JPEG-LS (T.87, SOF55) start-of-frame segment, read up to the first scan. */
function jpegSize(data: Uint8Array): Size | undefined {
  if (data[0] !== 0xff || data[1] !== 0xd8) return undefined;
  let o = 2;
  while (o + 4 <= data.length) {
    if (data[o] !== 0xff) return undefined;
    const marker = data[o + 1]!;
    if (marker === 0xff) {
      o += 1;
      continue;
    }
    if (marker === 0xda) return undefined;
    const sof = (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) || marker === 0xf7;
    if (sof) return o + 9 <= data.length ? { height: (data[o + 5]! << 8) | data[o + 6]!, width: (data[o + 7]! << 8) | data[o + 8]! } : undefined;
    o += 2 + ((data[o + 2]! << 8) | data[o + 3]!);
  }
  return undefined;
}

/** The image size in a JPEG 2000 or HTJ2K SIZ segment (ITU T.800 A.5.1): Xsiz − XOsiz by Ysiz − YOsiz. */
function j2kSize(data: Uint8Array): Size | undefined {
  // A raw codestream starts with SOC and SIZ; one wrapped in a JP2 file has them a few boxes in.
  const limit = Math.min(data.length - 24, 4096);
  for (let o = 0; o <= limit; o++) {
    if (data[o] === 0xff && data[o + 1] === 0x4f && data[o + 2] === 0xff && data[o + 3] === 0x51) {
      const view = new DataView(data.buffer, data.byteOffset + o, 24);
      return { width: view.getUint32(8) - view.getUint32(16), height: view.getUint32(12) - view.getUint32(20) };
    }
  }
  return undefined;
}

/**
 * The number of wavelet decomposition levels in a JPEG 2000 or HTJ2K main header's COD segment (ITU T.800 A.6.1:
 * Lcod, Scod, SGcod of four bytes, then SPcod, whose first byte is the count), or undefined when there is none
 * before the first tile. Level L of a codestream holds the image at 1/2^L of its size in each direction.
 */
export function j2kDecompositionLevels(data: Uint8Array): number | undefined {
  const limit = Math.min(data.length - 4, 4096);
  let o = 0;
  while (o <= limit && !(data[o] === 0xff && data[o + 1] === 0x4f)) o++;
  if (o > limit) return undefined;
  o += 2;
  // Main-header marker segments follow SOC, each with its length; the first tile (SOT, FF90) ends the search.
  while (o + 10 <= data.length) {
    if (data[o] !== 0xff || data[o + 1] === 0x90) return undefined;
    if (data[o + 1] === 0x52) return data[o + 9];
    o += 2 + ((data[o + 2]! << 8) | data[o + 3]!);
  }
  return undefined;
}

/** How many bytes a PackBits segment (PS3.5 G.3.1) between `start` and `end` decodes to, counting up to `want`. */
function packBitsLength(data: Uint8Array, start: number, end: number, want: number): number {
  let o = start;
  let n = 0;
  while (o < end && n < want) {
    const h = data[o]!;
    if (h < 128) {
      const literal = Math.min(h + 1, end - o - 1);
      n += literal;
      o += 1 + literal;
    } else if (h > 128) {
      if (o + 1 >= end) break;
      n += 257 - h;
      o += 2;
    } else {
      o += 1;
    }
  }
  return n;
}

/** Why an RLE frame (PS3.5 G.5) cannot be decoded in full, or undefined when every segment is whole. */
export function rleFault(data: Uint8Array, rows: number, columns: number, segments: number): string | undefined {
  if (data.length < 64) return `the RLE frame has ${data.length} bytes, fewer than its 64-byte header: the frame is truncated`;
  const view = new DataView(data.buffer, data.byteOffset, 64);
  const count = view.getUint32(0, true);
  if (count !== segments) return `the RLE header lists ${count} segment(s), but SamplesPerPixel × BitsAllocated/8 needs ${segments}`;
  const offsets = Array.from({ length: count }, (_, i) => view.getUint32(4 + 4 * i, true));
  for (const [i, start] of offsets.entries()) {
    if (start >= data.length) return `RLE segment ${i + 1} of ${count} starts at byte ${start}, past the end of the frame's ${data.length} bytes: the frame is truncated`;
    if (start < 64 || (i > 0 && start <= offsets[i - 1]!)) return `the RLE header's offset of segment ${i + 1} of ${count} (${start}) lies inside the header or before the segment ahead of it`;
  }
  const want = rows * columns;
  for (const [i, start] of offsets.entries()) {
    const end = offsets[i + 1] ?? data.length;
    const produced = packBitsLength(data, start, end, want);
    if (produced < want) {
      return `RLE segment ${i + 1} of ${count} decodes to ${produced} bytes, but Rows × Columns = ${rows} × ${columns} needs ${want}: the frame is truncated`;
    }
  }
  return undefined;
}

/**
 * Why a compressed frame must not be decoded: its codestream is larger than the ceiling, or another size than the
 * header's. Undefined when it may be, including when no size is found (the decoder then names the fault).
 */
export function codestreamFault(kind: Exclude<CodestreamKind, 'rle'>, name: string, data: Uint8Array, rows: number, columns: number, limits: ImageLimits): string | undefined {
  const size = kind === 'jpeg' || kind === 'jpeg-ls' ? jpegSize(data) : j2kSize(data);
  if (!size) return undefined;
  const tooLarge = frameTooLarge(size.height, size.width, limits, `the ${name} stream's height × width`);
  if (tooLarge) return tooLarge;
  // A JPEG height of 0 is given later, in a DNL segment; the decoded length is checked after decoding.
  if (size.width !== columns || (size.height !== 0 && size.height !== rows)) {
    return `the ${name} stream is ${size.width} × ${size.height} pixels, but Columns × Rows say ${columns} × ${rows}`;
  }
  return undefined;
}
