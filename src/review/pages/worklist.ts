import type { QualityRow } from '../../jobs/job-store.js';
import type { WorklistFilter, WorklistRow } from '../worklist.js';
import { html, type Html } from './html.js';

/** Every mention of an AI-raised urgency says what it is. */
export const URGENT_LABEL = 'unverified AI suspicion';

export function worklistPage(rows: WorklistRow[], filter: WorklistFilter): Html {
  return html`<h1>Drafts awaiting sign-off <span class="count">${rows.length}</span></h1>
<form class="filters" method="get" action="/review">
  <label>Study date from <input type="date" name="from" value="${filter.from ?? ''}"></label>
  <label>to <input type="date" name="to" value="${filter.to ?? ''}"></label>
  <label><input type="checkbox" name="flagged" value="1" ${filter.flagged ? html`checked` : ''}> flagged only</label>
  <button type="submit">Filter</button>
</form>
${rows.length === 0
    ? html`<p class="empty">No drafts are waiting.</p>`
    : html`<table class="worklist" id="worklist">
<thead><tr><th>Priority</th><th>Study date</th><th>Patient</th><th>Examination</th><th>Flags</th><th>Drafted</th><th>Model</th></tr></thead>
<tbody>
${rows.map((r) => html`<tr data-href="/review/${r.reportId}" class="${r.priority !== 'routine' ? 'urgent' : ''}">
<td>${r.priority}${r.urgent.length ? html`<span class="suspicion">${URGENT_LABEL}: ${r.urgent.join(', ')}</span>` : ''}</td><td>${r.studyDate?.replace('T', ' ').slice(0, 16) ?? ''}</td>
<td><a href="/review/${r.reportId}">${r.patient}</a></td><td>${r.code}</td>
<td>${r.flags.length ? html`<span class="flag">${r.flags.join('; ')}</span>` : ''}</td>
<td>${r.drafted?.replace('T', ' ').slice(0, 16) ?? ''}</td><td>${r.model}</td></tr>`)}
</tbody></table>
<p class="keys">Keys: <kbd>j</kbd>/<kbd>k</kbd> move, <kbd>Enter</kbd> opens.</p>`}`;
}

export function qualityPage(rows: QualityRow[]): Html {
  const pct = (n: number, d: number) => (d ? `${Math.round((100 * n) / d)} %` : '–');
  return html`<h1>Draft quality</h1>
<p>How far radiologists changed the drafts before signing, by model and prompt version. Edit distance counts characters inserted, deleted or replaced in the findings and impression.</p>
${rows.length === 0
    ? html`<p class="empty">No draft has been signed or rejected yet.</p>`
    : html`<table class="quality">
<thead><tr><th>Model</th><th>Prompt</th><th>Signed</th><th>Signed unchanged</th><th>Mean edit distance</th><th>Mean edit / draft length</th><th>Rejected</th></tr></thead>
<tbody>${rows.map((r) => html`<tr><td>${r.model}</td><td>${r.promptVersion}</td><td>${r.signed}</td>
<td>${r.signedUnchanged} (${pct(r.signedUnchanged, r.signed)})</td>
<td>${r.meanEditDistance === undefined ? '–' : r.meanEditDistance.toFixed(1)}</td>
<td>${r.meanEditRatio === undefined ? '–' : `${(100 * r.meanEditRatio).toFixed(1)} %`}</td>
<td>${r.rejected} (${pct(r.rejected, r.signed + r.rejected)})</td></tr>`)}</tbody></table>`}`;
}

export function messagePage(title: string, message: string): Html {
  return html`<h1>${title}</h1><p class="message">${message}</p>`;
}
