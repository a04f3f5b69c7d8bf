/**
 * Is this report written in the expected language? A small, explainable check rather than a general language
 * identifier: reports are short and technical, so script and function words decide. Lingshu answers in Chinese as
 * readily as in English, which is the case this mostly catches.
 */
const FUNCTION_WORDS: Record<string, string[]> = {
  en: ['the', 'of', 'and', 'is', 'are', 'no', 'with', 'without', 'in', 'there', 'or', 'to', 'a', 'not', 'seen', 'normal'],
  de: ['der', 'die', 'das', 'und', 'ist', 'keine', 'kein', 'mit', 'ohne', 'im', 'nicht', 'unauffällig', 'links', 'rechts'],
  fr: ['le', 'la', 'les', 'et', 'est', 'pas', 'de', 'des', 'avec', 'sans', 'du', 'une', 'normal', 'normale'],
  es: ['el', 'la', 'los', 'las', 'y', 'es', 'no', 'con', 'sin', 'de', 'del', 'una', 'se', 'normal'],
  nl: ['de', 'het', 'en', 'is', 'geen', 'met', 'zonder', 'van', 'een', 'niet', 'normaal'],
};

const SCRIPTS: [string, RegExp][] = [
  ['Chinese/Japanese', /[\u3040-\u30ff\u3400-\u9fff]/gu],
  ['Korean', /[\uac00-\ud7af]/gu],
  ['Cyrillic', /[\u0400-\u04ff]/gu],
  ['Arabic', /[\u0600-\u06ff]/gu],
];

export interface LanguageVerdict {
  ok: boolean;
  detail?: string;
}

export function checkLanguage(text: string, expected: string): LanguageVerdict {
  const letters = (text.match(/\p{L}/gu) ?? []).length;
  if (letters < 20) return { ok: true };
  for (const [script, re] of SCRIPTS) {
    const n = (text.match(re) ?? []).length;
    if (n / letters > 0.05) return { ok: false, detail: `${script} script` };
  }
  const words = text.toLowerCase().match(/\p{L}+/gu) ?? [];
  if (words.length < 8 || !FUNCTION_WORDS[expected]) return { ok: true };
  const score = (lang: string) => words.filter((w) => FUNCTION_WORDS[lang]!.includes(w)).length;
  const mine = score(expected);
  const best = Object.keys(FUNCTION_WORDS).filter((l) => l !== expected).map((l) => [l, score(l)] as const).sort((a, b) => b[1] - a[1])[0]!;
  if (best[1] >= 3 && best[1] > 2 * mine) return { ok: false, detail: `looks like "${best[0]}"` };
  return { ok: true };
}
