import { mkdir, writeFile, rename } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/load.js';
import { DicomWebClient } from '../dicom/dicomweb.js';
import { RenderPool } from '../dicom/render-pool.js';
import { PacsSource, type StudySource } from '../dicom/study-source.js';
import { FhirGateway } from '../fhir/client.js';
import type { JobStore } from '../jobs/job-store.js';
import type { Logger } from '../log.js';
import { LingshuClient } from '../model/lingshu.js';
import { SOFTWARE } from '../version.js';
import { draftSamples } from './drafter.js';
import { DraftsFile, type DraftLine } from './drafts-file.js';
import { medEvalKitReference } from './metrics/medevalkit-text.js';
import { PAPER_ROWS, PAPER_SOURCE } from './paper-numbers.js';
import { shadowPairs, signedDraftPairs, type ProductionPair } from './production.js';
import { risPairs, withoutPairedStudies } from './ris-pairs.js';
import { EvalInputError, readReferences } from './references.js';
import { renderReport } from './report-html.js';
import type { EvalKind, EvalResult, GroupSummary, StudyRow } from './result.js';
import type { EvalSample } from './sample.js';
import { BUILT_IN_METRICS, ciderWarning, scorePairs, type Pair, type PairScores, type ScoreSummary } from './score.js';
import { readDocumentFrequencies } from './cider-df.js';
import { modelDraftsFile, modelGroup, pairedDifference, type ModelDifference, type ModelSpec } from './compare-models.js';
import { bootstrapMean } from './bootstrap.js';
import { comparisonWording } from './comparison-wording.js';
import { flagEdits, type FlagEdits } from './flag-edits.js';
import { labelAgreement } from './metrics/label-agreement.js';
import { NEURAL_METRICS, commandScorer, httpScorer, type ExternalScorer } from './scorer-hook.js';
import { dicomStudyImages } from './sets/dicom-study.js';
import { DicomFolder } from './sets/dicom-folder.js';
import { readMedEvalKitSet } from './sets/medevalkit.js';
import { givenPairRows, readPairs } from './sets/pairs.js';

export type EvalInput =
  | { kind: 'medevalkit'; set: string }
  | { kind: 'dicom-folder'; folder: string; references: string }
  | { kind: 'dicomweb'; references: string }
  | { kind: 'production'; since: Date; until: Date }
  | { kind: 'pairs'; file: string };

export interface EvalOptions {
  input: EvalInput;
  out: string;
  limit?: number;
  scorerUrl?: string;
  scorerCommand?: string;
  /** Draft the same set with each of these models and compare them (the first is the baseline). */
  models?: ModelSpec[];
  /** A JSON file of document frequencies for CIDEr and CIDEr-D, instead of the set's own. */
  ciderDf?: string;
  resamples?: number;
  seed?: number;
  signal?: AbortSignal;
  /** Where the progress bar and summary go. */
  stderr?: NodeJS.WritableStream & { isTTY?: boolean };
  stdout?: NodeJS.WritableStream;
  /** The job store, for --production (shadow drafts, and drafts the FHIR server keeps no history of). */
  openStore?: () => Promise<JobStore>;
}

export interface EvalOutcome {
  result: EvalResult | undefined;
  interrupted: boolean;
  files: { json: string; html: string; drafts: string };
}

function scorerFrom(options: EvalOptions): ExternalScorer | undefined {
  if (options.scorerUrl) return httpScorer(options.scorerUrl);
  if (options.scorerCommand) return commandScorer(options.scorerCommand);
  return undefined;
}

/** Samples of a DICOM set: each reference report's study, from the folder or the PACS. */
async function dicomSamples(input: Extract<EvalInput, { kind: 'dicom-folder' | 'dicomweb' }>, config: Config, renderer: RenderPool): Promise<{ samples: EvalSample[]; missing: { id: string; reason: string }[] }> {
  const refs = await readReferences(input.references);
  let source: StudySource;
  const missing: { id: string; reason: string }[] = [];
  let present = refs;
  if (input.kind === 'dicom-folder') {
    const folder = await DicomFolder.scan(input.folder);
    if (folder.studyUids.length === 0) throw new EvalInputError(`${input.folder} holds no DICOM files${folder.unreadable.length ? ` (${folder.unreadable.length} other files)` : ''}`);
    present = refs.filter((r) => folder.has(r.studyUid));
    for (const r of refs) if (!folder.has(r.studyUid)) missing.push({ id: r.studyUid, reason: `no DICOM file of this study in ${input.folder}` });
    source = folder;
  } else {
    source = new PacsSource(new DicomWebClient({ url: config.dicomweb.url, auth: config.dicomweb.auth }));
  }
  return {
    samples: present.map((r) => ({
      id: r.studyUid,
      reference: { findings: r.findings, impression: r.impression },
      ...(r.prior ? { prior: r.prior } : {}),
      images: () => dicomStudyImages(source, r.studyUid, renderer),
    })),
    missing,
  };
}

