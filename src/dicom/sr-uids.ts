import { createHash } from 'node:crypto';

/**
 * UIDs raddraft derives instead of drawing at random, so that storing the same report event twice (a retry after
 * a crash or a lost answer) makes the same object at the archive, which keeps one copy. A name-based UUID (the
 * RFC 9562 version 5 layout over SHA-256 rather than SHA-1) written as a `2.25.` decimal UID (PS3.5 B.2).
 */
export function derivedUid(...parts: string[]): string {
  const digest = createHash('sha256').update(`raddraft-uid\u0000${parts.join('\u0000')}`).digest();
  const bytes = Buffer.from(digest.subarray(0, 16));
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  return `2.25.${BigInt(`0x${bytes.toString('hex')}`).toString(10)}`;
}

/** The SR or KOS instance that carries one report event. */
export const documentUid = (eventId: string): string => derivedUid('document', eventId);

/** The series of a report's objects of one kind: the AI draft, the signed versions, the rejection note. */
export type SrSeriesRole = 'draft' | 'signed' | 'rejection';
export const seriesUid = (reportKey: string, role: SrSeriesRole): string => derivedUid('series', reportKey, role);

/** One Device Observer UID per model (name and revision), the same in every report it drafts. */
export const deviceUid = (model: string): string => derivedUid('device', model);
