import type { SentenceFlag } from '../report/report.js';
import { claimsOf, draftSentences, mergeClaims, sidesDisagree, type Claim } from './claims.js';
import { deniesAllDevices, devicesOf, type DeviceClaim } from './devices.js';

/**
 * Findings and impression that disagree with each other: on side (a left effusion in the findings, a right one in
 * the impression), on presence (one section asserts what the other denies, or the impression calls the study normal
 * while the findings describe an acute abnormality, or the reverse), or on a device (present in one and denied in
 * the other, placed well in one and wrongly in the other, or on another side). Each is flagged at the impression
 * sentence, quoting the findings sentence it disagrees with.
 */

/** Findings an impression cannot call "normal" or "no acute process" over. */
const ACUTE = new Set(['Pneumothorax', 'Pleural Effusion', 'Consolidation', 'Pneumonia', 'Edema', 'Lung Lesion', 'Fracture']);
const NORMAL_IMPRESSION = /\b(no acute (?:cardiopulmonary|intrathoracic|cardiothoracic|chest|pulmonary|radiographic)? ?(?:process|abnormality|abnormalities|disease|findings?|pathology)|normal (?:chest|study|radiograph|examination|exam|chest radiograph|chest x-ray)|no (?:radiographic )?(?:evidence of )?(?:acute )?(?:cardiopulmonary )?abnormalit(?:y|ies)|unremarkable (?:chest|study|examination|radiograph))\b/i;

interface Read {
  text: string;
  claims: Claim[];
  devices: DeviceClaim[];
}

const read = (text: string): Read[] => draftSentences(text).map((s) => ({ text: s, claims: claimsOf(s), devices: devicesOf(s) }));
const quote = (s: string) => `"${s.length > 100 ? `${s.slice(0, 97)}...` : s}"`;
const name = (key: string) => key.replace(/^other:/, '').toLowerCase();
const a = (noun: string) => `${/^[aeiou]/.test(noun) ? 'an' : 'a'} ${noun}`;

function findingsWith(findings: Read[], test: (c: Claim) => boolean): Read | undefined {
  return findings.find((f) => f.claims.some(test));
}

function presenceAndSide(sentence: Read, findings: Read[]): string[] {
  const why: string[] = [];
  const all = mergeClaims(findings.flatMap((f) => f.claims));
  for (const [key, claim] of mergeClaims(sentence.claims)) {
    if (key === 'Support Devices' || key.startsWith('other:')) continue;
    const f = all.get(key);
    if (!f) continue;
    if (claim.label === 1 && f.label === 0) {
      why.push(`the impression asserts ${name(key)}, which the findings deny (${quote(findingsWith(findings, (c) => c.key === key)!.text)})`);
    } else if (claim.label === 0 && f.label === 1) {
      why.push(`the impression denies ${name(key)}, which the findings assert (${quote(findingsWith(findings, (c) => c.key === key && c.label === 1)!.text)})`);
    } else if (claim.label === 1 && f.label === 1 && sidesDisagree(claim.sides, f.sides)) {
      const other = findingsWith(findings, (c) => c.key === key && c.label === 1 && c.side !== undefined)!;
      why.push(`the impression puts ${name(key)} on the ${[...claim.sides].join(' and ')}, the findings on the ${[...f.sides].join(' and ')} (${quote(other.text)})`);
    }
  }
  return why;
}

function normality(sentence: Read, findings: Read[]): string[] {
  const positive = (c: Claim) => c.label === 1 && c.key !== 'Support Devices';
  if (NORMAL_IMPRESSION.test(sentence.text) && !sentence.claims.some(positive)) {
    const acute = findings.find((f) => f.claims.some((c) => c.label === 1 && ACUTE.has(c.key)));
    if (acute) {
      const what = acute.claims.filter((c) => c.label === 1 && ACUTE.has(c.key)).map((c) => name(c.key));
      return [`the impression calls the study normal, but the findings assert ${[...new Set(what)].join(' and ')} (${quote(acute.text)})`];
    }
  }
  const findingsNormal = findings.length > 0 && findings.every((f) => !f.claims.some(positive)) && findings.some((f) => f.claims.length > 0);
  if (findingsNormal) {
    const mentioned = new Set(findings.flatMap((f) => f.claims.map((c) => c.key)));
    const asserted = sentence.claims.filter((c) => positive(c) && c.observation && !mentioned.has(c.key));
    if (asserted.length) return [`the impression asserts ${[...new Set(asserted.map((c) => name(c.key)))].join(' and ')}, but the findings describe no abnormality`];
  }
  return [];
}

function devices(sentence: Read, findings: Read[]): string[] {
  const why: string[] = [];
  const seen = findings.flatMap((f) => f.devices.map((d) => ({ d, text: f.text })));
  for (const d of sentence.devices) {
    const same = seen.filter((s) => s.d.kind === d.kind);
    const denied = same.find((s) => s.d.label === 0);
    const asserted = same.find((s) => s.d.label === 1);
    if (d.label === 1 && (denied || (!asserted && findings.some((f) => deniesAllDevices(f.text))))) {
      why.push(`the impression names ${a(d.kind)}, which the findings say is not there (${quote(denied?.text ?? findings.find((f) => deniesAllDevices(f.text))!.text)})`);
    } else if (d.label === 0 && asserted) {
      why.push(`the impression says there is no ${d.kind}, but the findings describe one (${quote(asserted.text)})`);
    } else if (d.label === 1 && asserted) {
      const a = asserted.d;
      if (d.position && a.position && d.position !== a.position) {
        why.push(`the impression calls the ${d.kind} ${d.position === 'wrong' ? 'malpositioned' : 'well placed'}, the findings ${a.position === 'wrong' ? 'malpositioned' : 'well placed'} (${quote(asserted.text)})`);
      } else if (d.side && a.side && d.side !== a.side) {
        why.push(`the impression puts the ${d.kind} on the ${d.side}, the findings on the ${a.side} (${quote(asserted.text)})`);
      }
    }
  }
  if (deniesAllDevices(sentence.text)) {
    const named = seen.find((s) => s.d.label === 1);
    if (named) why.push(`the impression says there are no devices, but the findings describe ${a(named.d.kind)} (${quote(named.text)})`);
  }
  return why;
}

export function findContradictions(findingsText: string, impressionText: string): SentenceFlag[] {
  const findings = read(findingsText);
  if (findings.length === 0) return [];
  const flags: SentenceFlag[] = [];
  for (const sentence of read(impressionText)) {
    const why = [...presenceAndSide(sentence, findings), ...normality(sentence, findings), ...devices(sentence, findings)];
    if (why.length) flags.push({ section: 'impression', sentence: sentence.text, kind: 'contradiction', why: [...new Set(why)].join('; ') });
  }
  return flags;
}
