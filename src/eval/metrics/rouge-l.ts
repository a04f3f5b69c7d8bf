/**
 * ROUGE-L F as the `rouge` package 1.0.1 computes it (pltrdy/rouge, rouge/rouge.py and rouge_score.py
 * `rouge_l_summary_level`), the version MedEvalKit pins and calls as `Rouge().get_scores(hyp.lower(), ref.lower())`.
 * Summary-level LCS (Lin 2004, §3.2) with that package's particulars kept, because they move the number:
 * sentences are split on "." only; words are sets, so the union LCS counts distinct words; ties in the LCS
 * backtrack go left; F = 2PR / (P + R + 1e-8).
 */

import { pythonSplit } from './python-split.js';

export interface RougeScore {
  f: number;
  p: number;
  r: number;
}

/** rouge.py: `[" ".join(s.split()) for s in text.split(".") if len(s) > 0]`; a blank piece stays as "". */
function sentences(text: string): string[] {
  return text.split('.').filter((s) => s.length > 0).map((s) => pythonSplit(s).join(' '));
}

/** `_split_into_words`: each sentence split on single spaces ("" gives one empty word, as in Python). */
function words(sents: readonly string[]): string[] {
  return sents.flatMap((s) => s.split(' '));
}

/** The words of one longest common subsequence of x and y, backtracked as rouge's `_recon_lcs` does. */
function lcsWords(x: readonly string[], y: readonly string[]): Set<string> {
  const w = y.length + 1;
  const table = new Uint32Array((x.length + 1) * w);
  for (let i = 1; i <= x.length; i++) {
    for (let j = 1; j <= y.length; j++) {
      table[i * w + j] = x[i - 1] === y[j - 1] ? table[(i - 1) * w + j - 1]! + 1 : Math.max(table[(i - 1) * w + j]!, table[i * w + j - 1]!);
    }
  }
  const out = new Set<string>();
  let i = x.length;
  let j = y.length;
  while (i > 0 && j > 0) {
    if (x[i - 1] === y[j - 1]) {
      out.add(x[i - 1]!);
      i--;
      j--;
    } else if (table[(i - 1) * w + j]! > table[i * w + j - 1]!) {
      i--;
    } else {
      j--;
    }
  }
  return out;
}

/** ROUGE-L of a hypothesis against a reference. An empty hypothesis or reference scores 0 (the package throws). */
export function rougeL(hypothesis: string, reference: string): RougeScore {
  const hyp = sentences(hypothesis);
  const ref = sentences(reference);
  if (hyp.length === 0 || ref.length === 0) return { f: 0, p: 0, r: 0 };
  const m = new Set(words(ref)).size;
  const n = new Set(words(hyp)).size;
  const union = new Set<string>();
  const hypWords = hyp.map((s) => words([s]));
  for (const refSentence of ref) {
    const refWords = words([refSentence]);
    for (const h of hypWords) for (const word of lcsWords(refWords, h)) union.add(word);
  }
  const r = union.size / m;
  const p = union.size / n;
  return { f: 2 * ((p * r) / (p + r + 1e-8)), p, r };
}
