import { OBSERVATIONS } from '../report/chexpert-labeler.js';
import type { EvalResult, StudyRow } from './result.js';
import { wordDiff } from './word-diff.js';

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (v: number | undefined, digits = 3): string => (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits));
const span = (e: { low: number; high: number }): string => (Number.isFinite(e.low) && Number.isFinite(e.high) ? `${fmt(e.low)} – ${fmt(e.high)}` : 'n/a');

/** A histogram of one metric's per-study values as inline SVG (no script, no external file). */
export function histogramSvg(name: string, values: readonly number[], bins = 20): string {
  const width = 320;
  const height = 120;
  const pad = 24;
  const max = Math.max(1, ...values);
  const counts = new Array<number>(bins).fill(0);
  for (const v of values) counts[Math.min(bins - 1, Math.max(0, Math.floor((v / max) * bins)))]! += 1;
  const top = Math.max(1, ...counts);
  const bw = (width - 2 * pad) / bins;
  const bars = counts.map((c, i) => {
    const h = ((height - 2 * pad) * c) / top;
    return `<rect x="${(pad + i * bw).toFixed(1)}" y="${(height - pad - h).toFixed(1)}" width="${(bw - 1).toFixed(1)}" height="${h.toFixed(1)}"><title>${c} studies</title></rect>`;
  }).join('');
  return `<svg class="hist" role="img" aria-label="${esc(name)} distribution" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}">` +
    `<text x="${pad}" y="14" class="t">${esc(name)} (n = ${values.length})</text>${bars}` +
    `<line x1="${pad}" y1="${height - pad}" x2="${width - pad}" y2="${height - pad}" class="axis"/>` +
    `<text x="${pad}" y="${height - 6}" class="a">0</text><text x="${width - pad}" y="${height - 6}" class="a" text-anchor="end">${fmt(max, 2)}</text></svg>`;
}

/** The texts as compared: given whole (eval --pairs), or rebuilt from their sections. */
function shownTexts(row: StudyRow, sep: string): { draft: string; reference: string } {
  if (row.reference.text !== undefined) return { draft: row.draft?.text ?? '', reference: row.reference.text };
  return {
    draft: row.draft ? `Findings: ${row.draft.findings}${sep}Impression: ${row.draft.impression}` : '',
    reference: `Findings: ${row.reference.findings}${sep}Impression: ${row.reference.impression}`,
  };
}

function diffHtml(row: StudyRow): string {
  if (!row.draft) return '';
  const { draft, reference } = shownTexts(row, ' ');
  return wordDiff(draft, reference)
    .map((p) => (p.op === 'same' ? esc(p.text) : p.op === 'draft' ? `<del title="only in the draft">${esc(p.text)}</del>` : `<ins title="only in the reference">${esc(p.text)}</ins>`))
    .join(' ');
}

function labelList(labels: StudyRow['labels'], side: 'reference' | 'draft'): string {
  if (!labels) return '';
  const l = labels[side];
  const word = { 1: 'positive', 0: 'negative', [-1]: 'uncertain' } as const;
  return OBSERVATIONS.filter((o) => l[o] !== undefined).map((o) => `<span class="lab l${l[o]}">${esc(o)}: ${word[l[o]!]}</span>`).join(' ');
}

const STYLE = `body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1a1a1a;max-width:1400px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px}table{border-collapse:collapse;margin:8px 0}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f2f2f2}
td.n{text-align:right;font-variant-numeric:tabular-nums}.banner{background:#fff4ce;border:1px solid #e0b000;padding:8px 12px}
.hist rect{fill:#3b6ea5}.hist .axis{stroke:#555}.hist .t{font-size:12px}.hist .a{font-size:10px}.plots{display:flex;flex-wrap:wrap;gap:12px}
del{background:#fde2e2;text-decoration:line-through}ins{background:#dff5df;text-decoration:none}
.lab{display:inline-block;border-radius:3px;padding:0 4px;margin:1px;font-size:12px}.l1{background:#ffd9d9}.l0{background:#e4f0e4}.l-1{background:#fff0c2}
.flag{color:#8a4b00}.err{color:#a00}td.text{max-width:380px;white-space:pre-wrap}.muted{color:#666}`;

