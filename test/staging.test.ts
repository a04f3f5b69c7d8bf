import { describe, expect, it } from '@jest/globals';
import { StagingBuffers } from '../src/dicom/staging.js';
import type { GrowableBytes } from '../src/util/http-get-into.js';

const bytes = (n: number, fill: number) => Buffer.alloc(n, fill);

/** Writes `data` as a socket would: into the room `space` gives, as much as fits each time. */
function put(memory: GrowableBytes, data: Buffer): void {
  for (let at = 0; at < data.length;) {
    const room = memory.space(64 * 1024);
    if (room.length === 0) throw memory.refusal();
    const n = Math.min(room.length, data.length - at);
    room.set(data.subarray(at, at + n));
    memory.advance(n);
    at += n;
  }
}

describe('StagingBuffers', () => {
  it('holds what was written, across reads that grow the buffer, and shares the part selected', async () => {
    const staging = new StagingBuffers(1, { maxPixels: 1000 });
    const s = await staging.acquire();
    const memory = s.bytes('instance 1.2.3');
    put(memory, bytes(700_000, 1));
    put(memory, bytes(900_000, 2));
    expect(memory.written().length).toBe(1_600_000);
    expect(s.shared()).toMatchObject({ offset: 0, length: 1_600_000 });
    s.select(699_990, 20);
    const { buffer, offset, length } = s.shared();
    expect([offset, length]).toEqual([699_990, 20]);
    expect([...Buffer.from(buffer, offset, length)]).toEqual([...bytes(10, 1), ...bytes(10, 2)]);
    memory.truncate(10);
    expect(memory.written().length).toBe(10);
    s.release();
  });

  it('refuses an instance larger than the renderer reads, naming it', async () => {
    // 4 bytes for each of 1000 pixels and 32 MiB for the other elements: 33,558,432 bytes.
    const staging = new StagingBuffers(1, { maxPixels: 1000 });
    const s = await staging.acquire();
    const memory = s.bytes('instance 1.2.3');
    // Room is left for the HTTP and multipart framing around the instance: 128 KiB.
    put(memory, bytes(33_558_432 + 131_072, 0));
    expect(memory.space(1)).toHaveLength(0);
    expect(memory.refusal()).toMatchObject({
      name: 'RenderError',
      message: 'instance 1.2.3: the instance has more than the 33558432 bytes raddraft reads for one image (4 bytes × RADDRAFT_MAX_PIXELS, and 32 MiB for the other elements)',
    });
    s.release();
  });

  it('lends at most `count` buffers; the next fetch waits for one to be released, and gets it back for reuse', async () => {
    const staging = new StagingBuffers(2, { maxPixels: 1000 });
    const a = await staging.acquire();
    const b = await staging.acquire();
    put(a.bytes('a'), bytes(1000, 7));
    const first = a.shared().buffer;
    let third: Awaited<ReturnType<StagingBuffers['acquire']>> | undefined;
    const waiting = staging.acquire().then((s) => (third = s));
    await new Promise((r) => setImmediate(r));
    expect(third).toBeUndefined();
    a.release();
    a.release(); // a second release of the same loan gives nothing back twice
    await waiting;
    put(third!.bytes('c'), bytes(10, 9));
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
    put(s.bytes('big'), bytes(3 << 20, 1));
    const big = s.shared().buffer;
    s.release();
    const next = await staging.acquire();
    put(next.bytes('small'), bytes(10, 1));
    expect(next.shared().buffer).not.toBe(big);
    expect(next.shared().buffer.byteLength).toBeLessThan(2 << 20);
  });
});
