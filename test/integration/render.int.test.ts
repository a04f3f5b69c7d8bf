import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { renderGrey } from '../../src/dicom/greyscale.js';
import sharp from 'sharp';
import { readFrame, renderInstance } from '../../src/dicom/render.js';
import { fixture } from '../harness/peers.js';
import { dcmtk, readPgm } from '../harness/dcmtk.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'raddraft-render-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

describe('grey-scale rendering compared with DCMTK dcmj2pnm on the same window', () => {
  const cases = [
    { key: 'chest-pa-lat', file: 'pa-pa.dcm', what: 'MONOCHROME2 12-bit PA with a window in the file' },
    { key: 'chest-pa-lat', file: 'lat-lat.dcm', what: 'MONOCHROME2 12-bit lateral with a window in the file' },
    { key: 'chest-ap-mono1', file: 'ap-ap.dcm', what: 'MONOCHROME1 14-bit AP without a window (percentile window)' },
    { key: 'hand-dx', file: 'hand-hand.dcm', what: 'MONOCHROME2 12-bit hand' },
  ];

  it.each(cases)('$what differs from dcmj2pnm by at most one grey level on average', async ({ key, file }) => {
    const src = path.join(path.dirname(fixture(key).files[0]!), file);
    const { frame } = readFrame(await readFile(src), file);
    const ours = renderGrey(frame);
    const pgm = path.join(dir, `${key}-${file}.pgm`);
    const window = ours.window.source === 'file' ? ['+Wi', '1'] : ['+Ww', String(ours.window.center), String(ours.window.width)];
    await dcmtk('dcmj2pnm', [...window, src, pgm]);
    const reference = await readPgm(pgm);
    expect([reference.width, reference.height]).toEqual([frame.width, frame.height]);
    expect(meanAbsDiff(ours.pixels, reference.pixels)).toBeLessThanOrEqual(1);
  });
});

describe('the model image, resampled before the grey-scale pipeline', () => {
  it.each([
    ['chest-pa-lat', 'pa-pa.dcm'],
    ['chest-pa-lat', 'lat-lat.dcm'],
    ['chest-ap-mono1', 'ap-ap.dcm'],
  ])('differs from the exact pipeline (full size, then resampled) by under one grey level on average: %s %s', async (key, file) => {
    const src = path.join(path.dirname(fixture(key).files[0]!), file);
    const fast = await renderInstance(src, file);
    const exact = await renderInstance(src, file, { exact: true });
    expect([fast.width, fast.height]).toEqual([exact.width, exact.height]);
    const a = await sharp(fast.png).raw().toBuffer();
    const b = await sharp(exact.png).raw().toBuffer();
    expect(meanAbsDiff(new Uint8Array(a), new Uint8Array(b))).toBeLessThan(1);
  });
});
