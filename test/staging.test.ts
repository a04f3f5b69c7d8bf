import { describe, expect, it } from '@jest/globals';
import { StagingBuffers } from '../src/dicom/staging.js';

const bytes = (n: number, fill: number) => Buffer.alloc(n, fill);

describe('StagingBuffers', () => {
  it('holds what was written, across chunks that grow the buffer', async () => {
    const staging = new StagingBuffers(1, { maxPixels: 1000 });
    const s = await staging.acquire();
    const sink = s.sink('instance 1.2.3');
    await sink.write(bytes(700_000, 1));
    await sink.write(bytes(900_000, 2));
    await sink.end();
    const { buffer, length } = s.shared();
    expect(length).toBe(1_600_000);
    const view = Buffer.from(buffer, 0, length);
    expect(view[0]).toBe(1);
    expect(view[699_999]).toBe(1);
    expect(view[700_000]).toBe(2);
    expect(view[length - 1]).toBe(2);
    s.release();
  });

  it('refuses an instance larger than the renderer reads, naming it', async () => {
    // 4 bytes for each of 1000 pixels and 32 MiB for the other elements: 33,558,432 bytes.
    const staging = new StagingBuffers(1, { maxPixels: 1000 });
    const s = await staging.acquire();
    const sink = s.sink('instance 1.2.3');
    await sink.write(bytes(33_558_000, 0));
    await sink.write(bytes(432, 0));
    await expect(sink.write(bytes(1, 0))).rejects.toMatchObject({
      name: 'RenderError',
      message: 'instance 1.2.3: the instance has more than the 33558432 bytes raddraft reads for one image (4 bytes × RADDRAFT_MAX_PIXELS, and 32 MiB for the other elements)',
    });
    s.release();
  });

  it('lends at most `count` buffers; the next fetch waits for one to be released, and gets it back for reuse', async () => {
    const staging = new StagingBuffers(2, { maxPixels: 1000 });
    const a = await staging.acquire();
    const b = await staging.acquire();
    await a.sink('a').write(bytes(1000, 7));
    const first = a.shared().buffer;
    let third: Awaited<ReturnType<StagingBuffers['acquire']>> | undefined;
    const waiting = staging.acquire().then((s) => (third = s));
    await new Promise((r) => setImmediate(r));
    expect(third).toBeUndefined();
    a.release();
    a.release(); // a second release of the same loan gives nothing back twice
    await waiting;
    await third!.sink('c').write(bytes(10, 9));
    expect(third!.shared().buffer).toBe(first);
    expect(third!.shared().length).toBe(10);
    b.release();
    third!.release();
    // Two free buffers after a double release would let three loans out at once.
    await staging.acquire();
    await staging.acquire();
    let fourth = false;
    void staging.acquire().then(() => (fourth = true));
    await new Promise((r) => setImmediate(r));
    expect(fourth).toBe(false);
  });

  it('drops a buffer grown past the size it keeps, instead of holding it for the next instance', async () => {
    const staging = new StagingBuffers(1, { maxPixels: 1000 }, 2 << 20);
    const s = await staging.acquire();
    await s.sink('big').write(bytes(3 << 20, 1));
    const big = s.shared().buffer;
    s.release();
    const next = await staging.acquire();
    await next.sink('small').write(bytes(10, 1));
    expect(next.shared().buffer).not.toBe(big);
    expect(next.shared().buffer.byteLength).toBeLessThan(2 << 20);
  });
});
