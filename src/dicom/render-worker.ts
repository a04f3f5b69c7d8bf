/**
 * A worker thread that renders DICOM files (render-pool.ts): decoding and the grey-scale pipeline would otherwise
 * hold the main thread, and a hostile image must be able to take down no more than its own thread.
 */
import { parentPort } from 'node:worker_threads';
import type { ImageLimits } from './limits.js';
import { fitWithin, renderInstance, type RenderedImage } from './render.js';

export interface RenderTask {
  id: number;
  file: string;
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

parentPort?.on('message', (task: RenderTask) => {
  void (async () => {
    try {
      const image = await renderInstance(task.file, task.label, {
        limits: task.limits,
        ...(task.window ? { window: task.window } : {}),
        ...(task.maxSide ? { size: fitWithin(task.maxSide) } : {}),
      });
      const { png, ...rest } = image;
      const copy = png.buffer.slice(png.byteOffset, png.byteOffset + png.byteLength) as ArrayBuffer;
      parentPort!.postMessage({ id: task.id, ok: true, image: rest, png: copy, memoryBytes: memoryBytes() } satisfies RenderReply, [copy]);
    } catch (err) {
      parentPort!.postMessage({ id: task.id, ok: false, name: (err as Error).name, message: (err as Error).message, memoryBytes: memoryBytes() } satisfies RenderReply);
    }
  })();
});
