import { readFile } from 'node:fs/promises';
import { parseReport, ReplyFormatError } from '../../report/sections.js';
import { EvalInputError } from '../references.js';
import type { StudyRow } from '../result.js';
import type { Pair } from '../score.js';

/** One line of a `--pairs` file: a draft someone already has and the reference it is scored against. */
export interface GivenPair {
  id: string;
  draft: string;
  reference: string;
  model?: string;
  prompt?: string;
}

/** Lines longer than this are not report texts; they are refused before they are parsed. */
const MAX_LINE = 1_000_000;

function optionalText(row: Record<string, unknown>, field: string, where: string): string | undefined {
  const v = row[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new EvalInputError(`${where}: "${field}" must be text, not ${Array.isArray(v) ? 'a list' : typeof v}`);
  return v;
}

function toPair(row: Record<string, unknown>, where: string): GivenPair {
  const rawId = row.id;
  if (typeof rawId !== 'string' && typeof rawId !== 'number') throw new EvalInputError(`${where}: "id" is missing (each line needs "id", "draft" and "reference")`);
  const id = String(rawId).trim();
  if (!id) throw new EvalInputError(`${where}: "id" is empty`);
  const at = `${where} (id ${JSON.stringify(id.slice(0, 80))})`;
  const draft = optionalText(row, 'draft', at);
  if (draft === undefined) throw new EvalInputError(`${at}: "draft" is missing`);
  const reference = optionalText(row, 'reference', at);
  if (reference === undefined) throw new EvalInputError(`${at}: "reference" is missing`);
  if (!reference.trim()) throw new EvalInputError(`${at}: "reference" is empty; a draft cannot be scored against nothing`);
  const model = optionalText(row, 'model', at)?.trim();
  const prompt = optionalText(row, 'prompt', at)?.trim();
  return { id, draft, reference, ...(model ? { model } : {}), ...(prompt ? { prompt } : {}) };
}

/**
 * Reads a JSONL file of given drafts and references (`{"id", "draft", "reference"}`, optional `"model"` and
 * `"prompt"`), for scoring without a model. Every line is checked before anything is scored; the first bad one stops
 * the run with its line number and field. Texts never appear in the messages, only ids and field names.
 */
export async function readPairs(file: string): Promise<GivenPair[]> {
  const text = await readFile(file, 'utf8').catch((err: unknown) => {
    const e = err as NodeJS.ErrnoException;
    throw new EvalInputError(`cannot read the pairs file ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'it is a folder' : e.message}`);
  });
  const out: GivenPair[] = [];
  const seen = new Map<string, number>();
  text.replace(/^\uFEFF/, '').split(/\r?\n/).forEach((line, i) => {
    if (!line.trim()) return;
    const where = `${file} line ${i + 1}`;
    if (line.length > MAX_LINE) throw new EvalInputError(`${where}: longer than ${MAX_LINE} characters`);
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch {
      throw new EvalInputError(`${where}: not a JSON object (one {"id", "draft", "reference"} object per line)`);
    }
    if (!row || typeof row !== 'object' || Array.isArray(row)) throw new EvalInputError(`${where}: not a JSON object (one {"id", "draft", "reference"} object per line)`);
    const pair = toPair(row as Record<string, unknown>, where);
    const first = seen.get(pair.id);
    if (first !== undefined) throw new EvalInputError(`${where}: id ${JSON.stringify(pair.id.slice(0, 80))} is used twice (first on line ${first})`);
    seen.set(pair.id, i + 1);
    out.push(pair);
  });
  if (out.length === 0) throw new EvalInputError(`${file}: holds no pairs (one {"id", "draft", "reference"} object per line)`);
  return out;
}

/** Findings and impression of a given text for display: its sections when it has them, else the whole text. */
export function sectionsOf(text: string): { findings: string; impression: string } {
  try {
    const parsed = parseReport(text);
    return { findings: parsed.findings, impression: parsed.impression };
  } catch (err) {
    if (!(err instanceof ReplyFormatError)) throw err;
    return { findings: text.trim(), impression: '' };
  }
}

/** What a pair's draft was made by, when the line does not say. */
export const NOT_GIVEN = 'not given';

/** The study rows and scoring pairs of given pairs: texts scored whole, as given, grouped by model and prompt. */
export function givenPairRows(pairs: readonly GivenPair[]): { rows: StudyRow[]; grouped: { model: string; promptVersion: string; pair: Pair }[] } {
  const rows = pairs.map((p): StudyRow => ({
    id: p.id,
    reference: { ...sectionsOf(p.reference), text: p.reference },
    draft: { ...sectionsOf(p.draft), text: p.draft },
    model: p.model ?? NOT_GIVEN,
    promptVersion: p.prompt ?? NOT_GIVEN,
    flags: [],
    metrics: {},
  }));
  const grouped = pairs.map((p) => ({ model: p.model ?? NOT_GIVEN, promptVersion: p.prompt ?? NOT_GIVEN, pair: { id: p.id, hypothesis: p.draft, reference: p.reference } }));
  return { rows, grouped };
}