async function writeAtomic(file: string, text: string): Promise<void> {
  await writeFile(`${file}.part`, text);
  await rename(`${file}.part`, file);
}

/**
 * The summary of each model and prompt version, from the per-study scores already computed (CIDEr-D's document
 * frequencies are those of the whole run), so no pair is scored twice.
 */
function groupSummaries(rows: readonly { model: string; promptVersion: string; pair: Pair }[], scored: readonly PairScores[], boot: { resamples: number; seed: number }): GroupSummary[] {
  const byId = new Map(scored.map((p) => [p.id, p]));
  const groups = new Map<string, PairScores[]>();
  const keys = new Map<string, { model: string; promptVersion: string }>();
  for (const r of rows) {
    const key = `${r.model}\u0000${r.promptVersion}`;
    const s = byId.get(r.pair.id);
    if (!s) continue;
    groups.set(key, [...(groups.get(key) ?? []), s]);
    keys.set(key, { model: r.model, promptVersion: r.promptVersion });
  }
  return [...groups.entries()].map(([key, members]) => {
    const names = [...new Set(members.flatMap((m) => Object.keys(m.metrics)))];
    const summary = Object.fromEntries(names.map((n) => [n, bootstrapMean(members.map((m) => m.metrics[n]).filter((v): v is number => v !== undefined), boot)]));
    return { ...keys.get(key)!, n: members.length, summary, microF1: labelAgreement(members.map((m) => m.labels)).microF1 };
  });
}

/** The rows of one model's run over the samples: its draft for each, or why there is none. */
function draftedRows(samples: readonly EvalSample[], lines: ReadonlyMap<string, DraftLine>, model: string): StudyRow[] {
  return samples.map((s): StudyRow => {
    const line = lines.get(s.id);
    if (!line?.ok) return { id: s.id, reference: s.reference, draft: undefined, model, flags: [], metrics: {}, error: line?.ok === false ? line.error : 'not drafted' };
    return {
      id: s.id, reference: s.reference, draft: { findings: line.findings, impression: line.impression, text: line.text }, model: line.model, promptVersion: line.promptVersion, flags: line.flags, metrics: {},
      ...(line.priorGiven !== undefined ? { priorGiven: line.priorGiven } : {}),
    };
  });
}

/** Studies in the run: each once however many models drafted it, and those that could not be read at all. */
function studyCount(rows: readonly StudyRow[], failures: readonly { id: string }[], production: boolean): number {
  const ids = new Set(rows.map((r) => r.id));
  return ids.size + (production ? 0 : new Set(failures.map((f) => f.id).filter((id) => !ids.has(id))).size);
}

/** The one value all rows share, or undefined when they differ. */
function single(values: readonly string[]): string | undefined {
  const distinct = [...new Set(values)];
  return distinct.length === 1 ? distinct[0] : undefined;
}

/**
 * `raddraft eval`: drafts a labelled set with the production pipeline (or collects production pairs), scores the
 * drafts, and writes results.json and report.html to the output folder. Drafting is resumable: drafts.jsonl in the
 * output folder records every study drafted, and a second run drafts only what is missing.
 */
