import { mentionsComparison } from '../model/safety.js';
import type { StudyRow } from './result.js';

/** How many drafts of a kind refer to a prior or comparison exam ("unchanged", "compared with", "interval"…). */
export interface WordingRate {
  drafts: number;
  withWording: number;
  /** withWording / drafts; undefined when there are no drafts. */
  rate: number | undefined;
}

/**
 * Comparison wording in the drafts, apart for drafts whose prompt quoted a prior report and those without one.
 * Without a prior such wording is invented (MAIRA-2 wrote it in 38.6 % of reports without a prior, arXiv
 * 2406.04449); with one it may be right. Drafts whose prompt is not known (given pairs, production) are not counted.
 */
export interface ComparisonWording {
  withPrior: WordingRate;
  withoutPrior: WordingRate;
}

function rate(rows: readonly StudyRow[]): WordingRate {
  const withWording = rows.filter((r) => mentionsComparison(`${r.draft!.findings}\n${r.draft!.impression}`)).length;
  return { drafts: rows.length, withWording, rate: rows.length ? withWording / rows.length : undefined };
}

export function comparisonWording(rows: readonly StudyRow[]): ComparisonWording {
  const drafted = rows.filter((r) => r.draft && r.priorGiven !== undefined);
  return { withPrior: rate(drafted.filter((r) => r.priorGiven)), withoutPrior: rate(drafted.filter((r) => !r.priorGiven)) };
}

export function wordingText(c: ComparisonWording): string {
  const one = (label: string, r: WordingRate) => `${label} ${r.rate === undefined ? 'n/a' : `${(100 * r.rate).toFixed(1)} %`} (${r.withWording} of ${r.drafts})`;
  return `comparison wording: ${one('with a prior report', c.withPrior)}, ${one('without', c.withoutPrior)}`;
}
