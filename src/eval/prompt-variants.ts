import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/load.js';
import type { Logger } from '../log.js';
import type { PromptVariant } from '../model/prompt.js';
import type { Estimate } from './bootstrap.js';
import { wordingText, type ComparisonWording } from './comparison-wording.js';
import { runEval, type EvalOptions, type EvalOutcome } from './run-eval.js';

export const PROMPT_VARIANTS: readonly PromptVariant[] = ['medevalkit', 'clinical-context', 'prior-report'];

/** `--prompts a,b`: known variants, each once, at least two. */
export function parsePromptList(value: string): PromptVariant[] | string {
  const names = value.split(',').map((s) => s.trim());
  const unknown = names.filter((n) => !(PROMPT_VARIANTS as readonly string[]).includes(n));
  if (unknown.length) return `--prompts: ${unknown.map((u) => JSON.stringify(u.slice(0, 40))).join(', ')} is not a prompt variant (${PROMPT_VARIANTS.join(', ')})`;
  if (new Set(names).size !== names.length) return '--prompts names a variant twice';
  if (names.length < 2) return '--prompts needs at least two variants to compare (one: set RADDRAFT_PROMPT instead)';
  return names as PromptVariant[];
}

export interface VariantSummary {
  variant: PromptVariant;
  promptVersion: string | undefined;
  scored: number;
  summary: Record<string, Estimate>;
  microF1: number;
  comparisonWording: ComparisonWording | undefined;
  results: string;
}

/**
 * Drafts the same set once per prompt variant (each in a folder of its own under the output folder, resumable like
 * any run) and sets their figures side by side: the metrics, and the share of drafts with comparison wording with
 * and without a prior report in the prompt.
 */
export async function runPromptVariants(config: Config, log: Logger, variants: readonly PromptVariant[], options: EvalOptions): Promise<{ variants: VariantSummary[]; interrupted: boolean; file: string }> {
  const out: VariantSummary[] = [];
  for (const variant of variants) {
    const outcome: EvalOutcome = await runEval({ ...config, lingshu: { ...config.lingshu, prompt: variant } }, log, { ...options, out: path.join(options.out, variant) });
    if (outcome.interrupted || !outcome.result) return { variants: out, interrupted: true, file: '' };
    const r = outcome.result;
    out.push({ variant, promptVersion: r.promptVersion, scored: r.counts.scored, summary: r.summary, microF1: r.labels.microF1, comparisonWording: r.comparisonWording, results: outcome.files.json });
  }
  const file = path.join(options.out, 'prompts.json');
  await writeFile(file, `${JSON.stringify({ createdAt: new Date().toISOString(), variants: out }, null, 2)}\n`);
  return { variants: out, interrupted: false, file };
}

const value = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(4));

/** The variants side by side for the terminal. */
export function promptsTable(variants: readonly VariantSummary[]): string {
  const names = [...new Set(variants.flatMap((v) => Object.keys(v.summary)))];
  const width = Math.max(20, ...variants.map((v) => (v.promptVersion ?? v.variant).length));
  const lines = [`  ${'prompt'.padEnd(width)} ${'n'.padStart(5)}  ${names.map((n) => n.padStart(8)).join(' ')}  ${'F1 micro'.padStart(8)}`];
  for (const v of variants) {
    lines.push(`  ${(v.promptVersion ?? v.variant).padEnd(width)} ${String(v.scored).padStart(5)}  ${names.map((n) => value(v.summary[n]?.mean).padStart(8)).join(' ')}  ${value(v.microF1).padStart(8)}`);
    if (v.comparisonWording) lines.push(`    ${wordingText(v.comparisonWording)}`);
  }
  return lines.join('\n');
}
