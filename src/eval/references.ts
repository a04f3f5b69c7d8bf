import { readFile } from 'node:fs/promises';
import { parse as parseCsv } from 'csv-parse/sync';
import { isUid } from '../dicom/tags.js';
import { parseReport, ReplyFormatError } from '../report/sections.js';

/** A reference (ground-truth) report for one study. */
export interface ReferenceReport {
  studyUid: string;
  findings: string;
  impression: string;
  /** Optional columns prior_date (YYYY-MM-DD), prior_findings, prior_impression: the report before this study. */
  prior?: { date: string; findings: string; impression: string };
}

/** A problem with an input file, naming the file and the line or row. */
export class EvalInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EvalInputError';
  }
}

const UID_COLUMNS = ['study_uid', 'studyinstanceuid', 'study_instance_uid', 'studyuid'];

function pick(row: Record<string, unknown>, names: string[]): string | undefined {
  for (const [k, v] of Object.entries(row)) {
    if (!names.includes(k.toLowerCase().replace(/[\s-]/g, '_'))) continue;
    if (typeof v === 'string') return v;
    if (typeof v === 'number') return String(v);
  }
  return undefined;
}

/** Findings and impression from a row: their own columns, or one `report` column split at its section labels. */
function sections(row: Record<string, unknown>, where: string): { findings: string; impression: string } {
  const findings = pick(row, ['findings', 'finding']);
  const impression = pick(row, ['impression', 'impressions', 'conclusion']);
  if (findings !== undefined || impression !== undefined) return { findings: (findings ?? '').trim(), impression: (impression ?? '').trim() };
  const report = pick(row, ['report', 'text', 'report_text']);
  if (report === undefined) throw new EvalInputError(`${where}: no findings, impression or report column`);
  try {
    const parsed = parseReport(report);
    return { findings: parsed.findings, impression: parsed.impression };
  } catch (err) {
    if (!(err instanceof ReplyFormatError)) throw err;
    // A report without section labels is taken whole as its findings.
    return { findings: report.trim(), impression: '' };
  }
}

const normalised = (column: string): string => column.toLowerCase().replace(/[\s-]/g, '_');
const TEXT_COLUMNS = ['findings', 'finding', 'impression', 'impressions', 'conclusion', 'report', 'text', 'report_text'];

/** A column missing from a CSV header is the header's fault, named as such, not that of every row below it. */
function checkHeader(columns: readonly string[], file: string): void {
  const names = columns.map(normalised);
  const has = `(its columns: ${columns.map((c) => JSON.stringify(c.slice(0, 40))).join(', ').slice(0, 300)})`;
  if (!names.some((n) => UID_COLUMNS.includes(n))) throw new EvalInputError(`${file}: the header (row 1) has no study_uid column ${has}`);
  if (!names.some((n) => TEXT_COLUMNS.includes(n))) throw new EvalInputError(`${file}: the header (row 1) has no findings, impression or report column ${has}`);
}

/** The prior report of a row, when it has one: a date and some text. */
function priorOf(row: Record<string, unknown>, where: string): ReferenceReport['prior'] {
  const date = pick(row, ['prior_date'])?.trim();
  const findings = pick(row, ['prior_findings'])?.trim() ?? '';
  const impression = pick(row, ['prior_impression'])?.trim() ?? '';
  if (!date && !findings && !impression) return undefined;
  if (!date || !/^\d{4}-\d{2}-\d{2}$/.test(date)) throw new EvalInputError(`${where}: prior_date ${JSON.stringify((date ?? '').slice(0, 40))} is not a date like 2026-03-01 (needed with prior_findings or prior_impression)`);
  if (!findings && !impression) throw new EvalInputError(`${where}: prior_date is given without prior_findings or prior_impression`);
  return { date, findings, impression };
}

function toReference(row: Record<string, unknown>, where: string): ReferenceReport {
  const studyUid = pick(row, UID_COLUMNS)?.trim();
  if (!studyUid) throw new EvalInputError(`${where}: no study_uid (StudyInstanceUID) column`);
  if (!isUid(studyUid)) throw new EvalInputError(`${where}: study_uid ${JSON.stringify(String(studyUid).slice(0, 80))} is not a DICOM UID`);
  const s = sections(row, where);
  if (!s.findings && !s.impression) throw new EvalInputError(`${where}: the reference report for study ${studyUid} is empty`);
  const prior = priorOf(row, where);
  return { studyUid, ...s, ...(prior ? { prior } : {}) };
}

/**
 * Reads reference reports from CSV (a header row; columns study_uid and findings/impression, or report) or JSONL
 * (one object a line, the same fields). Every row is checked; the first bad one stops the run with its line.
 */
export async function readReferences(file: string): Promise<ReferenceReport[]> {
  const text = await readFile(file, 'utf8').catch((err: unknown) => {
    const e = err as NodeJS.ErrnoException;
    throw new EvalInputError(`cannot read the reference reports ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  });
  const out: ReferenceReport[] = [];
  if (/\.jsonl?$/i.test(file)) {
    text.split(/\r?\n/).forEach((line, i) => {
      if (!line.trim()) return;
      let row: unknown;
      try {
        row = JSON.parse(line);
      } catch {
        throw new EvalInputError(`${file} line ${i + 1}: not a JSON object`);
      }
      if (!row || typeof row !== 'object' || Array.isArray(row)) throw new EvalInputError(`${file} line ${i + 1}: not a JSON object`);
      out.push(toReference(row as Record<string, unknown>, `${file} line ${i + 1}`));
    });
  } else {
    let rows: Record<string, unknown>[];
    try {
      rows = parseCsv(text, { columns: true, skip_empty_lines: true, bom: true, trim: false, relax_column_count: false });
    } catch (err) {
      throw new EvalInputError(`${file}: not readable as CSV: ${(err as Error).message}`);
    }
    if (rows[0]) checkHeader(Object.keys(rows[0]), file);
    // Row numbers as a spreadsheet shows them: the header is row 1.
    rows.forEach((row, i) => out.push(toReference(row, `${file} row ${i + 2}`)));
  }
  const seen = new Set<string>();
  for (const r of out) {
    if (seen.has(r.studyUid)) throw new EvalInputError(`${file}: study ${r.studyUid} has more than one reference report`);
    seen.add(r.studyUid);
  }
  if (out.length === 0) throw new EvalInputError(`${file}: holds no reference reports`);
  return out;
}
