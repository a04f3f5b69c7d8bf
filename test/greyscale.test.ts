import { describe, expect, it } from '@jest/globals';
import { renderGrey, type GreyFrame } from '../src/dicom/greyscale.js';
import { modelImageSize } from '../src/dicom/resize.js';

function frame(values: number[], over: Partial<GreyFrame> = {}): GreyFrame {
  return {
    width: values.length, height: 1, bitsStored: 12, signed: false, samples: Uint16Array.from(values),
    photometric: 'MONOCHROME2', rescaleSlope: 1, rescaleIntercept: 0, ...over,
  };
}

describe('renderGrey', () => {
  it('applies the LINEAR VOI function of PS3.3 C.11.2.1.2.1', () => {
    // Window centre 2048, width 4096: x <= 0 -> 0, x > 4095 -> 255, in between ((x - 2047.5) / 4095 + 0.5) * 255.
    const { pixels, window } = renderGrey(frame([0, 1024, 2048, 3072, 4095], { window: { center: 2048, width: 4096 } }));
    expect(window).toEqual({ center: 2048, width: 4096, source: 'file' });
    expect([...pixels]).toEqual([0, 64, 128, 191, 255]);
  });

  it('applies rescale slope and intercept before the window', () => {
    const { pixels } = renderGrey(frame([0, 1000, 2000], { rescaleSlope: 2, rescaleIntercept: -1000, window: { center: 1000, width: 2000 } }));
    expect([...pixels]).toEqual([0, 128, 255]);
  });

  it('inverts MONOCHROME1 so that low stored values are bright', () => {
    const mono2 = renderGrey(frame([100, 4000], { window: { center: 2048, width: 4096 } })).pixels;
    const mono1 = renderGrey(frame([100, 4000], { window: { center: 2048, width: 4096 }, photometric: 'MONOCHROME1' })).pixels;
    expect([...mono1]).toEqual([...mono2].map((v) => 255 - v));
  });

  it('masks bits above BitsStored and sign-extends signed pixels', () => {
    // 0xF800 has garbage above bit 11; as 12-bit signed, 0x800 is -2048.
    const { pixels } = renderGrey(frame([0xf800, 0x7ff], { signed: true, window: { center: 0, width: 4096 } }));
    expect([...pixels]).toEqual([0, 255]);
  });

  it('falls back to a percentile window that ignores outliers and padding', () => {
    const values = [...Array.from({ length: 1000 }, (_, i) => 1000 + i), 4095, 0, 0, 0];
    const { pixels, window } = renderGrey(frame(values, { pixelPaddingValue: 0 }));
    expect(window.source).toBe('percentile');
    expect(pixels[0]).toBeLessThanOrEqual(1);
    expect(pixels[999]).toBeGreaterThanOrEqual(254);
    expect(pixels[1001]).toBe(0);
  });
});

describe('modelImageSize', () => {
  it.each([
    [2048, 2500, 896, 1092],
    [2500, 2500, 980, 980],
    [2800, 2304, 1092, 896],
    [10000, 10000, 980, 980],
    [500, 400, 504, 392],
  ])('sizes %i×%i to %i×%i: multiples of 28 within 1280·28·28 pixels', (w, h, ew, eh) => {
    const s = modelImageSize(w, h);
    expect(s).toEqual({ width: ew, height: eh });
    expect(s.width % 28).toBe(0);
    expect(s.height % 28).toBe(0);
    expect(s.width * s.height).toBeLessThanOrEqual(1280 * 28 * 28);
  });
});
