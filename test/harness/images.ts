import sharp from 'sharp';

/** Mean grey level of a square (side = `size` × width) centred at fractional coordinates of an 8-bit image. */
export async function regionMean(png: Buffer, cx: number, cy: number, size = 0.06): Promise<number> {
  const { data, info } = await sharp(png).greyscale().raw().toBuffer({ resolveWithObject: true });
  const half = Math.max(1, Math.round((size * info.width) / 2));
  const x0 = Math.round(cx * info.width);
  const y0 = Math.round(cy * info.height);
  let sum = 0;
  let n = 0;
  for (let y = y0 - half; y <= y0 + half; y++) {
    for (let x = x0 - half; x <= x0 + half; x++) {
      sum += data[(y * info.width + x) * info.channels]!;
      n++;
    }
  }
  return sum / n;
}
