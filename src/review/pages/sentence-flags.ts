import type { DraftRecord, SentenceFlag } from '../../report/report.js';
import { html, type Html } from './html.js';
import { URGENT_LABEL } from './worklist.js';

/**
 * The checks' flags where they belong: the draft as the model wrote it, sentence by sentence, each flagged sentence
 * marked with what kind of doubt it raises and why; above it, a critical finding the draft asserts, always called an
 * unverified AI suspicion; below it, the flags that concern no one sentence (a cut-off reply, another language).
 */
const KIND_WORDS: Record<SentenceFlag['kind'], string> = {
  unstable: 'not consistent across samples',
  contradiction: 'contradicts the findings',
  comparison: 'comparison without a prior',
  view: 'view not sent',
  urgent: 'critical finding',
};

const sentencesOf = (text: string) => text.split(/(?<=[.!?])\s+|\n+/).map((s) => s.trim()).filter(Boolean);

function section(label: string, text: string, flags: SentenceFlag[]): Html {
  return html`<p class="flagged-section"><b>${label}:</b> ${sentencesOf(text).map((sentence) => {
    const here = flags.filter((f) => f.sentence === sentence);
    if (!here.length) return html`<span>${sentence}</span> `;
    return html`<mark class="${here.map((f) => `flag-${f.kind}`).join(' ')}" tabindex="0">${sentence}</mark><span class="why">${here.map((f) => html`<span class="flag-kind">${KIND_WORDS[f.kind]}</span> ${f.why}`)}</span> `;
  })}</p>`;
}

export function draftFlags(draft: DraftRecord | undefined): Html | string {
  if (!draft) return '';
  const sentenceFlags = draft.sentenceFlags ?? [];
  // The flags that are also sentence flags are shown at their sentence; the rest as a list.
  const others = (draft.flags ?? []).filter((f) => !sentenceFlags.some((s) => f.includes(`"${s.sentence.slice(0, 60)}`)));
  const urgent = draft.urgent?.findings ?? [];
  return html`${urgent.length ? html`<div class="banner urgent" role="alert">URGENT? — ${URGENT_LABEL}: the draft asserts ${urgent.join(', ')}. Confirm or refute it on the images.</div>` : ''}
${sentenceFlags.length ? html`<section class="sentence-flags" aria-label="Flagged sentences of the AI draft">
<h2>The AI draft as written, with ${sentenceFlags.length} flagged sentence(s)</h2>
${section('Findings', draft.findings, sentenceFlags.filter((f) => f.section === 'findings'))}
${section('Impression', draft.impression, sentenceFlags.filter((f) => f.section === 'impression'))}
</section>` : ''}
${others.length ? html`<ul class="flags" aria-label="Safety flags">${others.map((f) => html`<li>${f}</li>`)}</ul>` : ''}`;
}
