/**
 * Python's `str.split()` without arguments: runs of whitespace as Python defines it (Py_UNICODE_ISSPACE), leading
 * and trailing runs dropped. JavaScript's \s differs: it lacks U+001C–U+001F and U+0085 and has U+FEFF, which
 * Python keeps inside a word.
 */
// eslint-disable-next-line no-control-regex -- the information separators U+001C–U+001F are whitespace to Python
const PY_WHITESPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

export function pythonSplit(text: string): string[] {
  return text.split(PY_WHITESPACE).filter((w) => w !== '');
}
