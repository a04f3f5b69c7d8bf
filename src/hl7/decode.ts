import { Hl7Message } from '@medplum/core';
import { ErrorCode, type AckProblem } from './ack.js';

/** The header of a received block, read before its text is decoded: who sent it, its control ID, its charset. */
export interface HeaderPeek {
  /** The MSH alone, parsed: enough to answer with an ACK that names the message's control ID. */
  msh: Hl7Message;
  facility: string;
  controlId: string;
  /** MSH-18 as sent ('' when absent). */
  charset: string;
}

/**
 * The MSH of a block, read as Latin-1 (MSH fields are ASCII in every character set HL7 names), or undefined when
 * the block does not begin with an MSH segment.
 */
export function peekHeader(bytes: Buffer): HeaderPeek | undefined {
  const end = bytes.indexOf(0x0d);
  const line = bytes.subarray(0, end < 0 ? Math.min(bytes.length, 4096) : Math.min(end, 4096)).toString('latin1');
  if (!/^MSH[|][^|]{4}[|]/.test(line)) return undefined;
  let msh: Hl7Message;
  try {
    msh = Hl7Message.parse(line);
  } catch {
    return undefined;
  }
  const header = msh.header;
  return { msh, facility: header.getComponent(4, 1), controlId: header.getField(10)?.toString() ?? '', charset: header.getField(18)?.toString().trim() ?? '' };
}

/** MSH-18 values raddraft decodes, and how. */
const DECODERS: Record<string, string> = { '': 'utf-8', 'UNICODE UTF-8': 'utf-8', ASCII: 'utf-8', '8859/1': 'latin1' };

/** The block's text in the character set MSH-18 names; bytes that are not valid in it are refused with where. */
export function decodeText(bytes: Buffer, charset: string): { text: string } | { ack: 'AE' | 'AR'; problem: AckProblem } {
  const encoding = DECODERS[charset.toUpperCase()];
  if (!encoding) {
    return { ack: 'AR', problem: { code: ErrorCode.tableValue, location: 'MSH^1^18', message: `MSH-18 names a character set raddraft does not read (${charset.replace(/[^A-Za-z0-9 /_-]/g, '').slice(0, 20)}); send UNICODE UTF-8 or 8859/1` } };
  }
  if (encoding === 'latin1') return { text: bytes.toString('latin1') };
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    if (charset.toUpperCase() === 'ASCII' && /\P{ASCII}/u.test(text)) throw new Error('not ASCII');
    return { text };
  } catch {
    const at = firstInvalid(bytes, charset.toUpperCase() === 'ASCII');
    return { ack: 'AE', problem: { code: ErrorCode.dataType, location: segmentAt(bytes, at), message: `the message holds bytes that are not ${charset || 'UTF-8'} (first at byte ${at}); declare its character set in MSH-18` } };
  }
}

/** The offset of the first byte that breaks UTF-8 (or ASCII). */
function firstInvalid(bytes: Buffer, ascii: boolean): number {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for (let i = 0; i < bytes.length; i++) {
    if (ascii && bytes[i]! > 0x7f) return i;
    if (bytes[i]! < 0x80) continue;
    // Try the longest UTF-8 sequence that starts here.
    const ok = [2, 3, 4].some((n) => {
      try {
        decoder.decode(bytes.subarray(i, i + n));
        i += n - 1;
        return true;
      } catch {
        return false;
      }
    });
    if (!ok) return i;
  }
  return bytes.length;
}

/** `SEG^n` of the segment holding byte `at`, for ERR-2. */
function segmentAt(bytes: Buffer, at: number): string {
  const before = bytes.subarray(0, at).toString('latin1').split('\r');
  const name = (before[before.length - 1] ?? '').slice(0, 3);
  const sequence = before.filter((s) => s.startsWith(name)).length;
  return /^[A-Z][A-Z0-9]{2}$/.test(name) ? `${name}^${sequence}` : '';
}

/** Bytes as text: valid UTF-8 sequences decoded, every other byte above 0x7F shown as \xNN. */
function bytesAsText(bytes: Buffer): string {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let out = '';
  for (let i = 0; i < bytes.length;) {
    if (bytes[i]! < 0x80) {
      out += String.fromCharCode(bytes[i++]!);
      continue;
    }
    const n = [2, 3, 4].find((len) => {
      try {
        decoder.decode(bytes.subarray(i, i + len));
        return true;
      } catch {
        return false;
      }
    });
    out += n ? decoder.decode(bytes.subarray(i, i + n)) : `\\x${bytes[i]!.toString(16).padStart(2, '0')}`;
    i += n ?? 1;
  }
  return out;
}

/** Bytes kept for inspection as text: the first `limit` of them, control bytes other than CR, LF, TAB shown as \xNN. */
export function printable(input: Buffer | string, limit = 1 << 20): string {
  const text = typeof input === 'string' ? input.slice(0, limit) : bytesAsText(input.subarray(0, limit));
  return text.replace(/\p{Cc}/gu, (c) => (c === '\r' || c === '\n' || c === '\t' ? c : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}
