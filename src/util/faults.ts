/**
 * One error model for jobs and deliveries. A fault is `permanent` (no retry will cure it: the job or delivery ends
 * `dead` with the reason), `retry` (try again later; uses an attempt) or `wait` (the peer is down or asked for time:
 * wait until `waitUntil` without using an attempt). Errors say which by a `fault` property; anything else is `retry`.
 */
export type FaultKind = 'permanent' | 'retry' | 'wait';

export interface Fault {
  readonly fault: FaultKind;
  /** Epoch ms, for `wait`; without it the caller picks a short wait. */
  readonly waitUntil?: number | undefined;
}

/** A fault no retry will cure (an undecodable image, a malformed study, a report the receiver refuses). */
export class PermanentError extends Error implements Fault {
  readonly fault = 'permanent';

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PermanentError';
  }
}

/** The peer is down or asked us to wait: no attempt is used. */
export class WaitError extends Error implements Fault {
  readonly fault = 'wait';

  constructor(
    message: string,
    readonly waitUntil: number | undefined,
  ) {
    super(message);
    this.name = 'WaitError';
  }
}

const KINDS: readonly string[] = ['permanent', 'retry', 'wait'];

export function faultOf(err: unknown): { kind: FaultKind; until: number | undefined } {
  const fault = (err as Partial<Fault> | undefined)?.fault;
  if (typeof fault !== 'string' || !KINDS.includes(fault)) return { kind: 'retry', until: undefined };
  const until = (err as Partial<Fault>).waitUntil;
  return { kind: fault, until: typeof until === 'number' ? until : undefined };
}

/** The fault of a peer's HTTP answer: none at all = wait; 429 = wait; 408/5xx = retry; other refusals = permanent. */
export function httpFault(status: number | undefined, retryable: boolean): FaultKind {
  if (status === undefined) return retryable ? 'wait' : 'permanent';
  if (status === 429) return 'wait';
  return retryable ? 'retry' : 'permanent';
}
