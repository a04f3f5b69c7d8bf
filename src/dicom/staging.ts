import type { GrowableBytes } from '../util/http-get-into.js';
import { instanceTooLarge, maxInstanceBytes, type ImageLimits } from './limits.js';
import { RenderError } from './render-error.js';

/** An instance's bytes in memory shared with a rendering thread: `length` bytes from `offset` in `buffer`. */
export interface SharedInstance {
  buffer: SharedArrayBuffer;
  offset: number;
  length: number;
}

/** One staging buffer, held from the start of a fetch to the end of its render. */
export interface Staging {
  /** Memory for the response carrying the instance; refuses more than the renderer would read. */
  bytes(label: string): GrowableBytes;
  /** Where in what was written the instance itself lies (after the HTTP and multipart framing). */
  select(offset: number, length: number): void;
  /** The instance, for the rendering thread. */
  shared(): SharedInstance;
  release(): void;
}

/** Room for the HTTP head and multipart framing around an instance, beyond the instance's own ceiling. */
const FRAMING_BYTES = 128 * 1024;

/**
 * A few buffers that instances fetched from the PACS are read into by the socket (http-get-into.ts) and rendered
 * from, shared with the rendering thread rather than copied or written to disk. Each grows to the largest response
 * it has held and is reused, since fresh memory of that size costs more CPU in page faults than reading into it;
 * one grown past `keepBytes` is dropped when released. Fetches wait for a free buffer, which bounds the memory
 * instances take at `count` of them.
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
    let selected: { offset: number; length: number } | undefined;
    let released = false;
    const ceiling = maxInstanceBytes(this.limits) + FRAMING_BYTES;
    const grow = (needed: number) => {
      const larger = new SharedArrayBuffer(Math.min(ceiling, Math.max(needed, Math.ceil(buffer.byteLength * 1.5), 1 << 20)));
      const next = new Uint8Array(larger);
      next.set(view.subarray(0, length));
      buffer = larger;
      view = next;
    };
    return {
      bytes: (label) => ({
        space: (min) => {
          if (length + min > buffer.byteLength && buffer.byteLength < ceiling) grow(length + min);
          return view.subarray(length);
        },
        advance: (n) => {
          length += n;
        },
        truncate: (to) => {
          length = Math.min(length, to);
        },
        written: () => Buffer.from(buffer, 0, length),
        refusal: () => new RenderError(instanceTooLarge(label, 'the instance', maxInstanceBytes(this.limits) + 1, this.limits, true)!),
      }),
      select: (offset, bytes) => {
        selected = { offset, length: bytes };
      },
      shared: () => ({ buffer, ...(selected ?? { offset: 0, length }) }),
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
