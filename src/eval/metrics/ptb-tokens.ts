/**
 * Caption tokens as pycocoevalcap prepares them (pycocoevalcap/tokenizer/ptbtokenizer.py): Stanford PTBTokenizer
 * with -lowerCase, then the punctuation tokens '' ' `` ` -LRB- -RRB- -LCB- -RCB- . ? ! , : - -- ... ; removed.
 * This is a small re-implementation of the PTB rules that matter for report text; it does not run Java. It follows
 * the Stanford lexer in: punctuation split from words; clitics (n't, 's, 'll …) split off; acronyms ("u.s.", "e.g.",
 * "a.m.") and the common abbreviations ("dr.", "vs.", "etc.") kept whole with their stop; numbers with a decimal
 * point, thousands comma or clock colon ("1.5", "1,000", "10:30") kept whole; %, $ and # split off; straight and
 * curly quotes and apostrophes made quote tokens (then removed); en and em dashes made "--" and "…" made "..." (the
 * ptb3Dashes and ptb3Ellipsis normalisations), then removed; brackets kept as -lrb-/-rrb- as the lower-cased Java
 * tokenizer leaves them. Where it differs: no British-to-American respelling ("americanize"), no fraction or
 * currency-symbol normalisation, "/" not escaped, and only the abbreviations listed below are known.
 */
import { pythonSplit } from './python-split.js';

const DROPPED = new Set(["''", "'", '``', '`', '.', '?', '!', ',', ':', '-', '--', '...', ';']);
const BRACKETS: Record<string, string> = { '(': '-lrb-', ')': '-rrb-', '{': '-lcb-', '}': '-rcb-', '[': '-lsb-', ']': '-rsb-' };
// Letters with stops ("u.s.", "e.g.") and the lexer's common titles and abbreviations, which keep their stop.
const ABBREVIATION = /^(?:[a-z]\.(?:[a-z]\.)+|(?:mr|mrs|ms|dr|prof|st|jr|sr|vs|etc|inc|ltd|corp|mt|ft|fig|approx)\.)$/;
const CLITIC = /^'(?:s|m|d|ll|re|ve)$/;

/** One whitespace-separated piece: stops, clitics and edge quotes split off. */
function splitPiece(piece: string): string[] {
  if (ABBREVIATION.test(piece)) return [piece];
  const out: string[] = [];
  const spaced = piece
    // A full stop ends a token unless a digit follows it (1.5, .5).
    .replace(/\.(?!\d)/g, ' . ')
    .replace(/(\w)(n't)\b/g, '$1 $2')
    .replace(/(\w)('(?:s|m|d|ll|re|ve))\b/g, '$1 $2');
  for (const raw of spaced.split(' ')) {
    if (!raw) continue;
    let token = raw;
    // An apostrophe opening or closing a word is a quote (` and '), not part of it.
    if (token.length > 1 && token.startsWith("'") && !CLITIC.test(token)) {
      out.push('`');
      token = token.slice(1);
    }
    const closing = token.length > 1 && token.endsWith("'") && token !== "n't";
    if (closing) token = token.slice(0, -1);
    out.push(token);
    if (closing) out.push("'");
  }
  return out;
}

export function ptbTokens(text: string): string[] {
  const spaced = text
    .toLowerCase()
    .replace(/[\u2018\u2019\u201a\u201b]/g, "'")
    .replace(/[\u201c\u201d\u201e\u201f]/g, '"')
    .replace(/[\u2012-\u2015]/g, ' -- ')
    .replace(/\u2026|\.\.\./g, ' ... ')
    .replace(/--/g, ' -- ')
    .replace(/([?!;()[\]{}"`%$#])/g, ' $1 ')
    // A comma or colon between digits belongs to the number (1,000 and 10:30).
    .replace(/(?<!\d)[,:]|[,:](?!\d)/g, ' $& ');
  const out: string[] = [];
  // pycocoevalcap's precook splits the tokens again with Python's str.split(), so its whitespace is what counts.
  for (const piece of pythonSplit(spaced)) {
    for (const raw of splitPiece(piece)) {
      // Hyphens between words stay (x-ray); a lone hyphen or one at the edge is punctuation.
      const token = raw === '"' ? "''" : raw.replace(/^-+(?=\w)|(?<=\w)-+$/g, '');
      if (!token || DROPPED.has(token)) continue;
      out.push(BRACKETS[token] ?? token);
    }
  }
  return out;
}
