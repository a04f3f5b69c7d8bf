import type { ModelImage } from './model-images.js';

/** One study to draft and score: its reference report and a way to get its images as the model receives them. */
export interface EvalSample {
  id: string;
  reference: { findings: string; impression: string };
  images(): Promise<ModelImage[]>;
}
