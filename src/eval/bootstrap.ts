import { seededRandom } from '../seeded-random.js';

/** A mean with its 95 % percentile-bootstrap interval. */
export interface Estimate {
  mean: number;
  low: number;
  high: number;
  n: number;
}

/** The q-quantile of sorted values, with linear interpolation between the closest ranks (numpy's default). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/**
 * Mean of per-study values and its 95 % interval from `resamples` bootstrap resamples of the studies (percentile
 * method). Studies are resampled, not reports' words, because the study is the unit a site cares about.
 */
export function bootstrapMean(values: readonly number[], options: { resamples?: number; seed?: number } = {}): Estimate {
  const n = values.length;
  if (n === 0) return { mean: Number.NaN, low: Number.NaN, high: Number.NaN, n: 0 };
  const mean = values.reduce((s, v) => s + v, 0) / n;
  const resamples = options.resamples ?? 1000;
  const random = seededRandom(options.seed ?? 1);
  const means = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let sum = 0;
    for (let k = 0; k < n; k++) sum += values[Math.floor(random() * n)]!;
    means[r] = sum / n;
  }
  means.sort();
  return { mean, low: quantile(means, 0.025), high: quantile(means, 0.975), n };
}

/**
 * A corpus-level statistic (one that is not a mean of per-study values, such as micro F1) with its bootstrap
 * interval: `statistic` is computed on each resample of the study indices.
 */
export function bootstrapStatistic(n: number, statistic: (indices: Uint32Array) => number, options: { resamples?: number; seed?: number } = {}): Estimate {
  const all = Uint32Array.from({ length: n }, (_, i) => i);
  const value = statistic(all);
  if (n === 0) return { mean: value, low: Number.NaN, high: Number.NaN, n };
  const resamples = options.resamples ?? 1000;
  const random = seededRandom(options.seed ?? 1);
  const stats = new Float64Array(resamples);
  const pick = new Uint32Array(n);
  for (let r = 0; r < resamples; r++) {
    for (let k = 0; k < n; k++) pick[k] = Math.floor(random() * n);
    stats[r] = statistic(pick);
  }
  stats.sort();
  return { mean: value, low: quantile(stats, 0.025), high: quantile(stats, 0.975), n };
}
