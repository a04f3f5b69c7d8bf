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
    .replace(/^[\s*_#:]+/, '')
    .replace(/[\s*_#]+$/, '')
    .replace(/\s*\n\s*/g, '\n')
    .replace(/^\{\s*\}\.?$/, '')
    .trim();
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
  const findings = found.findings ?? '';
  const impression = found.impression ?? '';
  if (!findings && !impression) {
    throw new ReplyFormatError('the model reply has neither a Findings nor an Impression section with text');
  }
  const missing: Section[] = [];
  if (!findings) missing.push('findings');
  if (!impression) missing.push('impression');
  return { findings, impression, missing };
}
