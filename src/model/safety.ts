import type { SentenceFlag } from '../report/report.js';
import { draftSentences } from './claims.js';
import { checkLanguage } from './language.js';

/**
 * Checks every draft for the ways report models are known to go wrong, so the radiologist sees them flagged:
 *  - comparison with a prior exam when none was given (models trained on MIMIC-CXR often write "unchanged",
 *    "interval", "again seen"),
 *  - view words that contradict the images sent (a "lateral view" when no lateral was sent),
 *  - empty or cut-off sections,
 *  - text in another language than the site's.
 * In `strip` mode, sentences with a prior reference or a contradicting view are removed (and flagged as removed).
 */
export type SafetyMode = 'flag' | 'strip';

export interface SafetyInput {
  findings: string;
  impression: string;
  missing: ('findings' | 'impression')[];
  finishReason: string | undefined;
  /** Views of the images sent: PA, AP, LATERAL or UNKNOWN. */
  views: string[];
  language: string;
  priorGiven: boolean;
}

export interface SafetyResult {
  findings: string;
  impression: string;
  flags: string[];
  /** In `flag` mode, each flagged sentence with why (stripped sentences are gone, so they are only in `flags`). */
  sentenceFlags: SentenceFlag[];
}

const PRIOR = /\b(compared (?:to|with)|in comparison|comparison (?:is made|with|to)|prior (?:study|studies|exam|examination|radiograph|film|image|imaging|chest)|previous (?:study|exam|examination|radiograph|film|image|chest)|unchanged|interval(?:ly)?|again (?:seen|noted|demonstrated|visualized)|redemonstrat\w*|no (?:significant |appreciable |substantial )?change|as before|since the (?:prior|previous|last)|stable|persistent|persists)\b/i;

interface Rule {
  re: RegExp;
  why: string;
  kind: 'comparison' | 'view';
}

/** Whether a text refers to a prior or comparison exam ("unchanged", "compared with", "interval"…). */
export function mentionsComparison(text: string): boolean {
  return PRIOR.test(text);
}

function viewRules(views: string[]): Rule[] {
  const has = (v: string) => views.includes(v);
  const rules: Omit<Rule, 'kind'>[] = [];
  if (!has('LATERAL')) rules.push({ re: /\b(lateral (?:view|projection|radiograph|image|film)s?|on the lateral|PA and lateral|frontal and lateral)\b/i, why: 'mentions a lateral view, but no lateral image was sent' });
  if (!has('PA') && has('AP')) rules.push({ re: /\b(PA (?:view|projection|radiograph|film|and)|posteroanterior|postero-anterior)\b/i, why: 'mentions a PA view, but only AP images were sent' });
  if (!has('AP') && has('PA')) rules.push({ re: /\b(AP (?:view|projection|radiograph|film)|anteroposterior|antero-posterior|portable|supine)\b/i, why: 'mentions an AP or portable view, but the images sent are PA' });
  rules.push({ re: /\b(decubitus)\b/i, why: 'mentions a decubitus view, which raddraft never sends' });
  return rules.map((r) => ({ ...r, kind: 'view' as const }));
}

const quote = (s: string) => `"${s.length > 120 ? `${s.slice(0, 117)}...` : s}"`;

export function checkDraft(input: SafetyInput, mode: SafetyMode): SafetyResult {
  const flags: string[] = [];
  const sentenceFlags: SentenceFlag[] = [];
  const rules: Rule[] = [
    ...(input.priorGiven ? [] : [{ re: PRIOR, why: 'refers to a prior or comparison exam, but none was given', kind: 'comparison' as const }]),
    ...viewRules(input.views),
  ];
  const review = (section: string, label: 'findings' | 'impression'): string => {
    const kept: string[] = [];
    for (const sentence of draftSentences(section)) {
      const hit = rules.find((r) => r.re.test(sentence));
      if (!hit) {
        kept.push(sentence);
        continue;
      }
      if (mode === 'strip') flags.push(`removed from ${label}: ${quote(sentence)} (${hit.why})`);
      else {
        flags.push(`${label} ${hit.why}: ${quote(sentence)}`);
        sentenceFlags.push({ section: label, sentence, kind: hit.kind, why: hit.why });
        kept.push(sentence);
      }
    }
    return mode === 'strip' ? kept.join(section.includes('\n') ? '\n' : ' ') : section;
  };
  let findings = review(input.findings, 'findings');
  let impression = review(input.impression, 'impression');
  if (mode === 'strip' && input.impression && !impression) {
    impression = input.impression;
    flags.push('impression kept despite the flags above: removing them would leave it empty');
  }
  if (mode === 'strip' && input.findings && !findings) {
    findings = input.findings;
    flags.push('findings kept despite the flags above: removing them would leave them empty');
  }
  for (const m of input.missing) flags.push(`no ${m} in the model's reply`);
  if (input.finishReason === 'length') flags.push('the reply was cut off at the token limit');
  else {
    const last = (impression || findings).trim();
    if (last && !/[.!?)\]"”。！？]$/.test(last)) flags.push('the reply may be cut off: its last sentence has no end');
  }
  const language = checkLanguage(`${findings}\n${impression}`, input.language);
  if (!language.ok) flags.push(`the draft is not in the expected language (${input.language}): ${language.detail ?? 'other language'}`);
  return { findings, impression, flags, sentenceFlags };
}
