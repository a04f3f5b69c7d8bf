import type { SentenceFlag } from '../report/report.js';
import { consistencyFlags, supportScores, type SentenceSupport } from './consistency.js';
import { findContradictions } from './contradictions.js';
import { urgentFindings, URGENT_NAMES, type UrgentName } from './urgent.js';

/**
 * The checks that point the reviewer at the sentences most likely to be wrong, run on every draft after the format
 * and wording checks (safety.ts): contradictions between findings and impression, critical findings the draft
 * asserts, and — when samples were drawn — claims the samples do not support. Every flag names its sentence and why;
 * each also reads as one line of text, for the outputs that show flags as text.
 */
export interface DraftCheckResult {
  sentenceFlags: SentenceFlag[];
  /** Critical findings asserted, for the review priority; undefined when none. */
  urgent: { findings: string[] } | undefined;
  /** The support of each sentence, when samples were drawn. */
  support: SentenceSupport[] | undefined;
}

export function isUrgentName(name: string): name is UrgentName {
  return (URGENT_NAMES as string[]).includes(name);
}

export function checkClaims(
  draft: { findings: string; impression: string },
  options: { urgent: readonly string[]; samples?: readonly string[] },
): DraftCheckResult {
  const urgent = urgentFindings(draft, options.urgent.filter(isUrgentName));
  const support = options.samples?.length ? supportScores(draft, options.samples) : undefined;
  const sentenceFlags = [
    ...urgent.flags,
    ...findContradictions(draft.findings, draft.impression),
    ...(support ? consistencyFlags(support) : []),
  ];
  return { sentenceFlags, urgent: urgent.findings.length ? { findings: urgent.findings } : undefined, support };
}

const quote = (s: string) => `"${s.length > 120 ? `${s.slice(0, 117)}...` : s}"`;

/** One line of text for a sentence flag, as the outputs that list flags show it. */
export function flagText(flag: SentenceFlag): string {
  return `${flag.section} ${quote(flag.sentence)}: ${flag.why}`;
}
