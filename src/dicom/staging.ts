import type { PartSink } from './multipart.js';
import { instanceTooLarge, maxInstanceBytes, type ImageLimits } from './limits.js';
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
    /** The renderer's ceilings: an instance larger than it would read is refused as it arrives. */
    private readonly limits: ImageLimits,
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
      const larger = new SharedArrayBuffer(Math.min(maxInstanceBytes(this.limits), Math.max(needed, Math.ceil(buffer.byteLength * 1.5), 1 << 20)));
      const next = new Uint8Array(larger);
      next.set(view.subarray(0, length));
      buffer = larger;
      view = next;
    };
    return {
      sink: (label) => ({
        write: (chunk) => {
          const tooLarge = instanceTooLarge(label, 'the instance', length + chunk.length, this.limits, true);
          if (tooLarge) return Promise.reject(new RenderError(tooLarge));
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
