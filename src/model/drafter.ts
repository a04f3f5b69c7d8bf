import type { Logger } from '../log.js';
import type { ClinicalContext } from './clinical-context.js';
import type { ParsedReport } from '../report/sections.js';

export interface Draft extends ParsedReport {
  text: string;
  model: string;
  promptVersion: string;
  requestId: string | undefined;
  finishReason: string | undefined;
  /** Safety and format flags for the reviewer. */
  flags: string[];
}

export interface DraftRequest {
  images: { png: Buffer }[];
  /** Views of the images, in order: PA, AP, LATERAL or UNKNOWN. */
  views: string[];
  context?: ClinicalContext;
}

/**
 * The drafting seam: the pipeline asks for a draft of rendered images and gets sections, flags and who wrote it.
 * The Lingshu client (any OpenAI-compatible vision model served like Lingshu) is the first implementation.
 */
export interface Drafter {
  draft(request: DraftRequest, log?: Logger, signal?: AbortSignal): Promise<Draft>;
}
