import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { DEFAULT_LIMITS, type ImageLimits } from './limits.js';
import { RenderError } from './render-error.js';
import type { RenderedImage } from './render.js';
import type { RenderReply, RenderTask } from './render-worker.js';
import type { SharedInstance } from './staging.js';

/** 1 GiB: the codecs start with 256 MiB of WebAssembly memory, and a 100-megapixel frame needs a few hundred more. */
export const DEFAULT_RENDER_MEMORY_MB = 1024;

export interface RenderPoolOptions {
  /** Threads; one per core by default. */
  size?: number;
  /** Size ceilings every image is checked against before it is inflated or decoded. */
  limits?: ImageLimits;
  /**
   * Memory one thread may hold, in MiB (RADDRAFT_RENDER_MEMORY_MB): its JavaScript heap is capped at this, and a
   * thread whose heap and external memory (which holds the codecs' WebAssembly memory) exceed it after an image is
   * replaced by a fresh one.
   */
  memoryLimitMb?: number;
}

interface Slot {
  worker: Worker;
  tasks: Set<number>;
  /** No new tasks; stopped once its last one is answered. */
  retiring: boolean;
}

interface Pending {
  label: string;
  resolve: (image: RenderedImage) => void;
  reject: (err: Error) => void;
}

/**
 * Renders on worker threads, one per core, so that drafting several studies uses every core and no image is ever
 * decoded on the main thread (which answers /healthz and every HTTP request). A thread that dies, from a codec's
 * fault or its memory limit, fails only the images it was rendering and is replaced; one that has grown past its
 * memory limit is replaced after its image, because WebAssembly memory never shrinks.
 */
export class RenderPool {
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly size: number;
  private readonly limits: ImageLimits;
  private readonly memoryLimitMb: number;
  private nextId = 1;
  private closed = false;
  private counts = { started: 0, recycled: 0, died: 0 };

  constructor(options: RenderPoolOptions = {}) {
    this.size = options.size ?? Math.max(1, availableParallelism());
    this.limits = options.limits ?? DEFAULT_LIMITS;
    this.memoryLimitMb = options.memoryLimitMb ?? DEFAULT_RENDER_MEMORY_MB;
  }

  /** Rendering threads the pool runs at most. */
  get threads(): number {
    return this.size;
  }

  /** The size ceilings every image is checked against. */
  get limitsInForce(): ImageLimits {
    return this.limits;
  }

  /** Threads started, replaced for their memory, and lost to a crash, since the pool was made. */
  stats(): { started: number; recycled: number; died: number; threads: number } {
    return { ...this.counts, threads: this.slots.length };
  }

  private spawn(): Slot {
    // The worker is the sibling module: render-worker.js when built; when run from source (tests, `npm run`), the
    // .ts file, loaded through tsx's loader, which a worker thread does not inherit.
    const fromSource = import.meta.url.endsWith('.ts');
    const url = new URL(`./render-worker.${fromSource ? 'ts' : 'js'}`, import.meta.url).href;
    const code = fromSource
      ? `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(url)}); })`
      : `import(${JSON.stringify(url)})`;
    const worker = new Worker(code, { eval: true, resourceLimits: { maxOldGenerationSizeMb: this.memoryLimitMb } });
    worker.unref();
    const slot: Slot = { worker, tasks: new Set(), retiring: false };
    worker.on('message', (reply: RenderReply) => this.settle(slot, reply));
    worker.on('error', (err) => this.lost(slot, err));
    worker.on('exit', (code) => this.lost(slot, new Error(`it exited with code ${code}`)));
    this.counts.started += 1;
    return slot;
  }

  private settle(slot: Slot, reply: RenderReply): void {
    const p = this.pending.get(reply.id);
    slot.tasks.delete(reply.id);
    if (reply.memoryBytes > this.memoryLimitMb * 2 ** 20 && !slot.retiring) {
      slot.retiring = true;
      this.counts.recycled += 1;
      this.slots.splice(this.slots.indexOf(slot), 1);
    }
    if (slot.retiring && slot.tasks.size === 0) void slot.worker.terminate();
    if (!p) return;
    this.pending.delete(reply.id);
    if (reply.ok) p.resolve({ ...reply.image, png: Buffer.from(reply.png) });
    else p.reject(reply.name === 'RenderError' ? new RenderError(reply.message) : new Error(reply.message));
  }

  /** A thread that died or stopped: the images it held fail, and the next render starts a thread in its place. */
  private lost(slot: Slot, err: Error): void {
    const at = this.slots.indexOf(slot);
    if (at >= 0) this.slots.splice(at, 1);
    if (slot.tasks.size === 0) return;
    if (!this.closed) this.counts.died += 1;
    const outOfMemory = (err as { code?: string }).code === 'ERR_WORKER_OUT_OF_MEMORY';
    for (const id of slot.tasks) {
      const p = this.pending.get(id);
      this.pending.delete(id);
      if (!p) continue;
      // Running out of memory is the image's doing (a retry would do the same); any other loss may be transient.
      p.reject(outOfMemory
        ? new RenderError(`${p.label}: rendering it ran out of memory (a rendering thread may hold ${this.memoryLimitMb} MiB, RADDRAFT_RENDER_MEMORY_MB)`)
        : new Error(`the rendering thread failed: ${err.message}`));
    }
    slot.tasks.clear();
    void slot.worker.terminate();
  }

  private pick(): Slot {
    while (this.slots.length < this.size) {
      try {
        this.slots.push(this.spawn());
      } catch (err) {
        if (this.slots.length === 0) throw new Error(`rendering threads cannot be started (${(err as Error).message})`, { cause: err });
        break;
      }
    }
    return this.slots.reduce((a, b) => (b.tasks.size < a.tasks.size ? b : a));
  }

  /** Renders an instance from a file, or from bytes in a buffer shared with the rendering threads (staging.ts). */
  async render(source: string | SharedInstance, label: string, options: { window?: { center: number; width: number }; maxSide?: number } = {}): Promise<RenderedImage> {
    if (this.closed) throw new Error('the rendering threads have been stopped');
    const slot = this.pick();
    const id = this.nextId++;
    const task: RenderTask = { id, ...(typeof source === 'string' ? { file: source } : { shared: source }), label, limits: this.limits, ...options };
    return new Promise<RenderedImage>((resolve, reject) => {
      this.pending.set(id, { label, resolve, reject });
      slot.tasks.add(id);
      slot.worker.postMessage(task);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.slots];
    this.slots.length = 0;
    await Promise.all(all.map((s) => s.worker.terminate()));
  }
}
