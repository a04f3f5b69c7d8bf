import { classify, preparedSentences } from '../report/chexpert-labeler.js';
import type { SentenceFlag } from '../report/report.js';
import { draftSentences } from './claims.js';
import { devicesOf } from './devices.js';

/**
 * Critical findings that should reach a radiologist first when a draft asserts them. What the model asserts is an
 * unverified AI suspicion: it raises the draft's review priority and is labelled as a suspicion wherever shown; it
 * takes nothing away from any other study. Which findings count is a site's choice (RADDRAFT_URGENT_FINDINGS).
 */
export interface UrgentRule {
  /** What the reviewer reads: "the draft asserts <finding>". */
  finding: string;
  /** True when one prepared sentence (lower case, see the labeler) asserts the finding, denied and hedged ones not. */
  asserts(sentence: string, original: string): boolean;
}

/** A phrase asserted (not denied, not hedged) somewhere in the prepared sentence. */
function asserted(sentence: string, phrase: RegExp): boolean {
  for (const m of sentence.matchAll(new RegExp(phrase.source, 'g'))) {
    if (classify(sentence, m[0], m.index) === 1) return true;
  }
  return false;
}

export const URGENT_CATALOGUE = {
  pneumothorax: { finding: 'pneumothorax', asserts: (s) => asserted(s, /\b(?:tension )?pneumothora(?:x|ces)\b/) },
  'free-air': {
    finding: 'free subdiaphragmatic air',
    asserts: (s) => asserted(s, /\b(?:pneumoperitoneum|free (?:intraperitoneal |intra-abdominal |subdiaphragmatic )?(?:air|gas)|(?:air|gas) (?:under|beneath|below) the (?:right |left )?(?:hemi)?diaphragms?|subdiaphragmatic (?:free )?(?:air|gas))\b/),
  },
  'malpositioned-device': {
    finding: 'a malpositioned tube or line',
    asserts: (_s, original) => devicesOf(original).some((d) => d.label === 1 && d.position === 'wrong'),
  },
  'large-effusion': {
    finding: 'a large pleural effusion',
    asserts: (s) => asserted(s, /\b(?:large|massive|moderate to large|moderate-to-large|very large)(?: (?:left|right|bilateral|left-sided|right-sided))? (?:pleural )?effusions?\b/),
  },
  pneumomediastinum: { finding: 'pneumomediastinum', asserts: (s) => asserted(s, /\bpneumomediastinum\b/) },
  'widened-mediastinum': { finding: 'a widened mediastinum', asserts: (s) => asserted(s, /\b(?:widened|widening of the) (?:superior )?mediastinum\b/) },
} satisfies Record<string, UrgentRule>;
export type UrgentName = keyof typeof URGENT_CATALOGUE;
export const URGENT_NAMES = Object.keys(URGENT_CATALOGUE) as UrgentName[];
export const DEFAULT_URGENT: readonly UrgentName[] = ['pneumothorax', 'free-air', 'malpositioned-device', 'large-effusion'];

export const URGENT_LABEL = 'URGENT? Unverified AI suspicion';

export interface UrgentResult {
  /** The critical findings asserted, in catalogue order; empty when none. */
  findings: string[];
  flags: SentenceFlag[];
}

export function urgentFindings(draft: { findings: string; impression: string }, names: readonly UrgentName[]): UrgentResult {
  const found = new Set<string>();
  const flags: SentenceFlag[] = [];
  for (const section of ['findings', 'impression'] as const) {
    for (const sentence of draftSentences(draft[section])) {
      const prepared = preparedSentences(sentence);
      const hits = names.map((n) => URGENT_CATALOGUE[n]).filter((rule) => prepared.some((p) => rule.asserts(p, sentence)));
      if (!hits.length) continue;
      for (const h of hits) found.add(h.finding);
      const what = hits.map((h) => h.finding).join(' and ');
      flags.push({ section, sentence, kind: 'urgent', why: `${URGENT_LABEL}: the draft asserts ${what}; a radiologist has not confirmed it` });
    }
  }
  const order = names.map((n) => URGENT_CATALOGUE[n].finding);
  return { findings: order.filter((f) => found.has(f)), flags };
}
