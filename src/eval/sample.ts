import type { PriorReport } from '../model/prior-report.js';
import type { ModelImage } from './model-images.js';

/** One study to draft and score: its reference report and a way to get its images as the model receives them. */
export interface EvalSample {
  id: string;
  reference: { findings: string; impression: string };
  /** The patient's prior report, for the prior-report prompt (from the references file's prior_* columns). */
  prior?: PriorReport;
  images(): Promise<ModelImage[]>;
}
