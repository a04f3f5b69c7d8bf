import type { Job } from '../../jobs/job-store.js';
import type { Delivery } from '../../jobs/outbox.js';
import { DRAFT_STATUSES, SIGNED_STATUSES, type ReviewedDraft } from '../../fhir/sign.js';
import { html, type Html } from './html.js';
import { draftFlags } from './sentence-flags.js';

export interface ReportView {
  draft: ReviewedDraft;
  job: Job | undefined;
  /** Where each event of this report went (FHIR server, PACS, RIS) and how far it got. */
  deliveries: Delivery[];
  patient: string;
  canSign: boolean;
}

function images(view: ReportView): Html {
  const { job, draft } = view;
  if (!job?.views?.length) {
    return html`<p class="message">The images cannot be shown: this raddraft has no record of which instances were drafted from.</p>`;
  }
  return html`${job.views.map((v, i) => {
    const rendered = job.images?.find((img) => img.sopUid === v.sopUid);
    const src = `/review/images/${draft.studyUid}/${v.seriesUid}/${v.sopUid}`;
    return html`<figure class="viewer" tabindex="0" data-src="${src}" data-center="${rendered?.window.center ?? ''}" data-width="${rendered?.window.width ?? ''}">
<img src="${src}?size=1600" alt="image ${i + 1}: ${v.view.toLowerCase()} view" draggable="false">
<figcaption>${i + 1}: ${v.view} <span class="wl"></span></figcaption></figure>`;
  })}
<p class="keys">Image: <kbd>←</kbd>/<kbd>→</kbd> window width, <kbd>↑</kbd>/<kbd>↓</kbd> level, <kbd>+</kbd>/<kbd>−</kbd> zoom, <kbd>0</kbd> reset; drag to move when zoomed.</p>`;
}

const EVENT_WORDS: Record<Delivery['kind'], string> = { drafted: 'draft', signed: 'signature', corrected: 'correction', rejected: 'rejection' };

function deliveriesTable(deliveries: Delivery[]): Html | string {
  if (!deliveries.length) return '';
  const outputs = [...new Set(deliveries.map((d) => d.output))].join(', ');
  const waiting = deliveries.filter((d) => d.state !== 'delivered').length;
  const summary = `Sent to ${outputs}: ${waiting === 0 ? 'all delivered' : `${waiting} not delivered yet`}`;
  return html`<details class="deliveries"${waiting ? html` open` : ''}><summary>${summary}</summary>
<table><thead><tr><th>What</th><th>To</th><th>State</th><th>Note</th></tr></thead><tbody>
${deliveries.map((d) => html`<tr class="${d.state}"><td>${EVENT_WORDS[d.kind]}</td><td>${d.output}</td><td>${d.state === 'pending' && d.attempts === 0 && !d.lastError ? 'on its way' : d.state}</td><td>${d.state === 'delivered' ? d.reference ?? '' : d.lastError ?? ''}</td></tr>`)}
</tbody></table></details>`;
}

const BANNERS: Record<string, string> = {
  final: 'SIGNED — AI-assisted report',
  corrected: 'SIGNED AND CORRECTED — AI-assisted report',
  appended: 'SIGNED, WITH ADDENDUM — AI-assisted report',
  amended: 'SIGNED AND AMENDED — AI-assisted report',
};

/** A signed report is changed by a correction (text put right) or an addendum (text added); each needs a reason. */
function amendControls(): Html {
  return html`<div class="actions amend">
<button type="button" id="correct" class="sign">Correct report…</button>
<button type="button" id="addendum" class="sign">Add addendum…</button>
</div>
<div id="amend-box" hidden>
<div id="addendum-field" hidden><label for="addendum-text">Addendum</label>
<textarea id="addendum-text" rows="4"></textarea></div>
<label for="amend-reason">Reason for the change</label>
<textarea id="amend-reason" rows="2"></textarea>
<button type="button" id="confirm-amend" class="sign">Sign change</button>
</div>`;
}

export function reportPage(view: ReportView): Html {
  const { draft } = view;
  const r = draft.report;
  const status = r.status;
  const unverified = DRAFT_STATUSES.includes(status);
  const editable = unverified && view.canSign;
  const amendable = SIGNED_STATUSES.includes(status) && view.canSign;
  return html`<article class="report" data-report="${r.id}" data-version="${r.meta?.versionId ?? ''}">
<div class="banner ${unverified ? 'draft' : SIGNED_STATUSES.includes(status) ? 'final' : status}" role="note">${unverified
    ? 'AI-GENERATED DRAFT — NOT REVIEWED BY A RADIOLOGIST'
    : BANNERS[status] ?? `This draft is ${status}`}</div>
<dl class="facts">
<dt>Patient</dt><dd>${view.patient}</dd>
<dt>Study</dt><dd>${r.effectiveDateTime?.replace('T', ' ').slice(0, 16) ?? 'date unknown'} · ${r.code.coding?.[0]?.display ?? ''}</dd>
<dt>Drafted by</dt><dd>${draft.model} · prompt ${draft.promptVersion} · ${r.issued?.replace('T', ' ').slice(0, 16) ?? ''}</dd>
</dl>
${deliveriesTable(view.deliveries)}
${draftFlags(view.job?.draft)}
<div class="workspace">
<section class="images" aria-label="Images">${images(view)}</section>
<section class="editor" aria-label="Draft">
<form id="review-form" autocomplete="off">
<label for="findings">Findings</label>
<textarea id="findings" name="findings" rows="12" ${editable ? '' : html`readonly`}>${draft.findings}</textarea>
<label for="impression">Impression</label>
<textarea id="impression" name="impression" rows="5" ${editable ? '' : html`readonly`}>${draft.impression}</textarea>
<div id="outcome" role="alert" aria-live="assertive"></div>
${editable
    ? html`<div class="actions">
<button type="submit" id="sign" class="sign" title="Ctrl+Enter">Sign report <kbd>Ctrl+Enter</kbd></button>
<button type="button" id="reject" class="reject" title="Ctrl+Shift+Backspace">Reject draft…</button>
</div>
<div id="reject-box" hidden>
<label for="reason">Why is this draft rejected?</label>
<textarea id="reason" rows="2"></textarea>
<button type="button" id="confirm-reject" class="reject">Reject</button>
</div>`
    : amendable ? amendControls()
    : html`<p class="message">${!unverified ? `This report is ${status}; it can no longer be changed here.` : 'You can read this draft but not sign it.'}</p>`}
</form>
</section>
</div>
</article>`;
}
