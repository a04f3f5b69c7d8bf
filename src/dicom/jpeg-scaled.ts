import sharp from 'sharp';
import type { Size } from './sub-resolution.js';

/**
 * Decoding an 8-bit JPEG at 1/2, 1/4 or 1/8 of its size by DCT scaling: libjpeg-turbo computes each 8 × 8 block's
 * inverse transform at 4 × 4, 2 × 2 or 1 × 1 from its lowest frequencies, skipping the rest of the work of a whole
 * decode. dcmjs-codecs' libjpeg-turbo build does not offer the scaling; libvips's JPEG loader does (its shrink-on-load,
 * which sharp applies when it is asked for exactly that size).
 */

/**
 * The largest scale factor whose picture still covers `target`, among those that divide the frame exactly (libjpeg
 * rounds a scaled side up, and sharp chooses shrink-on-load only for a whole factor); 1 when none helps.
 */
export function jpegScaleFor(size: Size, target: Size): number {
  for (const factor of [8, 4, 2]) {
    if (size.width % factor !== 0 || size.height % factor !== 0) continue;
    if (size.width / factor >= target.width && size.height / factor >= target.height) return factor;
  }
  return 1;
}

/**
 * An 8-bit grey-scale JPEG frame decoded at 1/`factor` of its size; undefined when the decoder does not give that
 * picture as expected (the caller then decodes the frame whole, which names any fault in the data).
 */
export async function decodeJpegScaled(encoded: Uint8Array, size: Size, factor: number): Promise<{ data: Uint8Array; width: number; height: number } | undefined> {
  const width = size.width / factor;
  const height = size.height / factor;
  try {
    const { data, info } = await sharp(encoded, { failOn: 'warning', sequentialRead: true })
      .resize(width, height, { kernel: 'nearest', fit: 'fill', fastShrinkOnLoad: true })
      .toColourspace('b-w')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.width !== width || info.height !== height || info.channels !== 1 || data.length !== width * height) return undefined;
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width, height };
  } catch {
    return undefined;
  }
}
