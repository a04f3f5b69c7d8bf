import type { RisQualityRow } from '../../jobs/ris-reports.js';
import { html, type Html } from './html.js';

/**
 * The drafts measured against the final reports the RIS sent over HL7: what radiologists signed where they report,
 * even when they never opened raddraft's page. Each study counts once, with its latest final report.
 */
export function risQualitySection(rows: RisQualityRow[]): Html {
  const pct = (n: number, d: number) => (d ? `${Math.round((100 * n) / d)} %` : '–');
  return html`<h2>Against the reports signed in the RIS</h2>
<p>Drafts compared with the final reports the RIS or dictation system sent over HL7 (ORU^R01, MDM^T02) for the same studies.</p>
${rows.length === 0
    ? html`<p class="empty">No final report has come from the RIS yet.</p>`
    : html`<table class="quality" id="ris-quality">
<thead><tr><th>Model</th><th>Prompt</th><th>RIS final reports</th><th>Unchanged</th><th>Mean edit distance</th><th>Mean edit / draft length</th></tr></thead>
<tbody>${rows.map((r) => html`<tr><td>${r.model}</td><td>${r.promptVersion}</td><td>${r.reports}</td>
<td>${r.unchanged} (${pct(r.unchanged, r.reports)})</td>
<td>${r.meanEditDistance === undefined ? '–' : r.meanEditDistance.toFixed(1)}</td>
<td>${r.meanEditRatio === undefined ? '–' : `${(100 * r.meanEditRatio).toFixed(1)} %`}</td></tr>`)}</tbody></table>`}`;
}
