import { createHash } from 'node:crypto';
import type { Attachment } from '@medplum/fhirtypes';

/** A report as a reader sees it: a headline (who wrote and signed it), its sections, any addenda, and notes. */
export interface ReportDocument {
  /** One or more banner lines: AI draft, signed by whom, corrected when and why. */
  headline: string[];
  findings: string;
  impression: string;
  addenda?: string[];
  /** Lines after the sections (e.g. raddraft's review flags on a draft). */
  notes?: { title: string; items: string[] };
  title: string;
  language: string;
  creation: string;
}

export const escapeXml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

const para = (s: string) => escapeXml(s).replace(/\n/g, '<br/>');

/** The plain text; `FINDINGS:` and `IMPRESSION:` start their sections (review reads them back from here). */
export function plainText(doc: ReportDocument): string {
  return [
    ...doc.headline,
    '',
    'FINDINGS:',
    doc.findings || '(no findings given)',
    '',
    'IMPRESSION:',
    doc.impression || '(no impression given)',
    '',
    ...(doc.addenda ?? []).flatMap((a, i) => [`ADDENDUM ${i + 1}:`, a, '']),
    ...(doc.notes?.items.length ? [`${doc.notes.title}:`, ...doc.notes.items.map((f) => `- ${f}`), ''] : []),
  ].join('\n');
}

/** The same report as XHTML: the narrative `div` and the body of the text/html attachment. */
export function xhtmlDiv(doc: ReportDocument): string {
  const [first, ...rest] = doc.headline;
  return (
    '<div xmlns="http://www.w3.org/1999/xhtml">' +
    `<p><b>${escapeXml(first ?? '')}</b></p>` +
    rest.map((line) => `<p>${escapeXml(line)}</p>`).join('') +
    `<p><b>Findings:</b> ${para(doc.findings || '(no findings given)')}</p>` +
    `<p><b>Impression:</b> ${para(doc.impression || '(no impression given)')}</p>` +
    (doc.addenda ?? []).map((a, i) => `<p><b>Addendum ${i + 1}:</b> ${para(a)}</p>`).join('') +
    (doc.notes?.items.length ? `<p><b>${escapeXml(doc.notes.title)}:</b></p><ul>${doc.notes.items.map((f) => `<li>${escapeXml(f)}</li>`).join('')}</ul>` : '') +
    '</div>'
  );
}

function htmlPage(doc: ReportDocument): string {
  return `<!DOCTYPE html><html lang="${escapeXml(doc.language)}"><head><meta charset="utf-8"/><title>${escapeXml(doc.title)}</title></head><body>${xhtmlDiv(doc)}</body></html>`;
}

/** R4 Attachment: `size` is the byte count before base64, `hash` the SHA-1 of those bytes in base64. */
function attachment(contentType: string, body: string, doc: ReportDocument): Attachment {
  const bytes = Buffer.from(body, 'utf8');
  return {
    contentType,
    language: doc.language,
    title: doc.title,
    data: bytes.toString('base64'),
    size: bytes.length,
    hash: createHash('sha1').update(bytes).digest('base64'),
    creation: doc.creation,
  };
}

/** presentedForm: text/plain first (what review and most consumers read), then text/html. */
export function presentedForm(doc: ReportDocument): Attachment[] {
  return [attachment('text/plain; charset=utf-8', plainText(doc), doc), attachment('text/html; charset=utf-8', htmlPage(doc), doc)];
}
