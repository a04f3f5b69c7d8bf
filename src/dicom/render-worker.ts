/**
 * A worker thread that renders DICOM files (render-pool.ts): the grey-scale pipeline is JavaScript that would
 * otherwise hold the main thread, so rendering on every core needs threads.
 */
import { parentPort } from 'node:worker_threads';
import { fitWithin, renderInstance, type RenderedImage } from './render.js';

export interface RenderTask {
  id: number;
  file: string;
  label: string;
  window?: { center: number; width: number };
  /** Longest side for a viewer picture; absent for the model's size. */
  maxSide?: number;
}

export type RenderReply =
  | { id: number; ok: true; image: Omit<RenderedImage, 'png'>; png: ArrayBuffer }
  | { id: number; ok: false; name: string; message: string };

parentPort?.on('message', (task: RenderTask) => {
  void (async () => {
    try {
      const image = await renderInstance(task.file, task.label, {
        ...(task.window ? { window: task.window } : {}),
        ...(task.maxSide ? { size: fitWithin(task.maxSide) } : {}),
      });
      const { png, ...rest } = image;
      const copy = png.buffer.slice(png.byteOffset, png.byteOffset + png.byteLength) as ArrayBuffer;
      parentPort!.postMessage({ id: task.id, ok: true, image: rest, png: copy } satisfies RenderReply, [copy]);
    } catch (err) {
      parentPort!.postMessage({ id: task.id, ok: false, name: (err as Error).name, message: (err as Error).message } satisfies RenderReply);
    }
  })();
});
