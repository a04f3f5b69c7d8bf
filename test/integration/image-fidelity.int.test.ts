import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { COLOUR_SCANS } from '../../fixtures/colour-scans.js';
import { SYNTAX_FIXTURES, type SyntaxFixture } from '../../fixtures/transfer-syntaxes.js';
import { initCodecs } from '../../src/dicom/decode.js';
import { renderGrey } from '../../src/dicom/greyscale.js';
import { readFrame, renderInstance } from '../../src/dicom/render.js';
import { dcmtk, readPgm } from '../harness/dcmtk.js';
import { syntaxFixture, syntaxSource, withReplacedText, writeMultiFrame } from '../harness/dicom-files.js';
import { FIXTURE_DIR, ROOT } from '../harness/peers.js';

jest.setTimeout(120_000);
const run = promisify(execFile);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'raddraft-fidelity-'));
  await initCodecs();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  expect(a.length).toBe(b.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

async function sopOf(file: string): Promise<string> {
  return /\[([\d.]+)\]/.exec(await dcmtk('dcmdump', ['+P', '0008,0018', file]))![1]!;
}

/** The reference picture of a fixture, rendered with the file's first window. */
async function reference(f: SyntaxFixture): Promise<Uint8Array> {
  const file = syntaxFixture(f.name);
  const pgm = path.join(dir, `${f.name}.pgm`);
  switch (f.reference) {
    case 'dcmj2pnm':
      await dcmtk('dcmj2pnm', ['+Wi', '1', file, pgm]);
      break;
    case 'dcml2pnm':
      await dcmtk('dcml2pnm', ['+Wi', '1', file, pgm]);
      break;
    case 'gdcmconv': {
      const raw = path.join(dir, `${f.name}-raw.dcm`);
      await dcmtk('gdcmconv', ['--raw', file, raw]);
      await dcmtk('dcmj2pnm', ['+Wi', '1', raw, pgm]);
      break;
    }
    case 'source':
      await dcmtk('dcmj2pnm', ['+Wi', '1', await syntaxSource(), pgm]);
      break;
  }
  return (await readPgm(pgm)).pixels;
}

describe('every transfer syntax renders as DCMTK renders it, with the same window', () => {
  it.each(SYNTAX_FIXTURES.map((f) => [f.name, f] as const))('%s: mean absolute difference at most 1 grey level', async (_name, f) => {
    const { frame, transferSyntaxUid } = readFrame(await readFile(syntaxFixture(f.name)), f.name);
    expect(transferSyntaxUid).toBe(f.transferSyntaxUid);
    const ours = renderGrey(frame);
    expect(ours.window.source).toBe('file');
    const diff = meanAbsDiff(ours.pixels, await reference(f));
    // Lossless syntaxes decode to the source's values exactly, and the pipeline truncates as DCMTK does.
    if (!f.lossy) expect(diff).toBe(0);
    expect(diff).toBeLessThanOrEqual(1);
  });
});

describe('films scanned in colour are shown by their luma, as DCMTK converts them to grey', () => {
  it.each(COLOUR_SCANS.map((n) => [n] as const))('%s: mean absolute difference at most 1 grey level', async (name) => {
    const file = path.join(FIXTURE_DIR, 'colour', `${name}.dcm`);
    const { frame } = readFrame(await readFile(file), name);
    const pgm = path.join(dir, `colour-${name}.pgm`);
    await dcmtk('dcmj2pnm', ['+G', file, pgm]);
    const theirs = await readPgm(pgm);
    expect([frame.width, frame.height]).toEqual([theirs.width, theirs.height]);
    const ours = renderGrey(frame).pixels;
    expect(meanAbsDiff(ours, theirs.pixels)).toBeLessThanOrEqual(1);
    // Not a flat picture: the lungs are darker than the film around them.
    expect(ours[320 * frame.width + 170]! + 40).toBeLessThan(ours[600 * frame.width + 20]!);
  });
});

describe('MONOCHROME1 and MONOCHROME2', () => {
  it('the MONOCHROME1 AP and its MONOCHROME2 twin render to the same picture', async () => {
    const file = (key: string, sub = '') => path.join(FIXTURE_DIR, sub, key, 'ap-ap.dcm');
    const mono1 = await renderInstance(file('chest-ap-mono1'), 'mono1');
    const mono2 = await renderInstance(file('chest-ap-mono2', 'twins'), 'mono2');
    expect(mono1.photometric).toBe('MONOCHROME1');
    expect(mono2.photometric).toBe('MONOCHROME2');
    const [a, b] = await Promise.all([mono1, mono2].map((r) => sharp(r.png).raw().toBuffer()));
    expect(meanAbsDiff(new Uint8Array(a!), new Uint8Array(b!))).toBe(0);
  });
});

describe('multi-frame objects are shown by their first frame', () => {
  let single: Uint8Array;
  let multi: string;
  beforeAll(async () => {
    const source = await syntaxSource();
    const { frame } = readFrame(await readFile(source), 'source');
    single = renderGrey(frame).pixels;
    const frameBytes = frame.width * frame.height * 2;
    multi = path.join(dir, 'multi-native.dcm');
    await writeMultiFrame(source, multi, [new Uint8Array(frameBytes).fill(0xff).map((v, i) => (i % 2 ? 0x0f : v)), new Uint8Array(frameBytes)]);
  });

  it.each([
    ['native', [] as string[]],
    ['JPEG Lossless with a Basic Offset Table', ['+el', '+ot']],
    ['JPEG Lossless without a Basic Offset Table', ['+el', '-ot']],
    ['JPEG Lossless with each frame in 64 KiB fragments and no Basic Offset Table', ['+el', '-ot', '+fs', '64']],
    ['JPEG Lossless with each frame in 64 KiB fragments and a Basic Offset Table', ['+el', '+ot', '+fs', '64']],
  ])('%s', async (what, args) => {
    let file = multi;
    if (args.length) {
      file = path.join(dir, `multi-${what.replace(/\W+/g, '-')}.dcm`);
      await dcmtk('dcmcjpeg', [...args, multi, file]);
    }
    const { frame, frames } = readFrame(await readFile(file), what);
    expect(frames).toBe(3);
    expect(meanAbsDiff(renderGrey(frame).pixels, single)).toBe(0);
  });
});

describe('very large images', () => {
  it('downsamples a 10,000 × 10,000 16-bit radiograph to the model size', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'fixtures/large-radiograph.ts', path.join(dir, 'huge'), '10000', '10000'], { cwd: ROOT });
    const image = await renderInstance(stdout.trim(), 'huge');
    expect([image.sourceWidth, image.sourceHeight, image.width, image.height]).toEqual([10_000, 10_000, 980, 980]);
    const meta = await sharp(image.png).metadata();
    expect([meta.width, meta.height, meta.channels]).toEqual([980, 980, 1]);
  });
});

