import type { Estimate } from './bootstrap.js';
import type { EvalResult } from './result.js';
import { wordingText } from './comparison-wording.js';
import { flagEditsText } from './flag-edits.js';

/** Failures listed one per line in the terminal before the rest are left to results.json. */
const LISTED_FAILURES = 20;

/** A 95 % interval, or "n/a" when it cannot be computed (no values, or a statistic undefined on every resample). */
export function intervalText(e: Pick<Estimate, 'low' | 'high'>, digits = 4): string {
  if (!Number.isFinite(e.low) || !Number.isFinite(e.high)) return 'n/a';
  return `[${e.low.toFixed(digits)}, ${e.high.toFixed(digits)}]`;
}

const valueText = (v: number | undefined, digits = 4): string => (v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(digits));

/** The summary as a plain-text table for the terminal. */
export function summaryTable(result: EvalResult): string {
  const lines = Object.entries(result.summary).map(([name, e]) => `  ${name.padEnd(12)} ${valueText(e.mean)}  ${intervalText(e)}  n=${e.n}`);
  const l = result.labels;
  lines.push(`  ${'F1 micro'.padEnd(12)} ${valueText(l.microF1)}  ${intervalText(l.microF1Interval)}  (CheXpert-style, positive findings)`);
  if (l.macroF1 !== undefined) lines.push(`  ${'F1 macro'.padEnd(12)} ${valueText(l.macroF1)}  ${intervalText(l.macroF1Interval)}`);
  return lines.join('\n');
}

const signed = (v: number, digits = 4): string => (Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${v.toFixed(digits)}` : 'n/a');
const signedInterval = (e: Pick<Estimate, 'low' | 'high'>): string => (Number.isFinite(e.low) && Number.isFinite(e.high) ? `[${signed(e.low)}, ${signed(e.high)}]` : 'n/a');

/** eval --models: each model's figures side by side, then each model against the first with paired intervals. */
export function modelsTable(result: EvalResult): string {
  if (!result.differences) return '';
  const names = Object.keys(result.summary);
  const width = Math.max(12, ...result.groups.map((g) => g.model.length));
  const lines = [`  ${'model'.padEnd(width)} ${'n'.padStart(5)}  ${names.map((n) => n.padStart(8)).join(' ')}  ${'F1 micro'.padStart(8)}`];
  for (const g of result.groups) lines.push(`  ${g.model.padEnd(width)} ${String(g.n).padStart(5)}  ${names.map((n) => valueText(g.summary[n]?.mean).padStart(8)).join(' ')}  ${valueText(g.microF1).padStart(8)}`);
  for (const d of result.differences) {
    lines.push(`  ${d.model} − ${d.baseline}, ${d.n} studies both drafted (mean difference, paired bootstrap 95 % interval):`);
    for (const [name, e] of Object.entries(d.metrics)) lines.push(`    ${name.padEnd(12)} ${signed(e.mean)}  ${signedInterval(e)}`);
    lines.push(`    ${'F1 micro'.padEnd(12)} ${signed(d.microF1.mean)}  ${signedInterval(d.microF1)}`);
  }
  return lines.join('\n');
}

/** Why nothing was scored, in words, when nothing was. */
function nothingScored(result: EvalResult): string {
  const c = result.counts;
  const why: string[] = [];
  if (c.leftOut) why.push(`${c.leftOut} sample${c.leftOut === 1 ? ' was' : 's were'} left out because ${c.leftOut === 1 ? 'its' : 'their'} findings and impression are both empty (as MedEvalKit leaves them out)`);
  if (c.failed) why.push(`${c.failed} ${c.failed === 1 ? 'study' : 'studies'} could not be drafted or paired (reasons below)`);
  if (!why.length) why.push(result.kind === 'production' ? 'no signed draft and no shadow draft with a final report was found in that period' : `${result.input} holds no studies to score`);
  return `no study was scored: ${why.join('; ')}`;
}

/** What `raddraft eval` prints when it is done: counts, warnings, the summary, and why studies were not scored. */
export function terminalSummary(result: EvalResult): string {
  const c = result.counts;
  const out: string[] = [];
  if (c.scored === 0) {
    out.push(nothingScored(result));
  } else {
    const parts = [`${c.failed} not scored`];
    if (c.leftOut) parts.push(`${c.leftOut} left out of the set with empty findings and impression`);
    if (c.resumed) parts.push(`${c.resumed} drafts from an earlier run`);
    out.push(`${c.scored} of ${c.studies + c.leftOut} studies scored (${parts.join(', ')})`);
  }
  for (const w of result.warnings) out.push(`warning: ${w}`);
  if (c.scored > 0 && result.differences) out.push(`${result.groups[0]?.model ?? 'baseline'} (the baseline):`);
  if (c.scored > 0) out.push(summaryTable(result));
  if (c.scored > 0 && result.differences) out.push(modelsTable(result));
  if (result.flagEdits && result.flagEdits.drafts > 0) out.push(flagEditsText(result.flagEdits));
  if (result.comparisonWording && result.comparisonWording.withPrior.drafts + result.comparisonWording.withoutPrior.drafts > 0) out.push(wordingText(result.comparisonWording));
  if (result.failures.length) {
    out.push(`not scored (${result.failures.length}):`);
    for (const f of result.failures.slice(0, LISTED_FAILURES)) out.push(`  ${f.id}: ${f.reason}`);
    if (result.failures.length > LISTED_FAILURES) out.push(`  … and ${result.failures.length - LISTED_FAILURES} more, listed in results.json`);
  }
  return out.join('\n');
}
