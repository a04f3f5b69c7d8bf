import type { Logger } from '../log.js';
import type { ClinicalContext } from './clinical-context.js';
import type { ParsedReport } from '../report/sections.js';
import type { SentenceFlag } from '../report/report.js';
import type { PriorReport } from './prior-report.js';

export interface Draft extends ParsedReport {
  text: string;
  model: string;
  promptVersion: string;
  requestId: string | undefined;
  finishReason: string | undefined;
  /** Safety and format flags for the reviewer, each as one line of text (sentence flags included). */
  flags: string[];
  /** The flags tied to one sentence, with why. */
  sentenceFlags: SentenceFlag[];
  /** Critical findings the draft asserts (an unverified AI suspicion); absent when none. */
  urgent?: { findings: string[] };
  /** True when a prior report was quoted in the prompt (comparison wording may then be right). */
  priorGiven?: boolean;
  /** Consistency samples asked for and received, when sampling is on. */
  samples?: { asked: number; received: number };
}

export interface DraftRequest {
  images: { png: Buffer }[];
  /** Views of the images, in order: PA, AP, LATERAL or UNKNOWN. */
  views: string[];
  context?: ClinicalContext;
  /** The patient's latest signed prior report, when the prior-report prompt found one. */
  prior?: PriorReport;
}

/**
 * The drafting seam: the pipeline asks for a draft of rendered images and gets sections, flags and who wrote it.
 * The Lingshu client (any OpenAI-compatible vision model served like Lingshu) is the first implementation.
 */
export interface Drafter {
  draft(request: DraftRequest, log?: Logger, signal?: AbortSignal): Promise<Draft>;
}
