/**
 * An output named `test` for `raddraft serve` run with `--import test/harness/test-output.ts`: a receiver the
 * outbox tests can make fail, wait, refuse or hang, and whose record says what it holds.
 *
 * Files (named by the environment of the serve process; not RADDRAFT_ names, which raddraft checks as its settings):
 * - TEST_OUTPUT_LOG: the receiver's store, one JSON line per event it holds ({event, kind, seq}). An event
 *   id already there is answered `delivered` again and not stored twice, as a real receiver's idempotency key does.
 * - `<log>.attempts`: every call of `deliver`, with the answer given (`delivered`, `duplicate`, `retry`, `wait`,
 *   `permanent`, `hanging`), so a test can tell "received twice" from "held twice".
 * - TEST_OUTPUT_CONTROL: JSON re-read on every call; see `Control`. A missing file means `deliver`.
 *
 * The import graph of this file is the same module instances `src/cli.ts` loads (tsx resolves both), so the
 * registration is seen by `createOutputs`.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { registerOutput } from '../../src/outputs/registry.js';
import type { DeliveryContext, DeliveryOutcome, ReportOutput } from '../../src/report/output.js';
import type { ReportEvent } from '../../src/report/report.js';

export type Control =
  | { mode: 'deliver' }
  /** Answer `retry` to the first `times` calls for each event, then take it. */
  | { mode: 'retry'; times: number }
  /** Answer `wait` (the receiver is down) for `ms` each time. */
  | { mode: 'wait'; ms: number }
  | { mode: 'permanent'; reason: string }
  /**
   * Hold the call for `ms`; with `received`, the event is stored first and only the answer is late; with `once`,
   * only the first call for each event is held and later ones are taken at once.
   */
  | { mode: 'hang'; ms: number; received?: boolean; once?: boolean };

export interface ReceivedLine {
  event: string;
  kind: ReportEvent['kind'];
  seq: number;
}

export interface AttemptLine extends ReceivedLine {
  answer: 'delivered' | 'duplicate' | 'retry' | 'wait' | 'permanent' | 'hanging';
  pid: number;
}

export const attemptsFile = (log: string): string => `${log}.attempts`;

export function readLines<T>(file: string): T[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);
}

function readControl(file: string | undefined): Control {
  if (!file || !existsSync(file)) return { mode: 'deliver' };
  return JSON.parse(readFileSync(file, 'utf8')) as Control;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

export function testOutput(log: string, control: string | undefined): ReportOutput {
  const line = (e: ReportEvent): ReceivedLine => ({ event: e.id, kind: e.kind, seq: e.seq });
  const attempt = (e: ReportEvent, answer: AttemptLine['answer']) =>
    appendFileSync(attemptsFile(log), `${JSON.stringify({ ...line(e), answer, pid: process.pid })}\n`);
  const holds = (e: ReportEvent) => readLines<ReceivedLine>(log).some((l) => l.event === e.id);
  const receive = (e: ReportEvent): DeliveryOutcome => {
    if (holds(e)) {
      attempt(e, 'duplicate');
    } else {
      appendFileSync(log, `${JSON.stringify(line(e))}\n`);
      attempt(e, 'delivered');
    }
    return { kind: 'delivered', reference: `test/${e.id}` };
  };

  return {
    name: 'test',
    async deliver(event: ReportEvent, context: DeliveryContext): Promise<DeliveryOutcome> {
      const c = readControl(control);
      switch (c.mode) {
        case 'deliver':
          return receive(event);
        case 'retry': {
          const tried = readLines<AttemptLine>(attemptsFile(log)).filter((l) => l.event === event.id && l.answer === 'retry').length;
          if (tried >= c.times) return receive(event);
          attempt(event, 'retry');
          return { kind: 'retry', reason: `test output refused attempt ${tried + 1} of ${c.times}` };
        }
        case 'wait':
          attempt(event, 'wait');
          return { kind: 'wait', until: Date.now() + c.ms, reason: 'test output is down' };
        case 'permanent':
          attempt(event, 'permanent');
          return { kind: 'permanent', reason: c.reason };
        case 'hang': {
          if (c.once && readLines<AttemptLine>(attemptsFile(log)).some((l) => l.event === event.id && l.answer === 'hanging')) return receive(event);
          const stored = c.received ? receive(event) : undefined;
          attempt(event, 'hanging');
          await sleep(c.ms, context.signal);
          if (context.signal.aborted && !stored) return { kind: 'retry', reason: 'test output was told to stop' };
          return stored ?? receive(event);
        }
      }
    },
  };
}

const log = process.env.TEST_OUTPUT_LOG;
if (log) registerOutput('test', () => testOutput(log, process.env.TEST_OUTPUT_CONTROL));
