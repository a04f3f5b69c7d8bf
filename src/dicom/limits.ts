/**
 * The sizes raddraft accepts before it allocates, inflates or decodes anything. A header is only a claim: an
 * 870-byte file can claim 40,000 × 40,000 pixels, and a 1 MB deflated data set can inflate to gigabytes. Every size
 * is checked against these ceilings first, so an image that breaks them fails its job with the reason instead of
 * taking the process's memory.
 */

export interface ImageLimits {
  /** Most pixels in one frame (Rows × Columns); RADDRAFT_MAX_PIXELS. */
  maxPixels: number;
}

/** 100 megapixels: a 10,000 × 10,000 frame, several times the largest detector a chest radiograph comes from. */
export const DEFAULT_MAX_PIXELS = 100_000_000;

export const DEFAULT_LIMITS: ImageLimits = { maxPixels: DEFAULT_MAX_PIXELS };

/**
 * Bytes a data set may hold besides its pixel data: headers are kilobytes, and icons, overlays and private blocks
 * bring a few to megabytes. An inflate is allowed this much on top of what the header declares.
 */
export const DATA_SET_ALLOWANCE = 16 * 2 ** 20;

/**
 * Bytes of pixel data, all frames together, that an inflate may produce: four bytes for each pixel of a frame at
 * the ceiling (a 16-bit frame twice over, or an 8-bit colour one with room to spare), so that NumberOfFrames
 * cannot lift the bound.
 */
export function maxPixelDataBytes(limits: ImageLimits): number {
  return 4 * limits.maxPixels;
}

/** The most bytes raddraft reads for one image: the pixel data at the ceiling and twice the allowance for the rest. */
export function maxInstanceBytes(limits: ImageLimits): number {
  return maxPixelDataBytes(limits) + 2 * DATA_SET_ALLOWANCE;
}

const INSTANCE_CEILING = '4 bytes × RADDRAFT_MAX_PIXELS, and 32 MiB for the other elements';

/**
 * Why an instance of `bytes` bytes (`what`: the file, the object) is refused unread, or undefined when it is not;
 * `arriving` for one still arriving, of which only a lower bound is known.
 */
export function instanceTooLarge(label: string, what: string, bytes: number, limits: ImageLimits, arriving = false): string | undefined {
  const most = maxInstanceBytes(limits);
  if (bytes <= most) return undefined;
  return arriving
    ? `${label}: ${what} has more than the ${most} bytes raddraft reads for one image (${INSTANCE_CEILING})`
    : `${label}: ${what} has ${bytes} bytes, more than the ${most} raddraft reads for one image (${INSTANCE_CEILING})`;
}

/** Why a frame of `columns` × `rows` (from the header or a codestream) is refused, or undefined when it is not. */
export function frameTooLarge(rows: number, columns: number, limits: ImageLimits, whose = 'Rows × Columns'): string | undefined {
  const pixels = rows * columns;
  if (pixels <= limits.maxPixels) return undefined;
  return `${whose} = ${rows} × ${columns} = ${pixels} pixels in a frame, more than RADDRAFT_MAX_PIXELS (${limits.maxPixels})`;
}
