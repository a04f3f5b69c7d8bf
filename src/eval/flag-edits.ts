import type { SentenceFlag } from '../report/report.js';

/**
 * eval --production: how often the sentences the checks flagged were changed by the radiologist before signing,
 * beside how often the unflagged ones were. A sentence counts as edited when no sentence of the signed report's same
 * section is the same sentence (case and spacing aside). Flags that point at the right sentences show as a higher edit rate.
 */
export interface EditRate {
  sentences: number;
  edited: number;
  rate: number | undefined;
}

export interface FlagEdits {
  /** Drafts whose flags were recorded with them (drafts read back from the FHIR server carry none). */
  drafts: number;
  flagged: EditRate;
  byKind: Record<string, EditRate>;
  unflagged: EditRate;
}

interface Pair {
  draft: { findings: string; impression: string };
  final: { findings: string; impression: string };
  sentenceFlags?: SentenceFlag[];
}

const normal = (s: string) => s.toLowerCase().replace(/\s+/g, ' ').trim();
const sentences = (text: string) => text.split(/(?<=[.!?])\s+|\n+/).map((s) => s.trim()).filter(Boolean);
const rate = (sentences: number, edited: number): EditRate => ({ sentences, edited, rate: sentences ? edited / sentences : undefined });

export function flagEdits(pairs: readonly Pair[]): FlagEdits {
  const kinds = new Map<string, [number, number]>();
  let drafts = 0;
  const totals = { flagged: [0, 0], unflagged: [0, 0] };
  for (const p of pairs) {
    if (!p.sentenceFlags) continue;
    drafts += 1;
    for (const section of ['findings', 'impression'] as const) {
      const signed = new Set(sentences(p.final[section]).map(normal));
      for (const sentence of sentences(p.draft[section])) {
        const edited = !signed.has(normal(sentence));
        const flags = p.sentenceFlags.filter((f) => f.section === section && f.sentence === sentence);
        const bucket = flags.length ? totals.flagged : totals.unflagged;
        bucket[0]! += 1;
        bucket[1]! += edited ? 1 : 0;
        for (const kind of new Set(flags.map((f) => f.kind))) {
          const k = kinds.get(kind) ?? [0, 0];
          kinds.set(kind, [k[0] + 1, k[1] + (edited ? 1 : 0)]);
        }
      }
    }
  }
  return {
    drafts,
    flagged: rate(totals.flagged[0]!, totals.flagged[1]!),
    byKind: Object.fromEntries([...kinds].map(([k, [n, e]]) => [k, rate(n, e)])),
    unflagged: rate(totals.unflagged[0]!, totals.unflagged[1]!),
  };
}

export function flagEditsText(f: FlagEdits): string {
  const pct = (r: EditRate) => (r.rate === undefined ? 'n/a' : `${(100 * r.rate).toFixed(1)} %`);
  const kinds = Object.entries(f.byKind).map(([k, r]) => `${k} ${pct(r)} of ${r.sentences}`).join(', ');
  return `flagged sentences edited before signing: ${pct(f.flagged)} (${f.flagged.edited} of ${f.flagged.sentences}${kinds ? `; ${kinds}` : ''}); unflagged: ${pct(f.unflagged)} (${f.unflagged.edited} of ${f.unflagged.sentences}), over ${f.drafts} draft(s) with recorded flags`;
}
