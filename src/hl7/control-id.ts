import { createHash } from 'node:crypto';

/**
 * The message control ID (MSH-10) of a report event: derived from the event's id, so a message sent again after a
 * crash or a lost ACK carries the same ID and the receiver can recognise it. v2.5.1 allows 20 characters; 18
 * base-32 characters of a SHA-256 are 90 bits, far from any collision among one site's reports.
 */
export function controlIdOf(eventId: string): string {
  const digest = createHash('sha256').update(eventId).digest();
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of digest) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < 18) {
      out += alphabet.charAt((value >>> (bits - 5)) & 31);
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  return `RD${out}`;
}
