import type { Estimate } from './bootstrap.js';
import type { Labels } from '../report/chexpert-labeler.js';
import type { LabelAgreement } from './metrics/label-agreement.js';
import type { PaperRow } from './paper-numbers.js';
import type { MetricInfo } from './score.js';
import type { ComparisonWording } from './comparison-wording.js';
import type { FlagEdits } from './flag-edits.js';

export type EvalKind = 'medevalkit' | 'dicom-folder' | 'dicomweb' | 'production' | 'pairs';

export interface StudyRow {
  id: string;
  /** `text` is the reference as given, when it was given whole (eval --pairs). */
  reference: { findings: string; impression: string; text?: string };
  draft: { findings: string; impression: string; text: string } | undefined;
  model?: string;
  promptVersion?: string;
  flags: string[];
  metrics: Record<string, number>;
  labels?: { reference: Labels; draft: Labels };
  /** Whether the draft's prompt quoted a prior report; absent when not known (given pairs, production). */
  priorGiven?: boolean;
  error?: string;
  scorerError?: string;
}

export interface GroupSummary {
  model: string;
  promptVersion: string;
  n: number;
  summary: Record<string, Estimate>;
  microF1: number;
}

/** results.json: everything the HTML report shows, for other tools to read. */
export interface EvalResult {
  tool: { name: string; version: string };
  createdAt: string;
  kind: EvalKind;
  input: string;
  /** What the texts compared are: MedEvalKit's reply-vs-reference, or draft-vs-signed. */
  comparison: string;
  model: string | undefined;
  promptVersion: string | undefined;
  counts: { studies: number; scored: number; failed: number; leftOut: number; resumed: number };
  metrics: MetricInfo[];
  neuralMetrics: { name: string; needs: string }[];
  summary: Record<string, Estimate>;
  groups: GroupSummary[];
  /** eval --models: each model after the first against the first, with paired bootstrap intervals. */
  differences?: ModelDifference[];
  labels: LabelAgreement & { microF1Interval: Estimate; macroF1Interval: Estimate };
  paper: { source: string; rows: readonly PaperRow[] };
  studies: StudyRow[];
  failures: { id: string; reason: string }[];
  /** Drafts with comparison wording, with and without a prior report in the prompt. */
  comparisonWording?: ComparisonWording;
  /** eval --production: how often flagged and unflagged draft sentences were edited before signing. */
  flagEdits?: FlagEdits;
  /** What a reader of the figures should know first (a set too small for a metric, …). */
  warnings: string[];
  seconds: { drafting: number; scoring: number };
}

/** One model set beside the first named (the baseline): its scores minus the baseline's, study by study. */
export interface ModelDifference {
  baseline: string;
  model: string;
  /** Studies both models drafted; only these are compared. */
  n: number;
  /** Mean of the per-study differences (model − baseline) with its paired bootstrap 95 % interval. */
  metrics: Record<string, Estimate>;
  /** Micro F1 of the model minus the baseline's, recomputed on each resample of the common studies. */
  microF1: Estimate;
}
