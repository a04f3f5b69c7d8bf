import { readFile } from 'node:fs/promises';
import type { DocumentFrequencies } from './metrics/cider-d.js';
import { EvalInputError } from './references.js';

/**
 * Document frequencies for CIDEr from a JSON file `{"ref_len": <log of the number of documents>, "df": {"n-gram
 * words": count, …}}`: cidereval's df pickles (its COCO validation frequencies, "coco-val.p", which MedEvalKit's
 * CIDEr uses) converted as the README shows. N-gram words are PTB tokens joined by single spaces.
 */
export async function readDocumentFrequencies(file: string): Promise<DocumentFrequencies> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new EvalInputError(`--cider-df ${file}: ${e.code === 'ENOENT' ? 'no such file' : e instanceof SyntaxError ? `not JSON (${e.message})` : e.message}`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new EvalInputError(`--cider-df ${file}: not a JSON object with "ref_len" and "df"`);
  const { ref_len: refLen, df } = raw as { ref_len?: unknown; df?: unknown };
  if (typeof refLen !== 'number' || !Number.isFinite(refLen) || refLen <= 0) throw new EvalInputError(`--cider-df ${file}: "ref_len" must be a positive number (the natural log of the number of documents), got ${JSON.stringify(refLen)}`);
  if (!df || typeof df !== 'object' || Array.isArray(df)) throw new EvalInputError(`--cider-df ${file}: "df" must be an object of n-gram → document count`);
  const map = new Map<string, number>();
  for (const [gram, count] of Object.entries(df)) {
    if (typeof count !== 'number' || !(count >= 0)) throw new EvalInputError(`--cider-df ${file}: "df" of ${JSON.stringify(gram.slice(0, 60))} must be a count, got ${JSON.stringify(count)}`);
    map.set(gram.split(/\s+/).filter(Boolean).join(' '), count);
  }
  return { refLen, df: map };
}
