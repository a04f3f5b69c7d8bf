/**
 * Caption tokens as pycocoevalcap prepares them (pycocoevalcap/tokenizer/ptbtokenizer.py): Stanford PTBTokenizer
 * with -lowerCase, then the punctuation tokens '' ' `` ` -LRB- -RRB- -LCB- -RCB- . ? ! , : - -- ... ; removed.
 * This is a small re-implementation of the PTB rules that matter for report text (punctuation split from words,
 * clitics such as n't and 's split off, brackets kept as -lrb-/-rrb- as the lower-cased Java tokenizer leaves them);
 * it does not run Java.
 */
import { pythonSplit } from './python-split.js';

const DROPPED = new Set(["''", "'", '``', '`', '.', '?', '!', ',', ':', '-', '--', '...', ';']);
const BRACKETS: Record<string, string> = { '(': '-lrb-', ')': '-rrb-', '{': '-lcb-', '}': '-rcb-', '[': '-lsb-', ']': '-rsb-' };

export function ptbTokens(text: string): string[] {
  const out: string[] = [];
  const spaced = text
    .toLowerCase()
    .replace(/\.\.\./g, ' ... ')
    .replace(/--/g, ' -- ')
    .replace(/([?!,;:()[\]{}"`])/g, ' $1 ')
    // A full stop ends a token unless it sits inside a number or an abbreviation-like run (e.g. 1.5, a.m.).
    .replace(/(?<![\d])\.(?!\d)|(?<=\d)\.(?!\d)/g, ' . ')
    .replace(/(\w)(n't)\b/g, '$1 $2')
    .replace(/(\w)('(?:s|m|d|ll|re|ve))\b/g, '$1 $2');
  // The tokens are split again by Python's str.split() in pycocoevalcap's precook, so its whitespace is what counts.
  for (const raw of pythonSplit(spaced)) {
    if (!raw) continue;
    // Hyphens between words stay (x-ray); a lone hyphen or one at the edge is punctuation.
    const token = raw === '"' ? "''" : raw.replace(/^-+(?=\w)|(?<=\w)-+$/g, '');
    if (!token || DROPPED.has(token)) continue;
    out.push(BRACKETS[token] ?? token);
  }
  return out;
}
