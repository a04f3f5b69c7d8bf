/**
 * The image size Qwen2.5-VL (Lingshu's base) works at: each side a multiple of the 28-pixel patch, the pixel count
 * within [minPixels, maxPixels], aspect ratio kept. This mirrors the model processor's `smart_resize`, so the image
 * raddraft sends is the image the model sees — the server does not resample it again.
 */
export interface ResizeBudget {
  factor: number;
  minPixels: number;
  maxPixels: number;
}

export const QWEN_BUDGET: ResizeBudget = { factor: 28, minPixels: 56 * 56, maxPixels: 1280 * 28 * 28 };

export function modelImageSize(width: number, height: number, budget: ResizeBudget = QWEN_BUDGET): { width: number; height: number } {
  const { factor, minPixels, maxPixels } = budget;
  if (!(width > 0 && height > 0)) throw new RangeError(`image size ${width}×${height} is not positive`);
  if (Math.max(width, height) / Math.min(width, height) > 200) {
    throw new RangeError(`image aspect ratio ${width}×${height} exceeds 200:1`);
  }
  let h = Math.max(factor, Math.round(height / factor) * factor);
  let w = Math.max(factor, Math.round(width / factor) * factor);
  if (h * w > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    h = Math.max(factor, Math.floor(height / beta / factor) * factor);
    w = Math.max(factor, Math.floor(width / beta / factor) * factor);
  } else if (h * w < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    h = Math.ceil((height * beta) / factor) * factor;
    w = Math.ceil((width * beta) / factor) * factor;
  }
  return { width: w, height: h };
}