/** The self-contained HTML report of an evaluation: one file, no scripts, no external resources. */
export function renderReport(result: EvalResult): string {
  const names = Object.keys(result.summary);
  const summaryRows = names.map((n) => {
    const e = result.summary[n]!;
    const info = result.metrics.find((m) => m.name === n);
    return `<tr><td>${esc(n)}</td><td class="n">${fmt(e.mean)}</td><td class="n">${span(e)}</td><td class="n">${e.n}</td><td class="muted">${esc(info?.source ?? 'site scorer')}</td></tr>`;
  }).join('');
  const l = result.labels;
  const labelSummary = `<tr><td>CheXpert-style F1 (micro, 14 observations)</td><td class="n">${fmt(l.microF1)}</td><td class="n">${span(l.microF1Interval)}</td><td class="n">${l.microF1Interval.n}</td><td class="muted">positive findings; raddraft's rule labeler</td></tr>` +
    `<tr><td>CheXpert-style F1 (macro)</td><td class="n">${fmt(l.macroF1)}</td><td class="n">${span(l.macroF1Interval)}</td><td class="n">${l.macroF1Interval.n}</td><td class="muted">over observations present in the set</td></tr>`;
  const paper = result.paper.rows.map((r) => `<tr><td>${r.model}</td><td>${r.dataset}</td>${[r.rougeL, r.cider, r.rate, r.sembScore, r.radCliQInverse].map((v) => `<td class="n">${v.toFixed(1)}</td>`).join('')}</tr>`).join('');
  const groups = result.groups.length > 1 || result.kind === 'production'
    ? `<h2>By model and prompt</h2><table><tr><th>model</th><th>prompt</th><th>studies</th>${names.map((n) => `<th>${esc(n)}</th>`).join('')}<th>F1 (micro)</th></tr>${result.groups.map((g) => `<tr><td>${esc(g.model)}</td><td>${esc(g.promptVersion)}</td><td class="n">${g.n}</td>${names.map((n) => `<td class="n">${fmt(g.summary[n]?.mean)}</td>`).join('')}<td class="n">${fmt(g.microF1)}</td></tr>`).join('')}</table>`
    : '';
  const differences = result.differences?.length
    ? `<h2>Models compared</h2><p class="muted">Each model's scores minus those of ${esc(result.differences[0]!.baseline)}, study by study on the studies both drafted; 95 % paired bootstrap intervals. An interval that excludes 0 is a difference this set can show.</p><table id="differences"><tr><th>model</th><th>studies</th><th>metric</th><th>mean difference</th><th>95 % interval</th></tr>${result.differences.flatMap((d) => [...Object.entries(d.metrics), ['F1 (micro)', d.microF1] as const].map(([n, e]) => `<tr><td>${esc(d.model)}</td><td class="n">${d.n}</td><td>${esc(n)}</td><td class="n">${fmt(e.mean)}</td><td class="n">${span(e)}</td></tr>`)).join('')}</table>`
    : '';
  const plots = names.map((n) => histogramSvg(n, result.studies.map((s) => s.metrics[n]).filter((v): v is number => v !== undefined))).join('');
  const confusion = l.perObservation.map((c) => `<tr><td>${esc(c.observation)}</td><td class="n">${c.tp}</td><td class="n">${c.fp}</td><td class="n">${c.fn}</td><td class="n">${c.tn}</td><td class="n">${fmt(c.precision)}</td><td class="n">${fmt(c.recall)}</td><td class="n">${fmt(c.f1)}</td></tr>`).join('');
  const flagged = result.studies.filter((s) => s.flags.length).length;
  const rows = result.studies.map((s) => `<tr id="s-${esc(s.id)}"><td>${esc(s.id)}${s.model ? `<div class="muted">${esc(s.model)} · ${esc(s.promptVersion ?? '')}</div>` : ''}</td>` +
    (s.draft
      ? `<td class="text">${esc(shownTexts(s, '\n').draft)}</td><td class="text">${esc(shownTexts(s, '\n').reference)}</td><td class="text">${diffHtml(s)}</td>`
      : `<td colspan="3" class="err">not drafted: ${esc(s.error ?? 'unknown reason')}</td>`) +
    `<td>${names.map((n) => (s.metrics[n] !== undefined ? `${esc(n)} ${fmt(s.metrics[n])}` : '')).filter(Boolean).join('<br>')}${s.scorerError ? `<div class="err">${esc(s.scorerError)}</div>` : ''}</td>` +
    `<td>${s.flags.map((f) => `<div class="flag">⚑ ${esc(f)}</div>`).join('')}</td><td><div>reference: ${labelList(s.labels, 'reference')}</div><div>draft: ${labelList(s.labels, 'draft')}</div></td></tr>`).join('');
  const failures = result.failures.length
    ? `<h2>Not scored (${result.failures.length})</h2><table><tr><th>study</th><th>reason</th></tr>${result.failures.map((f) => `<tr><td>${esc(f.id)}</td><td>${esc(f.reason)}</td></tr>`).join('')}</table>`
    : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>raddraft evaluation — ${esc(result.input)}</title><style>${STYLE}</style></head><body>
<h1>raddraft evaluation</h1>
<p class="banner">These are AI-generated drafts scored against ${esc(result.comparison)}. They were not reviewed by a radiologist and are not for clinical use.</p>
${result.warnings.map((w) => `<p class="banner warning">${esc(w)}</p>`).join('')}
<table><tr><th>input</th><td>${esc(result.input)} (${esc(result.kind)})</td></tr><tr><th>model</th><td>${esc(result.model ?? 'several, see below')}</td></tr><tr><th>prompt</th><td>${esc(result.promptVersion ?? 'several, see below')}</td></tr>
<tr><th>studies</th><td>${result.counts.studies} · ${result.counts.scored} scored · ${result.counts.failed} not drafted · ${result.counts.leftOut} left out · ${result.counts.resumed} drafts from an earlier run</td></tr>
<tr><th>time</th><td>drafting ${fmt(result.seconds.drafting, 1)} s · scoring ${fmt(result.seconds.scoring, 1)} s</td></tr><tr><th>written</th><td>${esc(result.createdAt)} by ${esc(result.tool.name)} ${esc(result.tool.version)}</td></tr></table>
<h2>Summary</h2><table id="summary"><tr><th>metric</th><th>mean</th><th>95 % bootstrap interval</th><th>studies</th><th>computed as</th></tr>${summaryRows}${labelSummary}</table>
<p class="muted">Not computed here (they need neural models; a site scorer can add them with --scorer-url or --scorer-command): ${result.neuralMetrics.map((m) => `${esc(m.name)} (${esc(m.needs)})`).join('; ')}.</p>
${groups}
${differences}
<h2>Published figures for orientation</h2><p class="muted">${esc(result.paper.source)}. The paper's figures are ×100 (this report's ROUGE-L 0.300 is the paper's 30.0; CIDEr 1.000 is 100.0). Different data, different images: a guide to the scale, not a target.</p>
<table><tr><th>model</th><th>dataset</th><th>ROUGE-L</th><th>CIDEr</th><th>RaTE</th><th>SembScore</th><th>RadCliQ⁻¹</th></tr>${paper}</table>
<h2>Distributions</h2><div class="plots">${plots}</div>
<h2>Label agreement (CheXpert-style, positive findings)</h2><table id="confusion"><tr><th>observation</th><th>TP</th><th>FP</th><th>FN</th><th>TN</th><th>precision</th><th>recall</th><th>F1</th></tr>${confusion}</table>
<h2>Studies</h2><p>${flagged} of ${result.studies.length} drafts carry safety flags. In the diff, <del>struck words</del> are only in the draft and <ins>green words</ins> only in the reference.</p>
<table id="studies"><tr><th>study</th><th>draft</th><th>reference</th><th>word diff</th><th>scores</th><th>safety flags</th><th>labels</th></tr>${rows}</table>
${failures}
</body></html>
`;
}
