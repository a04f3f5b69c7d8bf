import { Hl7Message, Hl7Segment } from '@medplum/core';
import { escapeText, unescapeText } from './text.js';

export const ACK_CODES = ['AA', 'AE', 'AR', 'CA', 'CE', 'CR'] as const;
export type AckCode = (typeof ACK_CODES)[number];

/** A receiver's acknowledgement as raddraft reads it. */
export interface Ack {
  code: AckCode;
  /** MSA-2: the control ID of the message it answers. */
  controlId: string;
  /** What the receiver said: MSA-3 and each ERR's error code text and user message, joined. */
  text: string;
}

const isAckCode = (v: string): v is AckCode => (ACK_CODES as readonly string[]).includes(v);

/** An ACK read from a reply, or undefined when the reply has no MSA with a known code. */
export function readAck(message: Hl7Message): Ack | undefined {
  const msa = message.getSegment('MSA');
  const code = msa?.getField(1)?.toString().trim().toUpperCase() ?? '';
  if (!msa || !isAckCode(code)) return undefined;
  const texts = [unescapeText(msa.getField(3)?.toString() ?? '')];
  for (const err of message.getAllSegments('ERR')) {
    texts.push(unescapeText(err.getComponent(3, 2)), unescapeText(err.getComponent(8, 1)));
  }
  const text = [...new Set(texts.map((t) => t.trim()).filter(Boolean))].join('; ');
  return { code, controlId: msa.getField(2)?.toString() ?? '', text };
}

/** HL7 table 0357 error codes raddraft answers with. */
export const ErrorCode = {
  segmentSequence: '100^Segment sequence error^HL70357',
  requiredField: '101^Required field missing^HL70357',
  dataType: '102^Data type error^HL70357',
  tableValue: '103^Table value not found^HL70357',
  unsupportedMessageType: '200^Unsupported message type^HL70357',
  unsupportedEvent: '201^Unsupported event code^HL70357',
  unsupportedProcessingId: '202^Unsupported processing id^HL70357',
  unsupportedVersion: '203^Unsupported version id^HL70357',
  unknownKey: '204^Unknown key identifier^HL70357',
  applicationError: '207^Application internal error^HL70357',
} as const;
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface AckProblem {
  /** ERR-3, from table 0357. */
  code: ErrorCodeValue;
  /** ERR-2: where, as `SEG^sequence^field` (e.g. `OBR^1^3`), when one place is at fault. */
  location?: string;
  /** ERR-8: what is wrong, in words for the sender's administrator (no patient data). */
  message: string;
}

/** A reason as one HL7 value (escaped, one line, bounded). */
const plain = (text: string, max = 200) => escapeText(text.replace(/\s+/g, ' ').slice(0, max));

/**
 * The ACK for a received message: MSA-1 the code, MSA-2 its control ID, MSA-3 the reason in short, and with a
 * problem an ERR segment (ERR-2 location, ERR-3 code, ERR-4 severity E, ERR-8 the reason).
 */
export function ackFor(received: Hl7Message | undefined, code: 'AA' | 'AE' | 'AR', problem?: AckProblem, now = new Date()): Hl7Message {
  const err = problem
    ? new Hl7Segment(['ERR', '', problem.location ?? '', problem.code, 'E', '', '', '', plain(problem.message)])
    : undefined;
  if (received) {
    const ack = received.buildAck({ ackCode: code, ...(err ? { errSegment: err } : {}) });
    const control = received.header.getField(10)?.toString() ?? '';
    ack.setSegment('MSA', Hl7Segment.parse(`MSA|${code}|${control}${problem ? `|${plain(problem.message, 80)}` : ''}`));
    return ack;
  }
  // A frame that is not an HL7 message has no header to answer from: an ACK with an empty MSA-2 says so.
  const stamp = now.toISOString().replace(/\D/g, '').slice(0, 14);
  const header = `MSH|^~\\&|RADDRAFT|RADDRAFT|||${stamp}||ACK|${stamp}${Math.floor(Math.random() * 1e6)}|P|2.5.1`;
  const lines = [header, `MSA|${code}||${problem ? plain(problem.message, 80) : ''}`];
  if (err) lines.push(err.toString());
  return Hl7Message.parse(lines.join('\r'));
}
