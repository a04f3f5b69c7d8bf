import type { PartSink } from './multipart.js';
import { RenderError } from './render-error.js';

/** An instance's bytes in memory shared with a rendering thread: `length` bytes at the start of `buffer`. */
export interface SharedInstance {
  buffer: SharedArrayBuffer;
  length: number;
}

/** One staging buffer, held from the start of a fetch to the end of its render. */
export interface Staging {
  /** A sink for the instance's bytes; refuses more than the limit the buffers were made with. */
  sink(label: string): PartSink;
  /** What was written, for the rendering thread. */
  shared(): SharedInstance;
  release(): void;
}

/**
 * A few buffers that instances fetched from the PACS pass through on their way to a rendering thread, shared with
 * it rather than copied or written to disk. Each grows to the largest instance it has held and is reused, since
 * fresh memory of that size costs more CPU in page faults than the copy into it; one grown past `keepBytes` is
 * dropped when released. Fetches wait for a free buffer, which bounds the memory instances take at `count` of them.
 */
export class StagingBuffers {
  private readonly free: SharedArrayBuffer[] = [];
  private readonly waiting: ((b: SharedArrayBuffer) => void)[] = [];
  private made = 0;

  constructor(
    private readonly count: number,
    /** The most bytes one instance may have (what the renderer would read). */
    private readonly maxBytes: number,
    private readonly keepBytes = 64 * 2 ** 20,
  ) {}

  async acquire(): Promise<Staging> {
    let buffer: SharedArrayBuffer;
    const spare = this.free.pop();
    if (spare) buffer = spare;
    else if (this.made < this.count) {
      this.made += 1;
      buffer = new SharedArrayBuffer(0);
    } else buffer = await new Promise<SharedArrayBuffer>((resolve) => this.waiting.push(resolve));
    return this.staging(buffer);
  }

  private staging(initial: SharedArrayBuffer): Staging {
    let buffer = initial;
    let view = new Uint8Array(buffer);
    let length = 0;
    let released = false;
    const grow = (needed: number) => {
      const larger = new SharedArrayBuffer(Math.min(this.maxBytes, Math.max(needed, Math.ceil(buffer.byteLength * 1.5), 1 << 20)));
      const next = new Uint8Array(larger);
      next.set(view.subarray(0, length));
      buffer = larger;
      view = next;
    };
    return {
      sink: (label) => ({
        write: (chunk) => {
          if (length + chunk.length > this.maxBytes) {
            return Promise.reject(new RenderError(`${label}: the instance has more than the ${this.maxBytes} bytes raddraft reads for one image (4 bytes × RADDRAFT_MAX_PIXELS, and 32 MiB for the other elements)`));
          }
          if (length + chunk.length > buffer.byteLength) grow(length + chunk.length);
          view.set(chunk, length);
          length += chunk.length;
          return Promise.resolve();
        },
        end: () => Promise.resolve(),
      }),
      shared: () => ({ buffer, length }),
      release: () => {
        if (released) return;
        released = true;
        const kept = buffer.byteLength > this.keepBytes ? new SharedArrayBuffer(0) : buffer;
        const next = this.waiting.shift();
        if (next) next(kept);
        else this.free.push(kept);
      },
    };
  }
}
