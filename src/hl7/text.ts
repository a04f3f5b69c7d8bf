/**
 * HL7 v2 text with the default delimiters (`|^~\&`): report text is escaped before it goes into a field, and a
 * received field is unescaped before it is read. The library we parse with keeps escape sequences as they came.
 */

const ESCAPES: Record<string, string> = { F: '|', S: '^', T: '&', R: '~', E: '\\' };

/** Text as one HL7 value: every delimiter escaped, control characters (segment breaks among them) made spaces. */
export function escapeText(text: string): string {
  return text
    .replace(/\\/g, '\\E\\').replace(/\|/g, '\\F\\').replace(/\^/g, '\\S\\').replace(/&/g, '\\T\\').replace(/~/g, '\\R\\')
    .replace(/\p{Cc}/gu, ' ');
}

/** A multi-line text as repetitions of one TX field (one line each), the form receivers show line by line. */
export function textLines(text: string): string {
  return text.split(/\r\n|\r|\n/).map((line) => escapeText(line.trimEnd())).join('~');
}

/**
 * A received value with its escape sequences resolved: delimiters, `.br` (line break) and hexadecimal data
 * (`\Xhh\`, decoded as Latin-1 bytes). Formatting commands (`\H\`, `\N\`, `.sp`, …) carry no text and are dropped.
 */
export function unescapeText(value: string): string {
  return value.replace(/\\([^\\]*)\\/g, (whole, body: string) => {
    if (body.length === 1 && ESCAPES[body] !== undefined) return ESCAPES[body];
    if (body === '.br') return '\n';
    if (/^\.sp\d*$/.test(body)) return '\n';
    if (/^X([0-9A-Fa-f]{2})+$/.test(body)) return Buffer.from(body.slice(1), 'hex').toString('latin1');
    if (/^(H|N|\.in[+-]?\d*|\.ti[+-]?\d*|\.fi|\.nf|\.ce|\.sk\d*)$/.test(body)) return '';
    return whole;
  });
}
