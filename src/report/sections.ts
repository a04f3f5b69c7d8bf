/**
 * Splits a model reply into Findings and Impression. Replies vary: "Findings: … Impression: …" on one line,
 * markdown headings (`## Findings`), bold labels (`**IMPRESSION:**`), a preamble before the first section,
 * singular or plural labels, "Conclusion" for the impression. A reply with no usable section is an error: it is
 * retried and never posted.
 */
export interface ParsedReport {
  findings: string;
  impression: string;
  missing: ('findings' | 'impression')[];
  /** A section that repeated itself until the token limit was cut at the first repetition. */
  repetitionCut: boolean;
}

export class ReplyFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplyFormatError';
  }
}

type Section = 'findings' | 'impression';

const WORD = '(findings?|impressions?|conclusions?)';
// "Findings:" anywhere (optionally in bold), or a heading line holding only the word ("## Impression").
const INLINE_LABEL = new RegExp(`(^|[\\s>(])[#*_]*\\s*\\b${WORD}\\b[*_]*\\s*[:：][*_]*`, 'gim');
const HEADING_LABEL = new RegExp(`^[ \\t]*[#*_]*[ \\t]*${WORD}[ \\t]*[*_]*[ \\t]*$`, 'gim');

function sectionOf(word: string): Section {
  return /^finding/i.test(word) ? 'findings' : 'impression';
}

function clean(text: string): string {
  return text
    .replace(/^(?:\s|[#:]|\*\*|__)+/, '')
    .replace(/[\s*_#]+$/, '')
    .replace(/\s*\n\s*/g, '\n')
    .replace(/^\{\s*\}\.?$/, '')
    .trim();
}

/**
 * Greedy decoding can fall into a loop, repeating a sentence until the token limit. The text is cut where a
 * sentence first comes back for the second time in a row or the third time overall.
 */
export function cutRepetition(text: string): { text: string; cut: boolean } {
  const parts = text.split(/(?<=[.!?])\s+/);
  const seen = new Map<string, number>();
  let previous = '';
  for (let i = 0; i < parts.length; i++) {
    const key = parts[i]!.toLowerCase().replace(/[^a-z0-9]+/g, ' ').trim();
    if (!key) continue;
    const count = (seen.get(key) ?? 0) + 1;
    seen.set(key, count);
    if ((key === previous && key.length > 3) || count >= 3) return { text: parts.slice(0, i).join(' ').trim(), cut: true };
    previous = key;
  }
  return { text, cut: false };
}

export function parseReport(reply: string): ParsedReport {
  const labels: { section: Section; start: number; end: number }[] = [];
  for (const m of reply.matchAll(INLINE_LABEL)) {
    const lead = m[1] ?? '';
    labels.push({ section: sectionOf(m[2]!), start: m.index + lead.length, end: m.index + m[0].length });
  }
  for (const m of reply.matchAll(HEADING_LABEL)) {
    if (!labels.some((l) => l.start <= m.index + m[0].length && m.index <= l.end)) {
      labels.push({ section: sectionOf(m[1]!), start: m.index, end: m.index + m[0].length });
    }
  }
  labels.sort((a, b) => a.start - b.start);
  const found: Partial<Record<Section, string>> = {};
  labels.forEach((label, i) => {
    if (found[label.section] !== undefined) return;
    const next = labels.slice(i + 1).find((l) => l.section !== label.section);
    const body = clean(reply.slice(label.end, next ? next.start : reply.length));
    if (body.length > 0) found[label.section] = body;
  });
  const f = cutRepetition(found.findings ?? '');
  const i = cutRepetition(found.impression ?? '');
  const findings = f.text;
  const impression = i.text;
  if (!findings && !impression) {
    throw new ReplyFormatError('the model reply has neither a Findings nor an Impression section with text');
  }
  const missing: Section[] = [];
  if (!findings) missing.push('findings');
  if (!impression) missing.push('impression');
  return { findings, impression, missing, repetitionCut: f.cut || i.cut };
}
