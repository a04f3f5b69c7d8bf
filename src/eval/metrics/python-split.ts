/**
 * Python's `str.split()` without arguments: runs of whitespace as Python defines it (Py_UNICODE_ISSPACE), leading
 * and trailing runs dropped. JavaScript's \s differs: it lacks U+001C–U+001F and U+0085 and has U+FEFF, which
 * Python keeps inside a word. Every one of these is a single UTF-16 unit, so the text is walked unit by unit.
 */
const PY_WHITESPACE = new Set<number>([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680,
  ...Array.from({ length: 0x200b - 0x2000 }, (_, i) => 0x2000 + i),
  0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

export function pythonSplit(text: string): string[] {
  const words: string[] = [];
  let start = -1;
  for (let i = 0; i <= text.length; i++) {
    const space = i === text.length || PY_WHITESPACE.has(text.charCodeAt(i));
    if (space && start >= 0) {
      words.push(text.slice(start, i));
      start = -1;
    } else if (!space && start < 0) {
      start = i;
    }
  }
  return words;
}
