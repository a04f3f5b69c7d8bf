import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { copyFile, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  writeDeflateBomb, writeHeapFiller, writeRleCutFrame, writeRleGiant, writeRleShortSegment, writeRleWhole, type HostileImage,
} from '../../fixtures/hostile-images.js';
import { SYNTAX_FIXTURES } from '../../fixtures/transfer-syntaxes.js';
import { initCodecs } from '../../src/dicom/decode.js';
import { readHeader } from '../../src/dicom/header.js';
import { readFrame, renderInstance } from '../../src/dicom/render.js';
import { RenderPool } from '../../src/dicom/render-pool.js';
import { syntaxFixture } from '../harness/dicom-files.js';

jest.setTimeout(120_000);

const RLE = '1.2.840.10008.1.2.5';
const DEFLATED = '1.2.840.10008.1.2.1.99';

let dir: string;
let bomb: HostileImage;
let giant: HostileImage;
let shortSegment: HostileImage;
let cutFrame: HostileImage;
let whole: HostileImage;
let filler: HostileImage;

beforeAll(async () => {
  await initCodecs();
  dir = await mkdtemp(path.join(tmpdir(), 'raddraft-ceilings-'));
  const source = syntaxFixture('explicit-le');
  bomb = await writeDeflateBomb(source, dir);
  giant = await writeRleGiant(source, dir);
  shortSegment = await writeRleShortSegment(source, dir);
  cutFrame = await writeRleCutFrame(source, dir);
  whole = await writeRleWhole(source, dir);
  filler = await writeHeapFiller(source, dir, 32);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs `read` and says how long it took and how far this process's resident memory grew meanwhile. */
async function measured<T>(what: string, read: () => Promise<T>): Promise<T> {
  const before = process.memoryUsage().rss;
  const started = performance.now();
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
  try {
    return await read();
  } finally {
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().rss);
    console.log(`${what}: ${Math.round(performance.now() - started)} ms, resident memory +${Math.round((peak - before) / 2 ** 20)} MiB`);
  }
}

describe('hostile images fail with the fault named, before anything is inflated or decoded', () => {
  it('refuses a 1 MB deflated file whose data set inflates to a gibibyte, past what its header declares', async () => {
    expect((await readFile(bomb.file)).length).toBeLessThan(2 * 2 ** 20);
    await measured('deflate bomb, renderInstance', () => expect(renderInstance(bomb.file, 'bomb')).rejects.toThrow(
      `instance ${bomb.sopUid} (transfer syntax ${DEFLATED}): the deflated data set inflates past`,
    ));
    await expect(renderInstance(bomb.file, 'bomb')).rejects.toThrow(/more than its header declares \(Rows × Columns × SamplesPerPixel × BitsAllocated\/8 × NumberOfFrames = 1024 × 1024 × 1 × 2 × 1 = 2097152 bytes of pixel data\)/);
  });

  it('reads the header of that deflated file without inflating its padding', async () => {
    const header = await measured('deflate bomb, readHeader', () => readHeader(bomb.file, 'bomb'));
    expect(header.transferSyntaxUid).toBe(DEFLATED);
    expect(header.dataset['00080018']).toMatchObject({ Value: [bomb.sopUid] });
  });

  it('refuses an RLE file of a few hundred bytes claiming 40,000 × 40,000 pixels, naming RADDRAFT_MAX_PIXELS', async () => {
    expect((await readFile(giant.file)).length).toBeLessThan(4096);
    await measured('40000 × 40000 RLE, renderInstance', () => expect(renderInstance(giant.file, 'giant')).rejects.toThrow(
      `instance ${giant.sopUid} (transfer syntax ${RLE}): Rows × Columns = 40000 × 40000 = 1600000000 pixels in a frame, more than RADDRAFT_MAX_PIXELS (100000000)`,
    ));
  });

  it('fails an RLE frame whose segment decodes to fewer bytes than Rows × Columns instead of decoding zeros', async () => {
    const bytes = await readFile(shortSegment.file);
    expect(() => readFrame(bytes, 'short')).toThrow(
      `instance ${shortSegment.sopUid} (transfer syntax ${RLE}): RLE segment 1 of 1 decodes to 1000 bytes, but Rows × Columns = 256 × 256 needs 65536: the frame is truncated`,
    );
  });

  it('fails an RLE frame whose segment offset points past the end of the frame', async () => {
    const bytes = await readFile(cutFrame.file);
    expect(() => readFrame(bytes, 'cut')).toThrow(
      `instance ${cutFrame.sopUid} (transfer syntax ${RLE}): RLE segment 2 of 2 starts at byte 3136, past the end of the frame's 1088 bytes: the frame is truncated`,
    );
  });

  it('refuses a file whose elements before Pixel Data take more than 16 MiB, before parsing them', async () => {
    const limit = 16 * 2 ** 20;
    await expect(renderInstance(filler.file, 'filler')).rejects.toThrow(new RegExp(
      `^instance ${filler.sopUid} \\(transfer syntax ${RLE.replace(/\./g, '\\.')}\\): the elements before Pixel Data take \\d+ bytes, more than the ${limit} raddraft reads$`,
    ));
  });

  it('refuses unread a file larger than any image under the ceiling', async () => {
    // Sparse: 600 MiB on paper, a few kilobytes on disk.
    const file = path.join(dir, 'long.dcm');
    await copyFile(whole.file, file);
    await truncate(file, 600 * 2 ** 20);
    await expect(renderInstance(file, 'long.dcm')).rejects.toThrow(
      `long.dcm: the file has ${600 * 2 ** 20} bytes, more than the ${4e8 + 2 ** 25} raddraft reads for one image (4 bytes × RADDRAFT_MAX_PIXELS, and 32 MiB for the other elements)`,
    );
  });

  it('renders a whole RLE frame made by the same writer', async () => {
    const { frame } = readFrame(await readFile(whole.file), 'whole');
    expect([frame.width, frame.height, frame.samples[0], frame.samples[256 * 255]]).toEqual([256, 256, 0, 255]);
  });
});

describe('every transfer syntax checks the frame against the ceiling before decoding', () => {
  it.each(SYNTAX_FIXTURES.map((f) => [f.name, f.transferSyntaxUid]))('%s refuses a 2048 × 2500 frame under a 1-megapixel ceiling', async (name, uid) => {
    await expect(renderInstance(syntaxFixture(name), name, { limits: { maxPixels: 1_000_000 } })).rejects.toThrow(
      new RegExp(`\\(transfer syntax ${uid.replace(/\./g, '\\.')}\\): Rows × Columns = 2500 × 2048 = 5120000 pixels in a frame, more than RADDRAFT_MAX_PIXELS \\(1000000\\)$`),
    );
  });

  /** A copy of a compressed fixture whose codestream claims another size than its header's 2048 × 2500. */
  async function withCodestreamSize(name: string, width: number, height: number): Promise<string> {
    const bytes = Buffer.from(await readFile(syntaxFixture(name)));
    const siz = bytes.indexOf(Buffer.from([0xff, 0x4f, 0xff, 0x51]));
    if (siz >= 0) {
      bytes.writeUInt32BE(width, siz + 8);
      bytes.writeUInt32BE(height, siz + 12);
      bytes.writeUInt32BE(0, siz + 16);
      bytes.writeUInt32BE(0, siz + 20);
    } else {
      let o = bytes.indexOf(Buffer.from([0xff, 0xd8, 0xff])) + 2;
      for (;;) {
        const marker = bytes[o + 1]!;
        if ((marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) || marker === 0xf7) break;
        o += 2 + bytes.readUInt16BE(o + 2);
      }
      bytes.writeUInt16BE(height, o + 5);
      bytes.writeUInt16BE(width, o + 7);
    }
    const file = path.join(dir, `${name}-${width}x${height}.dcm`);
    await writeFile(file, bytes);
    return file;
  }

  it.each(SYNTAX_FIXTURES.filter((f) => !['native', 'rle'].includes(kindOf(f.name))).map((f) => [f.name]))(
    '%s refuses a codestream claiming 40,000 × 40,000 pixels before its decoder sees it',
    async (name) => {
      const file = await withCodestreamSize(name, 40_000, 40_000);
      await expect(renderInstance(file, name)).rejects.toThrow(/ stream's height × width = 40000 × 40000 = 1600000000 pixels in a frame, more than RADDRAFT_MAX_PIXELS \(100000000\)$/);
    },
  );

  it.each([['jpeg-ls-lossless'], ['jpeg2000-lossless'], ['jpeg-lossless-sv1']])('%s refuses a codestream of another size than Rows × Columns', async (name) => {
    const file = await withCodestreamSize(name, 3000, 2500);
    await expect(renderInstance(file, name)).rejects.toThrow(/ stream is 3000 × 2500 pixels, but Columns × Rows say 2048 × 2500$/);
  });
});

function kindOf(name: string): string {
  if (name === 'rle') return 'rle';
  return /^(implicit|explicit|deflated)/.test(name) ? 'native' : 'compressed';
}

describe('the rendering threads', () => {
  it('replace a thread grown past its memory limit after its image, and render the next image on a fresh one', async () => {
    // dcmjs-codecs (RLE, JPEG, JPEG-LS, whole JPEG 2000) alone starts with 256 MiB of WebAssembly memory, so a
    // 256 MiB limit is passed by every RLE image.
    const pool = new RenderPool({ size: 1, memoryLimitMb: 256 });
    try {
      const first = await pool.render(syntaxFixture('rle'), 'first');
      const second = await pool.render(syntaxFixture('rle'), 'second');
      expect([first.sourceWidth, second.sourceWidth]).toEqual([2048, 2048]);
      expect(pool.stats()).toMatchObject({ started: 2, recycled: 2, died: 0 });
    } finally {
      await pool.close();
    }
  });

  it('keep a thread within its memory limit for the next image', async () => {
    const pool = new RenderPool({ size: 1 });
    try {
      await pool.render(syntaxFixture('rle'), 'first');
      await pool.render(syntaxFixture('rle'), 'second');
      expect(pool.stats()).toMatchObject({ started: 1, recycled: 0, died: 0, threads: 1 });
    } finally {
      await pool.close();
    }
  });

  it('lose only the thread that reaches its heap limit: its image fails with the reason, and the next image gets a new thread', async () => {
    // 8 MiB is less than a thread needs to load the renderer, so each thread dies on its first image.
    const pool = new RenderPool({ size: 1, memoryLimitMb: 8 });
    try {
      await expect(pool.render(syntaxFixture('rle'), 'first.dcm')).rejects.toMatchObject({
        name: 'RenderError',
        message: 'first.dcm: rendering it ran out of memory (a rendering thread may hold 8 MiB, RADDRAFT_RENDER_MEMORY_MB)',
      });
      expect(pool.stats()).toMatchObject({ started: 1, died: 1, threads: 0 });
      await expect(pool.render(syntaxFixture('rle'), 'second.dcm')).rejects.toMatchObject({ name: 'RenderError' });
      expect(pool.stats()).toMatchObject({ started: 2, died: 2 });
    } finally {
      await pool.close();
    }
  });

  it('fail a hostile image with its reason as a RenderError, on a thread, and go on rendering', async () => {
    const pool = new RenderPool({ size: 1 });
    try {
      await expect(pool.render(giant.file, 'giant')).rejects.toMatchObject({ name: 'RenderError', message: expect.stringContaining('more than RADDRAFT_MAX_PIXELS') });
      await expect(pool.render(bomb.file, 'bomb')).rejects.toMatchObject({ name: 'RenderError', message: expect.stringContaining('more than its header declares') });
      expect((await pool.render(whole.file, 'whole')).sourceWidth).toBe(256);
    } finally {
      await pool.close();
    }
  });
});
