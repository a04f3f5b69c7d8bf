import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { SYNTAX_FIXTURES, type SyntaxFixture } from '../../fixtures/transfer-syntaxes.js';
import { j2kDecompositionLevels } from '../../src/dicom/codestream.js';
import { initCodecs } from '../../src/dicom/decode.js';
import { firstFrameFragments, readPixelData } from '../../src/dicom/pixel-data.js';
import { renderInstance } from '../../src/dicom/render.js';
import { jpegScaleFor } from '../../src/dicom/jpeg-scaled.js';
import { levelFor } from '../../src/dicom/sub-resolution.js';
import { dcmtk, readPgm } from '../harness/dcmtk.js';
import { syntaxFixture, syntaxSource } from '../harness/dicom-files.js';

jest.setTimeout(120_000);

const REDUCIBLE = SYNTAX_FIXTURES.filter((f) => f.name.startsWith('jpeg2000') || f.name.startsWith('htj2k'));
/** The model's width for the 2048 × 2500 fixtures (modelImageSize gives 896 × 1092). */
const WIDTH = 896;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'raddraft-subres-'));
  await initCodecs();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function diff(a: Uint8Array, b: Uint8Array): { mean: number; p99: number; p999: number } {
  expect(a.length).toBe(b.length);
  const hist = new Uint32Array(256);
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    sum += d;
    hist[d]! += 1;
  }
  const percentile = (p: number) => {
    let seen = 0;
    let d = 0;
    while (seen + hist[d]! < a.length * p) seen += hist[d++]!;
    return d;
  };
  return { mean: sum / a.length, p99: percentile(0.99), p999: percentile(0.999) };
}

/** DCMTK's picture of a fixture at `WIDTH` pixels wide (GDCM decompresses JPEG 2000 first; HTJ2K is shown by its source). */
async function reference(f: SyntaxFixture): Promise<{ width: number; height: number; pixels: Uint8Array }> {
  let file = syntaxFixture(f.name);
  if (f.reference === 'gdcmconv') {
    file = path.join(dir, `${f.name}-raw.dcm`);
    await dcmtk('gdcmconv', ['--raw', syntaxFixture(f.name), file]);
  } else {
    file = await syntaxSource();
  }
  const pgm = path.join(dir, `${f.name}.pgm`);
  await dcmtk('dcmj2pnm', ['+Wi', '1', '+Sxv', String(WIDTH), file, pgm]);
  return readPgm(pgm);
}

async function pixelsOf(png: Buffer): Promise<Uint8Array> {
  return new Uint8Array(await sharp(png).toColourspace('b-w').raw().toBuffer());
}

describe('JPEG 2000 and HTJ2K are decoded at the coarsest resolution level that still covers the output', () => {
  // Tolerances against DCMTK at the same output size. A resolution level is the wavelet transform's low-pass band
  // (LeGall 5/3 for lossless, CDF 9/7 for lossy), not the interpolation DCMTK scales with, and the remaining
  // 1250 → 1093 rows are resampled bicubically by raddraft and by DCMTK's own interpolation. Measured on these
  // fixtures: 0.9–1.1 grey levels on average and 15–16 at the 99th percentile (the full-resolution path: 0.5 and
  // 6). The bounds are those figures with a margin; the window must be the same exactly.
  it.each(REDUCIBLE.map((f) => [f.name, f] as const))('%s: at level 1, within 1.5 grey levels of DCMTK on average and 20 for 99 % of pixels', async (name, f) => {
    const theirs = await reference(f);
    const size = () => ({ width: theirs.width, height: theirs.height });
    const reduced = await renderInstance(syntaxFixture(name), name, { size });
    const exact = await renderInstance(syntaxFixture(name), name, { size, exact: true });
    expect([reduced.sourceWidth, reduced.sourceHeight, reduced.decodedWidth, reduced.decodedHeight]).toEqual([2048, 2500, 1024, 1250]);
    expect([exact.decodedWidth, exact.decodedHeight]).toEqual([2048, 2500]);
    const ours = diff(await pixelsOf(reduced.png), theirs.pixels);
    const full = diff(await pixelsOf(exact.png), theirs.pixels);
    const self = diff(await pixelsOf(reduced.png), await pixelsOf(exact.png));
    console.log(`${name} vs DCMTK at ${theirs.width} × ${theirs.height}: level 1 mean ${ours.mean.toFixed(3)} p99 ${ours.p99} p99.9 ${ours.p999}; full resolution mean ${full.mean.toFixed(3)} p99 ${full.p99} p99.9 ${full.p999}; level 1 vs full mean ${self.mean.toFixed(3)} p99 ${self.p99} p99.9 ${self.p999}`);
    expect(ours.mean).toBeLessThanOrEqual(1.5);
    expect(ours.p99).toBeLessThanOrEqual(20);
    expect(reduced.window).toEqual(exact.window);
  });

  it('reads the decomposition levels from the COD segment and picks the coarsest level at least as large as the output', async () => {
    const element = readPixelData(await readFile(syntaxFixture('jpeg2000-lossless')), '1.2.840.10008.1.2.4.90');
    if (!element?.encapsulated) throw new Error('the JPEG 2000 fixture has no encapsulated pixel data');
    const codestream = firstFrameFragments(element, 1);
    expect(j2kDecompositionLevels(codestream)).toBe(5);
    expect(levelFor(codestream, 2048, 2500, { width: 896, height: 1092 })).toBe(1);
    expect(levelFor(codestream, 2048, 2500, { width: 512, height: 625 })).toBe(2);
    expect(levelFor(codestream, 2048, 2500, { width: 100, height: 100 })).toBe(4);
    expect(levelFor(codestream, 2048, 2500, { width: 1, height: 1 })).toBe(5);
    expect(levelFor(codestream, 2048, 2500, { width: 1025, height: 1250 })).toBe(0);
  });

  it('decodes the whole frame when the output needs more than half the stored size', async () => {
    const image = await renderInstance(syntaxFixture('htj2k-lossless'), 'htj2k', { size: (w, h) => ({ width: w - 2, height: h - 2 }) });
    expect([image.decodedWidth, image.decodedHeight, image.width, image.height]).toEqual([2048, 2500, 2046, 2498]);
  });

  it('decodes a small review picture from a coarser level (a 256-pixel side from 256 × 313)', async () => {
    const image = await renderInstance(syntaxFixture('jpeg2000-lossy'), 'j2k', { size: (w, h) => ({ width: 256, height: Math.round((256 * h) / w) }) });
    expect([image.decodedWidth, image.decodedHeight, image.width, image.height]).toEqual([256, 313, 256, 313]);
  });

  it('does not reduce syntaxes without resolution levels', async () => {
    const image = await renderInstance(syntaxFixture('jpeg-ls-lossless'), 'jls');
    expect([image.decodedWidth, image.width]).toEqual([2048, 896]);
  });
});

