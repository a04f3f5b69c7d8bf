import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { fitWithin, renderInstance, RenderError, type RenderedImage, type RenderOptions } from './render.js';
import type { RenderReply, RenderTask } from './render-worker.js';

interface Pending {
  resolve: (image: RenderedImage) => void;
  reject: (err: Error) => void;
}

/**
 * Renders on worker threads, one per core, so that drafting several studies uses every core. If threads cannot
 * be started (an unusual runtime), rendering happens on the calling thread instead.
 */
export class RenderPool {
  private readonly workers: { worker: Worker; busy: number }[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failed = false;

  constructor(private readonly size = Math.max(1, availableParallelism())) {}

  private start(): void {
    if (this.workers.length || this.failed) return;
    // The worker is the sibling module: render-worker.js when built; when run from source (tests, `npm run`), the
    // .ts file, loaded through tsx's loader, which a worker thread does not inherit.
    const fromSource = import.meta.url.endsWith('.ts');
    const url = new URL(`./render-worker.${fromSource ? 'ts' : 'js'}`, import.meta.url).href;
    const code = fromSource
      ? `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(url)}); })`
      : `import(${JSON.stringify(url)})`;
    try {
      for (let i = 0; i < this.size; i++) {
        const worker = new Worker(code, { eval: true });
        worker.unref();
        worker.on('message', (reply: RenderReply) => this.settle(reply));
        worker.on('error', (err) => this.crash(err));
        this.workers.push({ worker, busy: 0 });
      }
    } catch {
      this.failed = true;
    }
  }

  private settle(reply: RenderReply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    if (reply.ok) p.resolve({ ...reply.image, png: Buffer.from(reply.png) });
    else p.reject(reply.name === 'RenderError' ? new RenderError(reply.message) : new Error(reply.message));
  }

  private crash(err: Error): void {
    for (const [id, p] of this.pending) {
      p.reject(new Error(`the rendering thread failed: ${err.message}`));
      this.pending.delete(id);
    }
    for (const w of this.workers) void w.worker.terminate();
    this.workers.length = 0;
  }

  async render(file: string, label: string, options: { window?: { center: number; width: number }; maxSide?: number } = {}): Promise<RenderedImage> {
    this.start();
    if (this.failed || this.workers.length === 0) {
      const inline: RenderOptions = { ...(options.window ? { window: options.window } : {}), ...(options.maxSide ? { size: fitWithin(options.maxSide) } : {}) };
      return renderInstance(file, label, inline);
    }
    const target = this.workers.reduce((a, b) => (b.busy < a.busy ? b : a));
    const id = this.nextId++;
    const task: RenderTask = { id, file, label, ...options };
    target.busy += 1;
    try {
      return await new Promise<RenderedImage>((resolve, reject) => {
        this.pending.set(id, { resolve, reject });
        target.worker.postMessage(task);
      });
    } finally {
      target.busy -= 1;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
    this.workers.length = 0;
  }
}
