/**
 * Levenshtein distance in characters between the AI draft and the text the radiologist signed: how much the
 * radiologist had to change. Two rows of memory; a few thousand characters a side is a few milliseconds.
 */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  if (a.length < b.length) [a, b] = [b, a];
  let prev = new Uint32Array(b.length + 1);
  let cur = new Uint32Array(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    const ca = a.charCodeAt(i - 1);
    for (let j = 1; j <= b.length; j++) {
      const cost = ca === b.charCodeAt(j - 1) ? 0 : 1;
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length]!;
}

/** The text compared: both sections, whitespace runs collapsed, so re-wrapping a line is not an edit. */
export function reportText(findings: string, impression: string): string {
  const norm = (s: string) => s.replace(/\s+/g, ' ').trim();
  return `Findings: ${norm(findings)}\nImpression: ${norm(impression)}`;
}
