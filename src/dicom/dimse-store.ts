import dimse from 'dcmjs-dimse';
import type { requests as Requests, responses as Responses } from 'dcmjs-dimse';
import type { Fault, FaultKind } from '../util/faults.js';

const { Client, requests, constants } = dimse;

/** A C-STORE SCP: `dicom://AET@host:port`. */
export interface DimseTarget {
  host: string;
  port: number;
  calledAet: string;
  callingAet: string;
}

/**
 * Why a C-STORE did not store the instance. `wait`: the archive is not listening (nothing was sent, no attempt is
 * used); `retry`: it refused or broke off (a failure status, a rejected association, a timeout), which a later
 * attempt may cure; the delivery ends dead with this message once its attempts are spent.
 */
export class DimseStoreError extends Error implements Fault {
  constructor(
    message: string,
    readonly fault: FaultKind,
  ) {
    super(message);
    this.name = 'DimseStoreError';
  }
}

const hex = (n: number) => `0x${n.toString(16).toUpperCase().padStart(4, '0')}`;

/** PS3.4 Annex B.2.3 and PS3.7 Annex C status meanings, by the status class a C-STORE SCP may answer. */
function statusMeaning(status: number): string {
  if ((status & 0xff00) === 0xa700) return 'refused: out of resources';
  if ((status & 0xff00) === 0xa900) return 'error: data set does not match SOP class';
  if ((status & 0xf000) === 0xc000) return 'error: cannot understand';
  const named: Record<number, string> = {
    0x0110: 'processing failure', 0x0117: 'invalid SOP instance', 0x0122: 'SOP class not supported',
    0x0124: 'not authorized', 0x0210: 'duplicate invocation', 0x0211: 'unrecognized operation', 0x0212: 'mistyped argument',
  };
  return named[status] ?? 'failure';
}

/** Warnings (0x0001, 0xB000, 0xB006, 0xB007, 0x0107, 0x0116) mean the archive stored the instance. */
const stored = (status: number) => status === 0 || status === 0x0001 || status === 0x0107 || status === 0x0116 || (status & 0xf000) === 0xb000;

const REJECT_REASONS: Record<number, string> = {
  [constants.RejectReason.CallingAeNotRecognized]: `calling AE title not recognized`,
  [constants.RejectReason.CalledAeNotRecognized]: `called AE title not recognized`,
  [constants.RejectReason.TemporaryCongestion]: 'temporary congestion',
  [constants.RejectReason.LocalLimitExceeded]: 'local limit exceeded',
};

type Operation = 'C-STORE' | 'C-ECHO';

/**
 * One request in its own association, within `timeoutMs` from connect to release. Resolves with the SCP's answer;
 * throws DimseStoreError when there is none (not listening, association rejected, timed out, closed early).
 */
function exchange(target: DimseTarget, operation: Operation, request: Requests.CStoreRequest | Requests.CEchoRequest, options: { timeoutMs: number; signal?: AbortSignal | undefined }): Promise<{ status: number; comment: string }> {
  const where = `the C-STORE SCP ${target.calledAet} at ${target.host}:${target.port}`;
  return new Promise((resolve, reject) => {
    const client = new Client();
    let answer: { status: number; comment: string } | undefined;
    let failure: DimseStoreError | undefined;
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', stop);
      if (failure) reject(failure);
      else if (!answer) reject(new DimseStoreError(`${where} closed the association without answering the ${operation}`, 'retry'));
      else resolve(answer);
    };
    const stop = () => {
      failure ??= new DimseStoreError(`${where} did not complete the ${operation} within ${Math.round(options.timeoutMs / 1000)} s`, 'retry');
      try {
        client.abort();
      } catch {
        // No association yet: nothing to abort; the connection timeout ends the attempt.
      }
      finish();
    };
    const timer = setTimeout(stop, options.timeoutMs);
    options.signal?.addEventListener('abort', stop, { once: true });
    request.on('response', (response: Responses.CStoreResponse | Responses.CEchoResponse) => {
      answer = { status: response.getStatus(), comment: response.getErrorComment() ?? '' };
    });
    client.on('associationRejected', (r: { result: number; reason: number }) => {
      const reason = REJECT_REASONS[r.reason] ?? `reason ${r.reason}`;
      failure = new DimseStoreError(`${where} rejected the association (${reason}; calling AE title ${target.callingAet})`, 'retry');
    });
    client.on('networkError', (err: Error & { code?: string }) => {
      // The library wraps the socket error in words of its own; the code is what an administrator can look up.
      const code = err.code ?? /\bE[A-Z_]{3,}\b/.exec(err.message)?.[0];
      const down = !!code && /^(ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN)$/.test(code);
      failure ??= new DimseStoreError(`${where} cannot be reached (${code ?? err.message})`, down ? 'wait' : 'retry');
      finish();
    });
    client.on('closed', finish);
    client.addRequest(request);
    const ms = Math.max(1000, options.timeoutMs);
    client.send(target.host, target.port, target.callingAet, target.calledAet, { connectTimeout: ms, associationTimeout: ms, pduTimeout: ms });
  });
}

/**
 * Stores one Part 10 file at a C-STORE SCP in its own association. Resolves once the SCP answered a success or
 * warning status; throws DimseStoreError naming the archive's answer.
 */
export async function cStore(target: DimseTarget, file: string, options: { timeoutMs: number; signal?: AbortSignal }): Promise<string> {
  const answer = await exchange(target, 'C-STORE', new requests.CStoreRequest(file), options);
  if (stored(answer.status)) return `status ${hex(answer.status)}`;
  const where = `the C-STORE SCP ${target.calledAet} at ${target.host}:${target.port}`;
  throw new DimseStoreError(`${where} answered C-STORE status ${hex(answer.status)} (${statusMeaning(answer.status)})${answer.comment ? `: ${answer.comment.slice(0, 200)}` : ''}`, 'retry');
}

/** Asks the SCP for a verification (C-ECHO): it accepts raddraft's association and answers. Stores nothing. */
export async function cEcho(target: DimseTarget, timeoutMs: number): Promise<void> {
  const answer = await exchange(target, 'C-ECHO', new requests.CEchoRequest(), { timeoutMs });
  if (answer.status !== 0) throw new DimseStoreError(`the C-STORE SCP ${target.calledAet} at ${target.host}:${target.port} answered C-ECHO status ${hex(answer.status)}`, 'retry');
}