export async function runEval(config: Config, log: Logger, options: EvalOptions): Promise<EvalOutcome> {
  const out = path.resolve(options.out);
  await mkdir(out, { recursive: true });
  const files = { json: path.join(out, 'results.json'), html: path.join(out, 'report.html'), drafts: path.join(out, 'drafts.jsonl') };
  const stderr = options.stderr ?? process.stderr;
  const boot = { resamples: options.resamples ?? 1000, seed: options.seed ?? 1 };
  const scorer = scorerFrom(options);
  // Read before any drafting, so a bad file costs no model time.
  const documentFrequencies = options.ciderDf ? await readDocumentFrequencies(options.ciderDf) : undefined;
  const { input } = options;
  const started = Date.now();
  let rows: StudyRow[] = [];
  let failures: { id: string; reason: string }[] = [];
  let leftOut = 0;
  let resumed = 0;
  let model: string | undefined = config.lingshu.model;
  let promptVersion: string | undefined;
  let comparison: string;
  let grouped: { model: string; promptVersion: string; pair: Pair }[] = [];
  let flagged: FlagEdits | undefined;
  const specs: ModelSpec[] = options.models?.length ? options.models : [{ model: config.lingshu.model }];
  const comparing = specs.length > 1;
  if (comparing && (input.kind === 'pairs' || input.kind === 'production')) throw new EvalInputError(`--models drafts a set with each model; it cannot be used with --${input.kind}`);

  if (input.kind === 'production') {
    comparison = 'the reports radiologists signed for the same studies (draft → signed)';
    const fhir = new FhirGateway(config.fhir);
    const store = options.openStore ? await options.openStore() : undefined;
    try {
      const pacs = config.dicomweb.url ? new PacsSource(new DicomWebClient({ url: config.dicomweb.url, auth: config.dicomweb.auth })) : undefined;
      const range = { since: input.since, until: input.until };
      const live = await signedDraftPairs(fhir, store, range);
      const shadow = store ? await shadowPairs(fhir, store, pacs, range) : { pairs: [], unmatched: [] };
      const ris = store ? await risPairs(store, range) : { pairs: [], unmatched: [] };
      let pairs: ProductionPair[] = [...live.pairs, ...shadow.pairs, ...withoutPairedStudies(ris.pairs, [...live.pairs, ...shadow.pairs])];
      if (options.limit) pairs = pairs.slice(0, options.limit);
      flagged = flagEdits(pairs);
      failures = [...live.unmatched, ...shadow.unmatched, ...ris.unmatched];
      rows = pairs.map((p) => ({
        id: p.id, reference: p.final, draft: { ...p.draft, text: medEvalKitReference(p.draft.findings, p.draft.impression) },
        model: p.model, promptVersion: p.promptVersion, flags: [], metrics: {},
      }));
      grouped = pairs.map((p) => ({ model: p.model, promptVersion: p.promptVersion, pair: { id: p.id, hypothesis: medEvalKitReference(p.draft.findings, p.draft.impression), reference: medEvalKitReference(p.final.findings, p.final.impression) } }));
      model = single(pairs.map((p) => p.model));
      promptVersion = single(pairs.map((p) => p.promptVersion));
    } finally {
      await store?.close();
    }
  } else if (input.kind === 'pairs') {
    comparison = 'the reference given with each draft (both texts whole, as given)';
    const given = await readPairs(input.file);
    ({ rows, grouped } = givenPairRows(options.limit ? given.slice(0, options.limit) : given));
    model = single(grouped.map((g) => g.model));
    promptVersion = single(grouped.map((g) => g.promptVersion));
  } else {
    comparison = 'reference reports (the model\'s whole reply against "Findings: … Impression: …", as MedEvalKit scores it)';
    const renderer = new RenderPool();
    try {
      let samples: EvalSample[];
      if (input.kind === 'medevalkit') {
        const set = await readMedEvalKitSet(input.set);
        samples = set.samples;
        leftOut = set.left;
      } else {
        const set = await dicomSamples(input, config, renderer);
        samples = set.samples;
        failures.push(...set.missing);
      }
      if (options.limit) samples = samples.slice(0, options.limit);
      for (const spec of specs) {
        const lingshu = new LingshuClient({ ...config.lingshu, model: spec.model, url: spec.url ?? config.lingshu.url }, log);
        const drafts = new DraftsFile(comparing ? modelDraftsFile(out, spec.model) : files.drafts);
        const run = await draftSamples(samples, {
          lingshu, model: spec.model, drafts, concurrency: Math.max(2, config.lingshu.maxInFlight * 2), log,
          ...(options.signal ? { signal: options.signal } : {}), progress: stderr,
        });
        resumed += run.resumed;
        if (run.interrupted) return { result: undefined, interrupted: true, files };
        const modelRows = draftedRows(samples, run.lines, spec.model);
        rows.push(...modelRows);
        failures.push(...modelRows.filter((r) => !r.draft).map((r) => ({ id: r.id, reason: `${comparing ? `${spec.model}: ` : ''}${r.error ?? 'not drafted'}` })));
        grouped.push(...modelRows.filter((r) => r.draft).map((r) => ({
          model: r.model!, promptVersion: r.promptVersion!,
          pair: { id: r.id, hypothesis: r.draft!.text, reference: medEvalKitReference(r.reference.findings, r.reference.impression) },
        })));
        promptVersion = lingshu.promptVersion;
      }
      if (comparing) model = undefined;
    } finally {
      await renderer.close();
    }
  }
  const drafting = (Date.now() - started) / 1000;

  const scoringStarted = Date.now();
  const scoreOptions = { ...(scorer ? { scorer } : {}), ...(documentFrequencies ? { documentFrequencies } : {}), ...boot };
  // Compared models are scored apart, each exactly as a run of its own would score it.
  const perModel = new Map<string, ScoreSummary>();
  for (const spec of comparing ? specs : []) perModel.set(spec.model, await scorePairs(grouped.filter((g) => g.model === spec.model).map((g) => g.pair), scoreOptions));
  const scored = comparing ? perModel.get(specs[0]!.model)! : await scorePairs(grouped.map((g) => g.pair), scoreOptions);
  const byKey = new Map(comparing ? [...perModel].flatMap(([m, sc]) => sc.perPair.map((p) => [`${m}\u0000${p.id}`, p] as const)) : scored.perPair.map((p) => [p.id, p] as const));
  for (const row of rows) {
    const s = byKey.get(comparing ? `${row.model}\u0000${row.id}` : row.id);
    if (!s) continue;
    row.metrics = s.metrics;
    row.labels = s.labels;
    if (s.scorerError) row.scorerError = s.scorerError;
  }
  const groups = comparing
    ? specs.map((spec) => modelGroup(spec.model, single(grouped.filter((g) => g.model === spec.model).map((g) => g.promptVersion)) ?? '', perModel.get(spec.model)!))
    : groupSummaries(grouped, scored.perPair, boot);
  const differences: ModelDifference[] = comparing
    ? specs.slice(1).map((spec) => pairedDifference({ model: specs[0]!.model, perPair: scored.perPair }, { model: spec.model, perPair: perModel.get(spec.model)!.perPair }, boot))
    : [];
  const scoring = (Date.now() - scoringStarted) / 1000;

  const external = [...new Set(scored.perPair.flatMap((p) => Object.keys(p.metrics)))].filter((n) => !BUILT_IN_METRICS.some((m) => m.name === n));
  const kind: EvalKind = input.kind;
  const result: EvalResult = {
    tool: SOFTWARE,
    createdAt: new Date().toISOString(),
    kind,
    input: inputName(input, config),
    comparison,
    model,
    promptVersion,
    counts: { studies: studyCount(rows, failures, input.kind === 'production'), scored: scored.perPair.length, failed: failures.length, leftOut, resumed },
    metrics: [...BUILT_IN_METRICS, ...external.map((name) => ({ name, source: 'site scorer' }))],
    neuralMetrics: NEURAL_METRICS.filter((m) => !external.includes(m.name)).map((m) => ({ ...m })),
    summary: scored.summary,
    groups,
    ...(comparing ? { differences } : {}),
    labels: scored.labels,
    paper: { source: PAPER_SOURCE, rows: PAPER_ROWS },
    studies: rows,
    failures,
    comparisonWording: comparisonWording(rows),
    ...(flagged ? { flagEdits: flagged } : {}),
    warnings: [ciderWarning(scored.perPair.length, documentFrequencies !== undefined)].filter((w): w is string => w !== undefined),
    seconds: { drafting, scoring },
  };
  await writeAtomic(files.json, `${JSON.stringify(result, null, 2)}\n`);
  await writeAtomic(files.html, renderReport(result));
  return { result, interrupted: false, files };
}

function inputName(input: EvalInput, config: Config): string {
  switch (input.kind) {
    case 'medevalkit': return input.set;
    case 'dicom-folder': return input.folder;
    case 'dicomweb': return config.dicomweb.url;
    case 'pairs': return input.file;
    case 'production': return `${config.fhir.url} from ${input.since.toISOString().slice(0, 10)} to ${input.until.toISOString().slice(0, 10)}`;
  }
}
