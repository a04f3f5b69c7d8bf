import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import type { HttpAuth } from '../config/load.js';
import { authorizationHeader } from '../util/auth-header.js';
import { httpFault, type Fault, type FaultKind } from '../util/faults.js';
import { networkCause } from '../util/network-cause.js';
import type { DicomJson } from './tags.js';

/** A STOW-RS store that did not take the instance; the message names the archive's answer and failure reason. */
export class StowError extends Error implements Fault {
  constructor(
    message: string,
    readonly fault: FaultKind,
    readonly waitUntil?: number,
  ) {
    super(message);
    this.name = 'StowError';
  }
}

const FAILED_SOP_SEQUENCE = '00081198';
const FAILURE_REASON = '00081197';
const MAX_ANSWER_BYTES = 1 << 20;

/** PS3.18 Table 10.5.3-1 / PS3.4 failure reasons an archive gives for an instance it did not store. */
function reasonText(code: number): string {
  const hex = `0x${code.toString(16).toUpperCase().padStart(4, '0')}`;
  const named: Record<number, string> = {
    0xa700: 'out of resources', 0xa900: 'data set does not match SOP class', 0xc000: 'cannot understand',
    0xc122: 'referenced transfer syntax not supported', 0x0110: 'processing failure', 0x0122: 'SOP class not supported',
    0x0124: 'not authorized', 0xa770: 'out of resources: unable to store', 0xc405: 'instance does not belong to the study of the request',
  };
  return `failure reason ${hex}${named[code] ? ` (${named[code]})` : ''}`;
}

/** The failure reasons in a STOW-RS answer (DICOM JSON), if it has any. */
export function failureReasons(answer: unknown): string[] {
  const datasets = Array.isArray(answer) ? answer : [answer];
  const out: string[] = [];
  for (const ds of datasets) {
    const failed = (ds as DicomJson | undefined)?.[FAILED_SOP_SEQUENCE] as { Value?: unknown } | undefined;
    for (const item of Array.isArray(failed?.Value) ? failed.Value : []) {
      const value = ((item as DicomJson | undefined)?.[FAILURE_REASON] as { Value?: unknown[] } | undefined)?.Value?.[0];
      out.push(typeof value === 'number' ? reasonText(value) : 'no failure reason given');
    }
  }
  return out;
}

function retryAfter(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  const seconds = Number(value);
  return value !== undefined && Number.isFinite(seconds) ? Date.now() + Math.min(seconds, 3600) * 1000 : undefined;
}

/**
 * Stores one Part 10 instance in its study by STOW-RS (PS3.18 10.5). 200 stores it; a 409 or a 202 whose answer
 * lists it as failed is a refusal that a later attempt may cure (the archive may be full now), so it is retried and
 * the delivery ends dead with the archive's failure reason; 401/403/400/404/415 no retry cures.
 */
export async function stowInstance(base: string, auth: HttpAuth, studyUid: string, part10: Buffer, options: { timeoutMs: number; signal?: AbortSignal }): Promise<void> {
  const boundary = `raddraft-${randomBytes(12).toString('hex')}`;
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), part10, Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  const where = `STOW-RS to ${base}`;
  const signal = options.signal ? AbortSignal.any([options.signal, AbortSignal.timeout(options.timeoutMs)]) : AbortSignal.timeout(options.timeoutMs);
  let res;
  try {
    res = await request(`${base}/studies/${studyUid}`, {
      method: 'POST', body, signal,
      headers: { 'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`, accept: 'application/dicom+json', ...authorizationHeader(auth) },
    });
  } catch (err) {
    const cause = networkCause(err);
    throw new StowError(`${where}: cannot reach the archive (${cause})`, /timed out|abort/i.test(cause) ? 'retry' : 'wait');
  }
  const text = (await res.body.text().catch(() => '')).slice(0, MAX_ANSWER_BYTES);
  let answer: unknown;
  try {
    answer = text ? JSON.parse(text) : undefined;
  } catch {
    answer = undefined;
  }
  const reasons = failureReasons(answer);
  const status = res.statusCode;
  if (status === 200 && !reasons.length) return;
  if (status === 409 || ((status === 200 || status === 202) && reasons.length)) {
    throw new StowError(`${where}: the archive refused the instance (HTTP ${status}, ${reasons.join('; ') || 'no failure reason given'})`, 'retry');
  }
  const hint = status === 401 || status === 403 ? '; check RADDRAFT_SR_AUTH (or RADDRAFT_DICOMWEB_AUTH when the SR goes to the PACS)' : '';
  const retryable = status === 408 || status === 429 || status >= 500;
  throw new StowError(`${where}: the archive answered HTTP ${status}${hint}`, httpFault(status, retryable), status === 429 || status === 503 ? retryAfter(res.headers['retry-after']) : undefined);
}
