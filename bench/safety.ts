/**
 * npm run bench:safety — the draft checks on the labelled synthetic set (fixtures/safety-set.ts): for each check
 * (consistency with 5 samples, contradictions, urgent findings) precision and recall against the planted errors,
 * and the share of clean drafts it flags (false flags). Consistency is scored per sentence, the others per draft.
 * Prints the cases each check gets wrong, so a change to a check can be judged by them.
 */
import { safetySet, type SafetyCase } from '../fixtures/safety-set.js';
import { checkClaims } from '../src/model/draft-checks.js';
import { DEFAULT_URGENT } from '../src/model/urgent.js';

interface Counts {
  tp: number;
  fp: number;
  fn: number;
  cleanFlagged: number;
  clean: number;
  misses: string[];
}

const counts = (): Counts => ({ tp: 0, fp: 0, fn: 0, cleanFlagged: 0, clean: 0, misses: [] });
const checks = { consistency: counts(), contradiction: counts(), urgent: counts() };

function score(c: SafetyCase): void {
  const result = checkClaims(c, { urgent: DEFAULT_URGENT, samples: c.samples });
  const flags = (kind: string) => result.sentenceFlags.filter((f) => f.kind === kind);

  const unstable = flags('unstable');
  const expected = (['findings', 'impression'] as const).flatMap((section) =>
    c.expected.unstable.filter((s) => c[section].includes(s)).map((s) => `${section}:${s}`));
  const got = unstable.map((f) => `${f.section}:${f.sentence}`);
  const k = checks.consistency;
  for (const g of got) {
    if (expected.includes(g)) k.tp += 1;
    else {
      k.fp += 1;
      k.misses.push(`${c.id} flagged ${g}`);
    }
  }
  for (const e of expected) if (!got.includes(e)) {
    k.fn += 1;
    k.misses.push(`${c.id} missed ${e}`);
  }

  const perDraft = (check: Counts, want: boolean, have: boolean, detail: string) => {
    if (want && have) check.tp += 1;
    else if (have) check.fp += 1;
    else if (want) check.fn += 1;
    if (want !== have) check.misses.push(`${c.id} ${have ? 'flagged' : 'missed'}: ${detail}`);
  };
  const contradictions = flags('contradiction');
  perDraft(checks.contradiction, c.expected.contradiction, contradictions.length > 0, contradictions.map((f) => f.why).join(' | ') || `${c.findings} / ${c.impression}`);
  const urgent = result.urgent?.findings ?? [];
  const urgentRight = urgent.length > 0 && c.expected.urgent.every((u) => urgent.includes(u));
  perDraft(checks.urgent, c.expected.urgent.length > 0, urgent.length > 0 && (c.expected.urgent.length === 0 || urgentRight), `${urgent.join(', ') || 'none'} (expected ${c.expected.urgent.join(', ') || 'none'})`);

  if (c.kind === 'clean') {
    for (const [name, check] of Object.entries(checks)) {
      check.clean += 1;
      const kind = name === 'consistency' ? 'unstable' : name;
      if (flags(kind).length) check.cleanFlagged += 1;
    }
  }
}

const set = safetySet();
for (const c of set) score(c);
const pct = (n: number, d: number) => (d ? `${((100 * n) / d).toFixed(1)} %` : 'n/a');
const byKind = Object.entries(set.reduce<Record<string, number>>((m, c) => ({ ...m, [c.kind]: (m[c.kind] ?? 0) + 1 }), {})).map(([k, n]) => `${n} ${k}`).join(', ');
console.log(`labelled set: ${set.length} synthetic drafts (${byKind}), 5 samples each`);
console.log('check          precision  recall     false flags on clean drafts');
for (const [name, k] of Object.entries(checks)) {
  console.log(`${name.padEnd(14)} ${pct(k.tp, k.tp + k.fp).padEnd(10)} ${pct(k.tp, k.tp + k.fn).padEnd(10)} ${k.cleanFlagged}/${k.clean} = ${pct(k.cleanFlagged, k.clean)}   (tp ${k.tp}, fp ${k.fp}, fn ${k.fn}${name === 'consistency' ? ', per sentence' : ', per draft'})`);
}
for (const [name, k] of Object.entries(checks)) for (const m of k.misses) console.log(`  ${name}: ${m}`);
