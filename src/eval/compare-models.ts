import path from 'node:path';
import { bootstrapMean, bootstrapStatistic } from './bootstrap.js';
import { labelAgreement } from './metrics/label-agreement.js';
import type { GroupSummary, ModelDifference } from './result.js';

export type { ModelDifference };
import type { PairScores, ScoreSummary } from './score.js';

/** One model of `eval --models`: the name the endpoint serves it under, and the endpoint when not the configured one. */
export interface ModelSpec {
  model: string;
  url?: string;
}

/**
 * `--models a,b` or `--models a=http://host:8000/v1,b=http://other:8000/v1`. Names are checked here so that a typo
 * stops the run before any drafting.
 */
export function parseModelList(value: string): ModelSpec[] | string {
  const specs: ModelSpec[] = [];
  for (const [i, raw] of value.split(',').entries()) {
    const item = raw.trim();
    if (!item) return `--models item ${i + 1} is empty (give names separated by commas, e.g. --models lingshu-7b,medgemma-4b-it)`;
    const eq = item.indexOf('=');
    const model = (eq < 0 ? item : item.slice(0, eq)).trim();
    const url = eq < 0 ? undefined : item.slice(eq + 1).trim();
    if (!model) return `--models item ${i + 1} has no model name before "="`;
    if (url !== undefined && !/^https?:\/\/[^\s/]+/.test(url)) return `--models item ${i + 1} (${model}): ${JSON.stringify(url.slice(0, 80))} is not an http(s) URL, e.g. http://vllm:8000/v1`;
    if (specs.some((s) => s.model === model)) return `--models names ${model} twice`;
    specs.push(url ? { model, url } : { model });
  }
  if (specs.length < 2) return '--models needs at least two models to compare (one model: leave --models out and set RADDRAFT_LINGSHU_MODEL)';
  return specs;
}

/** Each model's drafts in a file of its own, so that a resumed run resumes each. */
export function modelDraftsFile(out: string, model: string): string {
  return path.join(out, `drafts-${model.replace(/[^A-Za-z0-9._-]+/g, '_')}.jsonl`);
}

/**
 * Paired differences: the same studies are resampled for both models, so the interval reflects how the two differ
 * on the same cases rather than how each varies on its own (narrower when the models err on the same studies).
 */
export function pairedDifference(baseline: { model: string; perPair: readonly PairScores[] }, other: { model: string; perPair: readonly PairScores[] }, boot: { resamples: number; seed: number }): ModelDifference {
  const otherById = new Map(other.perPair.map((p) => [p.id, p]));
  const both = baseline.perPair.flatMap((a) => {
    const b = otherById.get(a.id);
    return b ? [[a, b] as const] : [];
  });
  const names = [...new Set(both.flatMap(([a]) => Object.keys(a.metrics)))].filter((n) => both.some(([a, b]) => a.metrics[n] !== undefined && b.metrics[n] !== undefined));
  const metrics = Object.fromEntries(names.map((n) => [n, bootstrapMean(both.flatMap(([a, b]) => (a.metrics[n] !== undefined && b.metrics[n] !== undefined ? [b.metrics[n] - a.metrics[n]] : [])), boot)]));
  const f1 = (side: 0 | 1, idx: Uint32Array) => labelAgreement(Array.from(idx, (i) => both[i]![side].labels)).microF1;
  const microF1 = bootstrapStatistic(both.length, (idx) => f1(1, idx) - f1(0, idx), boot);
  return { baseline: baseline.model, model: other.model, n: both.length, metrics, microF1 };
}

/** The group summary of one model scored on its own. */
export function modelGroup(model: string, promptVersion: string, scored: ScoreSummary): GroupSummary {
  return { model, promptVersion, n: scored.perPair.length, summary: scored.summary, microF1: scored.labels.microF1 };
}
