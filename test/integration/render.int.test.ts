import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { renderGrey } from '../../src/dicom/greyscale.js';
import sharp from 'sharp';
import { readFrame, renderBytes, renderInstance, shrinkFirst, shrinkThroughWindow } from '../../src/dicom/render.js';
import { RenderScratch } from '../../src/dicom/scratch.js';
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

describe('a rendering thread reusing its buffers from one image to the next', () => {
  it('renders each image exactly as it renders alone, whatever came before, from a file or from memory', async () => {
    const files = [
      path.join(path.dirname(fixture('chest-pa-lat').files[0]!), 'pa-pa.dcm'),
      path.join(path.dirname(fixture('chest-ap-mono1').files[0]!), 'ap-ap.dcm'),
      path.join(path.dirname(fixture('chest-pa-lat').files[0]!), 'lat-lat.dcm'),
      fixture('hand-dx').files[0]!,
    ];
    const alone = await Promise.all(files.map((f) => renderInstance(f, path.basename(f))));
    const scratch = new RenderScratch();
    // Larger, then smaller, then larger again: a reused buffer longer than the image must not leak into it.
    for (const i of [0, 3, 1, 2, 0, 3]) {
      const fromFile = await renderInstance(files[i]!, 'from file', { scratch });
      expect(fromFile.sha256).toBe(alone[i]!.sha256);
      const bytes = await readFile(files[i]!);
      const held = scratch.fileBytes(bytes.length + 4096).subarray(4096);
      bytes.copy(held);
      const fromMemory = await renderBytes(held, 'from memory', { scratch });
      expect(fromMemory.sha256).toBe(alone[i]!.sha256);
    }
  });

  it('renders an instance held at an odd offset of its memory as it renders from its file', async () => {
    const file = path.join(path.dirname(fixture('chest-pa-lat').files[0]!), 'pa-pa.dcm');
    const bytes = await readFile(file);
    // A Buffer over shared memory, one byte in, as a response's framing can leave an instance.
    const shared = Buffer.from(new SharedArrayBuffer(bytes.length + 2), 1, bytes.length);
    bytes.copy(shared);
    for (const options of [{}, { exact: true }]) {
      const odd = await renderBytes(shared, 'odd offset', options);
      expect(odd.sha256).toBe((await renderInstance(file, 'file', options)).sha256);
    }
  });
});

describe('the one-pass shrink through the window', () => {
  it.each([
    ['chest-pa-lat', 'pa-pa.dcm', undefined],
    ['chest-pa-lat', 'lat-lat.dcm', undefined],
    ['chest-ap-mono1', 'ap-ap.dcm', { center: 6000, width: 9000 }],
    ['chest-pa-lat', 'pa-pa.dcm', { center: 1000.5, width: 1 }],
  ])('gives the pixels of shrinkFirst then renderGrey, exactly: %s %s, window %j', async (key, file, window) => {
    const src = path.join(path.dirname(fixture(key).files[0]!), file);
    const { frame } = readFrame(await readFile(src), file);
    if (window) frame.window = window;
    const size = { width: Math.floor(frame.width / 2.4), height: Math.floor(frame.height / 2.4) };
    const fused = shrinkThroughWindow(frame, size);
    if (!fused) throw new Error(`${file}: the one-pass path was not taken`);
    const apart = renderGrey(shrinkFirst(frame, size)!);
    expect([fused.width, fused.height]).toEqual([Math.floor(frame.width / 2), Math.floor(frame.height / 2)]);
    expect(fused.window).toEqual(apart.window);
    expect(Buffer.from(fused.pixels).equals(Buffer.from(apart.pixels))).toBe(true);
  });

  it('is not taken without a window in the file, with padding, or for another factor', async () => {
    const src = path.join(path.dirname(fixture('chest-ap-mono1').files[0]!), 'ap-ap.dcm');
    const { frame } = readFrame(await readFile(src), 'ap');
    const half = { width: Math.floor(frame.width / 2.4), height: Math.floor(frame.height / 2.4) };
    expect(shrinkThroughWindow(frame, half)).toBeUndefined();
    frame.window = { center: 6000, width: 9000 };
    expect(shrinkThroughWindow({ ...frame, pixelPaddingValue: 0 }, half)).toBeUndefined();
    expect(shrinkThroughWindow(frame, { width: Math.floor(frame.width / 3.5), height: Math.floor(frame.height / 3.5) })).toBeUndefined();
  });
});