describe('images raddraft cannot render fail with the instance, the transfer syntax and the fault', () => {
  const EXPLICIT = '1.2.840.10008.1.2.1';

  it('a truncated Pixel Data element', async () => {
    const file = syntaxFixture('explicit-le');
    const bytes = await readFile(file);
    expect(() => readFrame(bytes.subarray(0, bytes.length - 1000), 'cut.dcm')).toThrow(
      `instance ${await sopOf(file)} (transfer syntax ${EXPLICIT}): Pixel Data is truncated: the element declares 10240000 bytes, the file holds 10239000`,
    );
  });

  it('a truncated fragment of compressed Pixel Data', async () => {
    const file = syntaxFixture('jpeg-lossless-sv1');
    const bytes = await readFile(file);
    expect(() => readFrame(bytes.subarray(0, bytes.length - 1000), 'cut.dcm')).toThrow(
      `instance ${await sopOf(file)} (transfer syntax 1.2.840.10008.1.2.4.70): Pixel Data is truncated: the file ends inside fragment 1 of the encapsulated pixel data`,
    );
  });

  it('a Pixel Data length that disagrees with Rows × Columns × SamplesPerPixel', async () => {
    const out = path.join(dir, 'rows.dcm');
    await copyFile(syntaxFixture('explicit-le'), out);
    await dcmtk('dcmodify', ['-nb', '-m', '(0028,0010)=2600', out]);
    const bytes = await readFile(out);
    expect(() => readFrame(bytes, 'rows.dcm')).toThrow(
      `instance ${await sopOf(out)} (transfer syntax ${EXPLICIT}): Pixel Data has 10240000 bytes, but Rows × Columns × SamplesPerPixel × frames = 2600 × 2048 × 1 × 1 needs 10649600`,
    );
  });

  it('a corrupt JPEG stream', async () => {
    const file = syntaxFixture('jpeg-extended-12bit');
    const bytes = Buffer.from(await readFile(file));
    // Garble the Huffman table after its DHT marker.
    const dht = bytes.indexOf(Buffer.from([0xff, 0xc4]), bytes.indexOf(Buffer.from([0xff, 0xd8, 0xff])));
    bytes.fill(0xff, dht + 4, dht + 40);
    expect(() => readFrame(bytes, 'corrupt.dcm')).toThrow(
      `instance ${await sopOf(file)} (transfer syntax 1.2.840.10008.1.2.4.51): the JPEG Extended data cannot be decoded (Bogus Huffman table definition)`,
    );
  });

  it('a deflated data set cut short', async () => {
    const file = syntaxFixture('deflated');
    const bytes = await readFile(file);
    expect(() => readFrame(bytes.subarray(0, bytes.length >> 1), 'deflated.dcm')).toThrow(
      `instance ${await sopOf(file)} (transfer syntax 1.2.840.10008.1.2.1.99): the deflated data set cannot be inflated (unexpected end of file)`,
    );
  });

  it('an unknown transfer syntax', async () => {
    const out = path.join(dir, 'unknown-ts.dcm');
    await withReplacedText(syntaxFixture('explicit-le'), out, [[EXPLICIT, '1.2.840.99999.1.2.1']]);
    const bytes = await readFile(out);
    expect(() => readFrame(bytes, 'unknown.dcm')).toThrow(
      `instance ${await sopOf(syntaxFixture('explicit-le'))} (transfer syntax 1.2.840.99999.1.2.1): unknown transfer syntax`,
    );
  });

  it('a file that is not DICOM at all', () => {
    expect(() => readFrame(Buffer.from('this is a PNG, not DICOM'.repeat(10)), 'upload.dcm')).toThrow('upload.dcm: not a DICOM Part 10 file (no DICM preamble)');
  });
});
