import { classify, mentionsIn, preparedSentences, type Label, type Observation } from '../report/chexpert-labeler.js';

/**
 * What one sentence of a draft claims, read with the CheXpert-style labeler: each finding it mentions, whether it
 * asserts, denies or hedges it, and on which side. The safety checks compare these claims between the findings and
 * the impression (contradictions) and between the draft and repeated samples (consistency).
 */
export type Side = 'left' | 'right' | 'both';

export interface Claim {
  /** A CheXpert observation, or `other:<phrase>` for the labeler's other abnormal findings (emphysema, granuloma…). */
  key: string;
  observation: Observation | undefined;
  label: Label;
  side: Side | undefined;
}

/** Sentences as a reader sees them (keeping punctuation); a list item or a line counts as a sentence too. */
export function draftSentences(text: string): string[] {
  return text.split(/(?<=[.!?])\s+|\n+/).map((s) => s.trim()).filter(Boolean);
}

const SIDE_WORD = /\b(left|right|bilateral|bilaterally|bibasilar|bibasal|both)\b/g;
const SIDE_AFTER = /^\s*[a-z ]{0,24}?\b(?:on|in|at|of) the (left|right)\b|^\s*[a-z ]{0,12}?\b(bilaterally)\b|^[a-z ]{0,3}-sided/;

function sideOf(word: string): Side {
  if (word === 'left' || word === 'right') return word;
  return 'both';
}

/** The side named just before a mention (within its own clause and four words), or just after it. */
function mentionSide(sentence: string, index: number, end: number): Side | undefined {
  const clause = sentence.slice(0, index).split(/[,;:]|\b(?:and|but|with|while|whereas)\b/).pop() ?? '';
  const near = clause.trim().split(/\s+/).slice(-4).join(' ');
  let found: Side | undefined;
  for (const m of near.matchAll(SIDE_WORD)) found = sideOf(m[1]!);
  if (found) return found;
  const after = SIDE_AFTER.exec(sentence.slice(end, end + 40));
  if (after) return sideOf(after[1] ?? after[2] ?? 'both');
  const sided = /^[a-z]*\s*(left|right)-sided/.exec(sentence.slice(end));
  return sided ? sideOf(sided[1]!) : undefined;
}

/** Claims of one piece of text (a sentence or a whole section), in the order of its prepared sentences. */
export function claimsOf(text: string): Claim[] {
  const claims: Claim[] = [];
  for (const sentence of preparedSentences(text)) {
    for (const m of mentionsIn(sentence).sort((a, b) => a.index - b.index)) {
      const end = m.index + m.phrase.length + (/[a-z]$/.test(m.phrase) ? /^[a-z]*/.exec(sentence.slice(m.index + m.phrase.length))![0].length : 0);
      const label = classify(sentence, m.phrase, m.index);
      const observation = m.observation === 'other' ? undefined : m.observation;
      claims.push({ key: observation ?? `other:${m.phrase.trim()}`, observation, label, side: mentionSide(sentence, m.index, end) });
    }
  }
  return claims;
}

/** Several claims on one key: asserted wins over hedged over denied (as the labeler merges), sides pooled. */
export interface MergedClaim {
  label: Label;
  sides: Set<Side>;
  /** Some mention denies it (with `label` 1: the text both asserts and denies it). */
  denied: boolean;
}

export function mergeClaims(claims: readonly Claim[]): Map<string, MergedClaim> {
  const out = new Map<string, MergedClaim>();
  const rank = (l: Label) => (l === 1 ? 2 : l === -1 ? 1 : 0);
  for (const c of claims) {
    const had = out.get(c.key);
    const label = had && rank(had.label) >= rank(c.label) ? had.label : c.label;
    const sides = had?.sides ?? new Set<Side>();
    if (c.side && c.label !== 0) sides.add(c.side);
    out.set(c.key, { label, sides, denied: (had?.denied ?? false) || c.label === 0 });
  }
  return out;
}

/** Two sets of sides that cannot describe the same finding: both named, neither bilateral, no side in common. */
export function sidesDisagree(a: ReadonlySet<Side>, b: ReadonlySet<Side>): boolean {
  if (a.size === 0 || b.size === 0 || a.has('both') || b.has('both')) return false;
  return ![...a].some((s) => b.has(s));
}

/** The words of a sentence that carry its meaning, for similarity between sentences. */
const STOP = new Set('a an the is are was were be been of in on at to and or with there this that as by for from its it has have which'.split(' '));
export function contentWords(text: string): Set<string> {
  return new Set(text.toLowerCase().split(/[^a-z0-9-]+/).filter((w) => w && !STOP.has(w)));
}

/** Dice overlap of content words (0..1): 1 for the same words, 0 for none in common. */
export function similarity(a: string, b: string): number {
  const x = contentWords(a);
  const y = contentWords(b);
  if (x.size === 0 && y.size === 0) return 1;
  let common = 0;
  for (const w of x) if (y.has(w)) common += 1;
  return (2 * common) / (x.size + y.size);
}
