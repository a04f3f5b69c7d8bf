import { contextBlock, type ClinicalContext } from './clinical-context.js';
import { NO_PRIOR_NOTE, priorBlock, type PriorReport } from './prior-report.js';

/**
 * The report prompt Lingshu was evaluated with in MedEvalKit (MIMIC-CXR / IU-Xray report generation), kept byte for
 * byte — the surrounding newline and indentation included — so its published quality carries over. Each image is
 * preceded by its `<image_N>: ` label, as MedEvalKit's Qwen2.5-VL adapters send multi-image samples.
 */
export const MEDEVALKIT_REPORT_PROMPT =
  '\n        You are a helpful assistant. Please generate a report for the given images, including both findings and impressions. Return the report in the following format: Findings: {} Impression: {}.\n        ';

export type PromptVariant = 'medevalkit' | 'clinical-context' | 'prior-report';

/** Recorded in the job and the Provenance, so quality can be compared by prompt. */
export const PROMPT_VERSIONS: Record<PromptVariant, string> = {
  medevalkit: 'medevalkit-report-1',
  'clinical-context': 'clinical-context-1',
  'prior-report': 'prior-report-1',
};

export const PROMPT_VERSION = PROMPT_VERSIONS.medevalkit;

/**
 * A part of a user message. An image is held as its PNG and goes out as an OpenAI `image_url` part with a
 * `data:image/png;base64,` URL, written straight into the request body (chat-body.ts).
 */
export type ContentPart =
  | { type: 'text'; text: string }
  | { type: 'image_url'; png: Buffer };

export interface UserMessage {
  role: 'user';
  content: ContentPart[];
}

export interface PromptOptions {
  variant?: PromptVariant;
  context?: ClinicalContext;
  /** With the prior-report variant: the prior to quote, or undefined when the patient has none. */
  prior?: PriorReport;
}

/** The prompt of a version as a document: what the model reads after the images, with placeholders for data. */
export function promptTemplate(version: string): { text: string; description: string } {
  if (version === PROMPT_VERSIONS['clinical-context']) {
    const block = contextBlock({ ageBand: '{age band}', sex: '{sex}', views: ['{views}'], studyDescription: '{study description}', indication: '{indication}' });
    return {
      text: `${block}\n${MEDEVALKIT_REPORT_PROMPT}`,
      description: 'MedEvalKit\'s report-generation prompt, preceded by a quoted clinical-context block (age band, sex, views, study description, indication); each image is preceded by "<image_N>: ".',
    };
  }
  if (version === PROMPT_VERSIONS['prior-report']) {
    const block = priorBlock({ date: '{prior study date}', findings: '{prior findings}', impression: '{prior impression}' });
    return {
      text: `${block}\n${MEDEVALKIT_REPORT_PROMPT}`,
      description: `MedEvalKit's report-generation prompt, preceded by the patient's latest signed prior chest X-ray report as a quoted, dated block (or, when there is none, the note "${NO_PRIOR_NOTE}"); each image is preceded by "<image_N>: ".`,
    };
  }
  return {
    text: MEDEVALKIT_REPORT_PROMPT,
    description: 'Report-generation prompt of MedEvalKit, the prompt Lingshu was evaluated with; each image is preceded by "<image_N>: ".',
  };
}

export function buildReportMessages(images: { png: Buffer }[], options: PromptOptions = {}): UserMessage[] {
  const content: ContentPart[] = [];
  images.forEach((img, i) => {
    content.push({ type: 'text', text: `<image_${i + 1}>: ` });
    content.push({ type: 'image_url', png: img.png });
  });
  if (options.variant === 'clinical-context' && options.context) content.push({ type: 'text', text: contextBlock(options.context) });
  if (options.variant === 'prior-report') content.push({ type: 'text', text: options.prior ? priorBlock(options.prior) : NO_PRIOR_NOTE });
  content.push({ type: 'text', text: MEDEVALKIT_REPORT_PROMPT });
  return [{ role: 'user', content }];
}
