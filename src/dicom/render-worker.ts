/**
 * A worker thread that renders DICOM files (render-pool.ts): decoding and the grey-scale pipeline would otherwise
 * hold the main thread, and a hostile image must be able to take down no more than its own thread.
 */
import { parentPort } from 'node:worker_threads';
import sharp from 'sharp';
import type { ImageLimits } from './limits.js';
import { fitWithin, renderBytes, renderInstance, type RenderedImage, type RenderOptions } from './render.js';
import { RenderScratch } from './scratch.js';
import type { SharedInstance } from './staging.js';

export interface RenderTask {
  id: number;
  /** The instance: a file, or `length` bytes from `offset` in a buffer shared with the thread that fetched it. */
  file?: string;
  shared?: SharedInstance;
  label: string;
  limits: ImageLimits;
  window?: { center: number; width: number };
  /** Longest side for a viewer picture; absent for the model's size. */
  maxSide?: number;
}

/** Every reply says how much memory the thread holds afterwards, so that the pool can replace a grown one. */
export type RenderReply = { memoryBytes: number } & (
  | { id: number; ok: true; image: Omit<RenderedImage, 'png'>; png: ArrayBuffer }
  | { id: number; ok: false; name: string; message: string }
);

/** This thread's JavaScript heap and external memory; the codecs' WebAssembly memory is counted in the latter. */
function memoryBytes(): number {
  const { heapUsed, external } = process.memoryUsage();
  return heapUsed + external;
}

const scratch = new RenderScratch();
// Parallelism comes from the pool's threads, one per core: libvips's own threads for each picture would only add
// their start-up and hand-over on top.
sharp.concurrency(1);

async function render(task: RenderTask): Promise<RenderReply> {
  try {
    const options: RenderOptions = {
      limits: task.limits,
      scratch,
      ...(task.window ? { window: task.window } : {}),
      ...(task.maxSide ? { size: fitWithin(task.maxSide) } : {}),
    };
    const image = task.shared
      ? await renderBytes(Buffer.from(task.shared.buffer, task.shared.offset, task.shared.length), task.label, options)
      : await renderInstance(task.file!, task.label, options);
    const { png, ...rest } = image;
    const copy = png.buffer.slice(png.byteOffset, png.byteOffset + png.byteLength) as ArrayBuffer;
    return { id: task.id, ok: true, image: rest, png: copy, memoryBytes: memoryBytes() };
  } catch (err) {
    return { id: task.id, ok: false, name: (err as Error).name, message: (err as Error).message, memoryBytes: memoryBytes() };
  }
}

// One image at a time, in the order asked: the scratch buffers are reused from one image to the next, and a thread
// is one core's worth of work whatever the number of images queued on it.
let queue: Promise<void> = Promise.resolve();
parentPort?.on('message', (task: RenderTask) => {
  queue = queue.then(async () => {
    const reply = await render(task);
    parentPort!.postMessage(reply, reply.ok ? [reply.png] : []);
  });
});
