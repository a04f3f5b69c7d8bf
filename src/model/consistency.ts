import type { SentenceFlag } from '../report/report.js';
import { parseReport } from '../report/sections.js';
import { claimsOf, draftSentences, mergeClaims, sidesDisagree, similarity, type Claim, type MergedClaim } from './claims.js';

/**
 * Claims that do not survive repeated sampling (after RadFlag, arXiv 2411.00299): besides the greedy draft the model
 * writes N samples at a higher temperature; each sentence of the draft is scored by how many samples support it. A
 * sample supports a sentence when it agrees with every finding the sentence asserts or denies (CheXpert-style labels,
 * on the same side), or, for a sentence that names no finding the labeler knows, when it has a sentence of nearly the
 * same words (a sentence that only calls something normal or absent is supported by every sample: leaving it out is
 * no disagreement).
 * Sentences supported by fewer than half of the samples are flagged with the figure.
 */
export interface SentenceSupport {
  section: 'findings' | 'impression';
  sentence: string;
  supported: number;
  samples: number;
}

/** Content-word overlap at which two sentences say the same thing in other words. */
export const SIMILAR = 0.6;
/** Below this share of supporting samples a sentence is flagged. */
export const SUPPORT_THRESHOLD = 0.5;

interface Sample {
  claims: Map<string, MergedClaim>;
  sentences: string[];
}

function readSample(text: string): Sample {
  let body = text;
  try {
    const parsed = parseReport(text);
    body = `${parsed.findings}\n${parsed.impression}`;
  } catch {
    // A sample without sections is read as it is; it still supports or fails to support each sentence.
  }
  return { claims: mergeClaims(claimsOf(body)), sentences: draftSentences(body) };
}

function agrees(claim: Claim, sample: Sample): boolean {
  const s = sample.claims.get(claim.key);
  // A denial is contradicted only by a sample that asserts the finding without also denying it somewhere.
  if (claim.label === 0) return s?.label !== 1 || s.denied;
  if (!s || s.label === 0) return false;
  return !(claim.side && sidesDisagree(new Set([claim.side]), s.sides));
}

/** A sentence naming no finding that says something is normal or absent: it cannot invent a finding. */
const NORMAL_STATEMENT = /\b(no|not|normal|clear|unremarkable|intact|within normal limits)\b/i;

function supports(sentence: string, claims: Claim[], sample: Sample): boolean {
  if (claims.length) return claims.every((c) => agrees(c, sample));
  if (NORMAL_STATEMENT.test(sentence)) return true;
  return sample.sentences.some((s) => similarity(sentence, s) >= SIMILAR);
}

export function supportScores(draft: { findings: string; impression: string }, sampleTexts: readonly string[]): SentenceSupport[] {
  const samples = sampleTexts.map(readSample);
  const out: SentenceSupport[] = [];
  for (const section of ['findings', 'impression'] as const) {
    for (const sentence of draftSentences(draft[section])) {
      const claims = claimsOf(sentence);
      const supported = samples.filter((s) => supports(sentence, claims, s)).length;
      out.push({ section, sentence, supported, samples: samples.length });
    }
  }
  return out;
}

export function consistencyFlags(scores: readonly SentenceSupport[]): SentenceFlag[] {
  return scores
    .filter((s) => s.samples > 0 && s.supported / s.samples < SUPPORT_THRESHOLD)
    .map((s) => ({
      section: s.section,
      sentence: s.sentence,
      kind: 'unstable' as const,
      why: `asserted in ${s.supported} of ${s.samples} samples: the model does not say this consistently`,
    }));
}
