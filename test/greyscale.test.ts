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
    // Window centre 2048, width 4096: x <= 0 -> 0, x > 4095 -> 255, in between ((x - 2047.5) / 4095 + 0.5) * 255,
    // truncated to an integer as DCMTK does.
    const { pixels, window } = renderGrey(frame([0, 1024, 2048, 3072, 4095], { window: { center: 2048, width: 4096 } }));
    expect(window).toEqual({ center: 2048, width: 4096, source: 'file' });
    expect([...pixels]).toEqual([0, 63, 127, 191, 255]);
  });

  it('applies rescale slope and intercept before the window', () => {
    const { pixels } = renderGrey(frame([0, 1000, 2000], { rescaleSlope: 2, rescaleIntercept: -1000, window: { center: 1000, width: 2000 } }));
    // Modality values -1000, 1000, 3000 in a window of 1000 ± 1000.
    expect([...pixels]).toEqual([0, 127, 255]);
  });

  it('inverts MONOCHROME1 so that low stored values are bright, before truncating to an integer', () => {
    // Window 2048/4096: y(100) = 6.23 and y(4000) = 249.08; inverted, 248.77 and 5.92.
    const window = { center: 2048, width: 4096 };
    expect([...renderGrey(frame([100, 4000], { window })).pixels]).toEqual([6, 249]);
    expect([...renderGrey(frame([100, 4000], { window, photometric: 'MONOCHROME1' })).pixels]).toEqual([248, 5]);
  });

  it('masks bits above BitsStored and sign-extends signed pixels', () => {
    // 0xF800 has garbage above bit 11; as 12-bit signed, 0x800 is -2048.
    const { pixels } = renderGrey(frame([0xf800, 0x7ff], { signed: true, window: { center: 0, width: 4096 } }));
    expect([...pixels]).toEqual([0, 255]);
  });

  it('applies LINEAR_EXACT: ((x - c) / w + 0.5) * 255 without the half-unit offsets', () => {
    const { pixels } = renderGrey(frame([0, 1024, 2048, 3072, 4095], { window: { center: 2048, width: 4096 }, voiFunction: 'LINEAR_EXACT' }));
    expect([...pixels]).toEqual([0, 63, 127, 191, 254]);
  });

  it('applies SIGMOID: 255 / (1 + exp(-4 (x - c) / w))', () => {
    const { pixels } = renderGrey(frame([0, 2048, 4095], { window: { center: 2048, width: 1024 }, voiFunction: 'SIGMOID' }));
    // x = 0: 255 / (1 + e^8) = 0.085; x = c: 127.5; x = 4095: 255 / (1 + e^-7.996) = 254.91.
    expect([...pixels]).toEqual([0, 127, 254]);
  });

  it('maps through a Modality LUT Sequence, clamping values outside it', () => {
    const modalityLut = { first: 10, data: [100, 200, 300, 400], bits: 16 };
    const { pixels } = renderGrey(frame([0, 10, 11, 12, 13, 50], { modalityLut, window: { center: 250.5, width: 301 } }));
    // Modality values 100, 100, 200, 300, 400, 400 in the window 100 .. 400.
    expect([...pixels]).toEqual([0, 0, 85, 170, 255, 255]);
  });

  it('uses a VOI LUT Sequence when the file has no window, scaled from its bits per entry', () => {
    const voiLut = { first: 0, data: [0, 1023, 4095], bits: 12 };
    const { pixels, window } = renderGrey(frame([0, 1, 2, 9], { voiLut }));
    expect(window.source).toBe('voi-lut');
    expect([...pixels]).toEqual([0, 63, 255, 255]);
  });

  it('inverts for Presentation LUT Shape INVERSE and not for IDENTITY on MONOCHROME1', () => {
    const window = { center: 2048, width: 4096 };
    expect([...renderGrey(frame([100, 4000], { window, inverse: true })).pixels]).toEqual([248, 5]);
    expect([...renderGrey(frame([100, 4000], { window, photometric: 'MONOCHROME1', inverse: false })).pixels]).toEqual([6, 249]);
  });

  it('shows a pixel padding range black and leaves it out of the percentile window', () => {
    const values = [...Array.from({ length: 1000 }, (_, i) => 2000 + i), 4090, 4095, 4093];
    const { pixels, window } = renderGrey(frame(values, { pixelPaddingValue: 4095, pixelPaddingLimit: 4090, photometric: 'MONOCHROME1' }));
    expect(window.source).toBe('percentile');
    expect(window.width).toBeLessThan(1100);
    expect([...pixels.slice(1000)]).toEqual([0, 0, 0]);
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
