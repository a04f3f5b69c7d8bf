/**
 * Sentence BLEU as NLTK computes it (nltk/translate/bleu_score.py `sentence_bleu`, no smoothing, i.e.
 * SmoothingFunction().method0), the function MedEvalKit calls with weights [1], [1/2]*2, [1/3]*3 and [1/4]*4.
 * Papineni et al. 2002: clipped n-gram precisions, geometric mean, brevity penalty against the closest reference
 * length.
 */

/** NLTK substitutes sys.float_info.min for a zero precision (with a warning), so the score is tiny but not 0. */
const FLOAT_MIN = 2.2250738585072014e-308;

function ngramCounts(tokens: readonly string[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join('\u0000');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** NLTK's modified_precision: hypothesis counts clipped by the largest count in any reference; denominator ≥ 1. */
export function modifiedPrecision(references: readonly (readonly string[])[], hypothesis: readonly string[], n: number): { numerator: number; denominator: number } {
  const counts = ngramCounts(hypothesis, n);
  const maxRef = new Map<string, number>();
  for (const ref of references) {
    for (const [g, c] of ngramCounts(ref, n)) if (counts.has(g)) maxRef.set(g, Math.max(maxRef.get(g) ?? 0, c));
  }
  let numerator = 0;
  let total = 0;
  for (const [g, c] of counts) {
    numerator += Math.min(c, maxRef.get(g) ?? 0);
    total += c;
  }
  return { numerator, denominator: Math.max(1, total) };
}

/** The reference length closest to the hypothesis length, the shorter on a tie. */
export function closestReferenceLength(references: readonly (readonly string[])[], hypLength: number): number {
  let best = Infinity;
  for (const ref of references) {
    const r = ref.length;
    if (Math.abs(r - hypLength) < Math.abs(best - hypLength) || (Math.abs(r - hypLength) === Math.abs(best - hypLength) && r < best)) best = r;
  }
  return best;
}

export function brevityPenalty(closestRefLength: number, hypLength: number): number {
  if (hypLength > closestRefLength) return 1;
  if (hypLength === 0) return 0;
  return Math.exp(1 - closestRefLength / hypLength);
}

/** Neumaier's compensated sum, standing in for Python's math.fsum on a handful of terms. */
function fsum(values: number[]): number {
  let sum = 0;
  let c = 0;
  for (const v of values) {
    const t = sum + v;
    c += Math.abs(sum) >= Math.abs(v) ? sum - t + v : v - t + sum;
    sum = t;
  }
  return sum + c;
}

export function sentenceBleu(references: readonly (readonly string[])[], hypothesis: readonly string[], weights: readonly number[] = [0.25, 0.25, 0.25, 0.25]): number {
  const precisions = weights.map((_, i) => modifiedPrecision(references, hypothesis, i + 1));
  // NLTK returns 0 outright when no unigram matches.
  if (precisions[0]!.numerator === 0) return 0;
  const bp = brevityPenalty(closestReferenceLength(references, hypothesis.length), hypothesis.length);
  const logs = precisions.map((p, i) => weights[i]! * Math.log(p.numerator === 0 ? FLOAT_MIN : p.numerator / p.denominator));
  return bp * Math.exp(fsum(logs));
}

/** BLEU-1..4 with MedEvalKit's weights, one reference. */
export function bleu1to4(reference: readonly string[], hypothesis: readonly string[]): [number, number, number, number] {
  const refs = [reference];
  return [
    sentenceBleu(refs, hypothesis, [1]),
    sentenceBleu(refs, hypothesis, [0.5, 0.5]),
    sentenceBleu(refs, hypothesis, [1 / 3, 1 / 3, 1 / 3]),
    sentenceBleu(refs, hypothesis, [0.25, 0.25, 0.25, 0.25]),
  ];
}
