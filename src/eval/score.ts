import { bootstrapMean, bootstrapStatistic, type Estimate } from './bootstrap.js';
import { bleu1to4 } from './metrics/bleu.js';
import { labelReport, type Labels } from '../report/chexpert-labeler.js';
import { cider, ciderD, type DocumentFrequencies } from './metrics/cider-d.js';
import { labelAgreement, type LabelAgreement } from './metrics/label-agreement.js';
import { medEvalKitTokens } from './metrics/medevalkit-text.js';
import { ptbTokens } from './metrics/ptb-tokens.js';
import { rougeL } from './metrics/rouge-l.js';
import type { ExternalScorer } from './scorer-hook.js';

/** A draft and its reference, as whole "Findings: … Impression: …" texts. */
export interface Pair {
  id: string;
  hypothesis: string;
  reference: string;
}

export interface PairScores {
  id: string;
  metrics: Record<string, number>;
  labels: { reference: Labels; draft: Labels };
  /** Why the external scorer gave nothing for this pair. */
  scorerError?: string;
}

export interface MetricInfo {
  name: string;
  source: string;
}

/** What each built-in metric reproduces; cited in the report. */
export const BUILT_IN_METRICS: readonly MetricInfo[] = [
  { name: 'BLEU-1', source: 'NLTK sentence_bleu, weights [1], MedEvalKit tokens' },
  { name: 'BLEU-2', source: 'NLTK sentence_bleu, weights [1/2]×2, MedEvalKit tokens' },
  { name: 'BLEU-3', source: 'NLTK sentence_bleu, weights [1/3]×3, MedEvalKit tokens' },
  { name: 'BLEU-4', source: 'NLTK sentence_bleu, weights [1/4]×4, MedEvalKit tokens' },
  { name: 'ROUGE-L', source: 'rouge 1.0.1 ROUGE-L F on lower-cased text, as MedEvalKit' },
  { name: 'CIDEr-D', source: 'pycocoevalcap CIDEr-D (clipped counts, length penalty), document frequencies from this set\'s references, PTB-style tokens' },
  { name: 'CIDEr', source: 'cidereval plain CIDEr as MedEvalKit calls it (no clipping, no length penalty), document frequencies from this set\'s references unless --cider-df gives others, PTB-style tokens' },
];

/**
 * Below this many studies, document frequencies taken from the set's own references say little: an n-gram in
 * every reference weighs nothing, and with one study every n-gram does, so CIDEr and CIDEr-D are 0.
 */
export const CIDER_MIN_STUDIES = 30;

/** The warning a set too small for set-derived document frequencies gets, or undefined. */
export function ciderWarning(studies: number, externalFrequencies: boolean): string | undefined {
  if (externalFrequencies || studies === 0 || studies >= CIDER_MIN_STUDIES) return undefined;
  const why = studies <= 1 ? 'with one study every n-gram is in every reference, so both are 0' : 'n-grams common to these few references weigh nothing';
  return `CIDEr and CIDEr-D take their document frequencies from this set's ${studies} reference${studies === 1 ? '' : 's'}; below ${CIDER_MIN_STUDIES} studies they say little (${why}). Give document frequencies from a larger corpus with --cider-df, or read BLEU and ROUGE-L instead.`;
}

export interface ScoreSummary {
  perPair: PairScores[];
  /** Mean and 95 % bootstrap interval of each metric over the pairs that have it. */
  summary: Record<string, Estimate>;
  labels: LabelAgreement & { microF1Interval: Estimate; macroF1Interval: Estimate };
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  }));
  return out;
}

/**
 * Scores every pair with the built-in metrics (and the site's scorer, if given), then summarises each with its
 * bootstrap interval. An empty draft scores 0 on every text metric, as MedEvalKit counts it.
 */
export async function scorePairs(pairs: readonly Pair[], options: { scorer?: ExternalScorer; scorerConcurrency?: number; resamples?: number; seed?: number; documentFrequencies?: DocumentFrequencies } = {}): Promise<ScoreSummary> {
  const hypTokens = pairs.map((p) => ptbTokens(p.hypothesis));
  const refTokens = pairs.map((p) => [ptbTokens(p.reference)]);
  const ciderDScores = ciderD(hypTokens, refTokens, options.documentFrequencies ? { documentFrequencies: options.documentFrequencies } : {});
  const plainCider = cider(hypTokens, refTokens, options.documentFrequencies ? { documentFrequencies: options.documentFrequencies } : {});
  const perPair: PairScores[] = pairs.map((p, i) => {
    const [b1, b2, b3, b4] = p.hypothesis.trim() ? bleu1to4(medEvalKitTokens(p.reference), medEvalKitTokens(p.hypothesis)) : [0, 0, 0, 0];
    return {
      id: p.id,
      metrics: {
        'BLEU-1': b1, 'BLEU-2': b2, 'BLEU-3': b3, 'BLEU-4': b4,
        'ROUGE-L': rougeL(p.hypothesis.toLowerCase(), p.reference.toLowerCase()).f,
        'CIDEr-D': ciderDScores.scores[i]!,
        CIDEr: plainCider.scores[i]!,
      },
      labels: { reference: labelReport(p.reference), draft: labelReport(p.hypothesis) },
    };
  });
  if (options.scorer) {
    const scorer = options.scorer;
    await mapLimit(pairs.map((p, i) => ({ p, row: perPair[i]! })), options.scorerConcurrency ?? 4, async ({ p, row }) => {
      try {
        Object.assign(row.metrics, await scorer(p));
      } catch (err) {
        row.scorerError = (err as Error).message;
      }
    });
  }
  const names = [...new Set(perPair.flatMap((r) => Object.keys(r.metrics)))];
  const boot = { resamples: options.resamples ?? 1000, seed: options.seed ?? 1 };
  const summary: Record<string, Estimate> = {};
  for (const name of names) {
    summary[name] = bootstrapMean(perPair.map((r) => r.metrics[name]).filter((v): v is number => v !== undefined), boot);
  }
  const labelPairs = perPair.map((r) => r.labels);
  const agreement = labelAgreement(labelPairs);
  const subset = (idx: Uint32Array) => Array.from(idx, (i) => labelPairs[i]!);
  return {
    perPair,
    summary,
    labels: {
      ...agreement,
      microF1Interval: bootstrapStatistic(labelPairs.length, (idx) => labelAgreement(subset(idx)).microF1, boot),
      macroF1Interval: bootstrapStatistic(labelPairs.length, (idx) => labelAgreement(subset(idx)).macroF1 ?? Number.NaN, boot),
    },
  };
}