describe('8-bit JPEG baseline is decoded at the smallest DCT scale that still covers the output', () => {
  // A DCT-scaled block is the inverse transform of its lowest frequencies at 4 × 4 (for 1/2), close to the 2 × 2
  // block average raddraft otherwise takes of the whole decode, not DCMTK's interpolation; the bounds are the
  // resolution levels' (above), with the figures measured printed.
  it('jpeg-baseline-8bit: at 1/2, within 1.5 grey levels of DCMTK on average and 20 for 99 % of pixels, in the same window', async () => {
    const pgm = path.join(dir, 'jpeg-baseline-8bit.pgm');
    await dcmtk('dcmj2pnm', ['+Wi', '1', '+Sxv', String(WIDTH), syntaxFixture('jpeg-baseline-8bit'), pgm]);
    const theirs = await readPgm(pgm);
    const size = () => ({ width: theirs.width, height: theirs.height });
    const scaled = await renderInstance(syntaxFixture('jpeg-baseline-8bit'), 'jpeg', { size });
    const exact = await renderInstance(syntaxFixture('jpeg-baseline-8bit'), 'jpeg', { size, exact: true });
    expect([scaled.sourceWidth, scaled.sourceHeight, scaled.decodedWidth, scaled.decodedHeight]).toEqual([2048, 2500, 1024, 1250]);
    const ours = diff(await pixelsOf(scaled.png), theirs.pixels);
    const full = diff(await pixelsOf(exact.png), theirs.pixels);
    console.log(`jpeg-baseline-8bit vs DCMTK at ${theirs.width} × ${theirs.height}: 1/2 DCT scale mean ${ours.mean.toFixed(3)} p99 ${ours.p99} p99.9 ${ours.p999}; whole decode mean ${full.mean.toFixed(3)} p99 ${full.p99} p99.9 ${full.p999}`);
    expect(ours.mean).toBeLessThanOrEqual(1.5);
    expect(ours.p99).toBeLessThanOrEqual(20);
    expect(scaled.window).toEqual(exact.window);
  });

  it('decodes a small review picture at a smaller scale (1/4 for a 256-pixel side: 2500 rows are no multiple of 8)', async () => {
    const image = await renderInstance(syntaxFixture('jpeg-baseline-8bit'), 'jpeg', { size: (w, h) => ({ width: 256, height: Math.round((256 * h) / w) }) });
    expect([image.decodedWidth, image.decodedHeight, image.width, image.height]).toEqual([512, 625, 256, 313]);
  });

  it('decodes 12-bit JPEG extended whole: the DCT-scaling decoder reads 8-bit JPEG only', async () => {
    const image = await renderInstance(syntaxFixture('jpeg-extended-12bit'), 'jpeg12');
    expect([image.decodedWidth, image.decodedHeight, image.width]).toEqual([2048, 2500, 896]);
  });

  it('scales only by a factor that divides the frame exactly and leaves the output covered', () => {
    expect(jpegScaleFor({ width: 2048, height: 2500 }, { width: 896, height: 1092 })).toBe(2);
    expect(jpegScaleFor({ width: 2048, height: 2500 }, { width: 256, height: 313 })).toBe(4);
    expect(jpegScaleFor({ width: 2048, height: 2504 }, { width: 256, height: 313 })).toBe(8);
    expect(jpegScaleFor({ width: 2049, height: 2500 }, { width: 896, height: 1092 })).toBe(1);
    expect(jpegScaleFor({ width: 2048, height: 2500 }, { width: 1025, height: 1250 })).toBe(1);
  });
});
