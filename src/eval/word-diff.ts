/** One run of a word diff: words both texts share, words only the draft has, words only the reference has. */
export interface DiffPart {
  op: 'same' | 'draft' | 'reference';
  text: string;
}

const MAX_CELLS = 4_000_000;

/**
 * Word-level diff of a draft against its reference, by longest common subsequence over whitespace-separated words
 * (case kept, so the reader sees the texts as written). Texts too long for the table are shown as two whole parts.
 */
export function wordDiff(draft: string, reference: string): DiffPart[] {
  const a = draft.split(/\s+/).filter(Boolean);
  const b = reference.split(/\s+/).filter(Boolean);
  if ((a.length + 1) * (b.length + 1) > MAX_CELLS) {
    const whole: DiffPart[] = [{ op: 'draft', text: a.join(' ') }, { op: 'reference', text: b.join(' ') }];
    return whole.filter((p) => p.text);
  }
  const width = b.length + 1;
  // lcs[i][j]: LCS length of a[i..] and b[j..], one flat array.
  const lcs = new Uint32Array((a.length + 1) * width);
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i * width + j] = a[i] === b[j] ? lcs[(i + 1) * width + j + 1]! + 1 : Math.max(lcs[(i + 1) * width + j]!, lcs[i * width + j + 1]!);
    }
  }
  const parts: DiffPart[] = [];
  const push = (op: DiffPart['op'], word: string) => {
    const last = parts[parts.length - 1];
    if (last?.op === op) last.text += ` ${word}`;
    else parts.push({ op, text: word });
  };
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      push('same', a[i]!);
      i++;
      j++;
    } else if (lcs[(i + 1) * width + j]! >= lcs[i * width + j + 1]!) {
      push('draft', a[i++]!);
    } else {
      push('reference', b[j++]!);
    }
  }
  while (i < a.length) push('draft', a[i++]!);
  while (j < b.length) push('reference', b[j++]!);
  return parts;
}
