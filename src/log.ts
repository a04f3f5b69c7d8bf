import { pino, type Logger, type LoggerOptions, type DestinationStream } from 'pino';

/**
 * Values that identify a patient and are currently held by some job. Log lines are scrubbed of them by value, as a
 * net under the rule that log calls only ever carry UIDs and job ids: a library error can still quote a URL or a
 * server message that contains a patient identifier.
 */
export class PhiRegistry {
  private readonly counts = new Map<string, number>();

  /** Registers values for the lifetime of a job; returns the function that releases them. */
  hold(values: Iterable<string | undefined>): () => void {
    const held = [...new Set([...values].filter((v): v is string => typeof v === 'string' && v.trim().length >= 3))];
    for (const v of held) this.counts.set(v, (this.counts.get(v) ?? 0) + 1);
    return () => {
      for (const v of held) {
        const n = (this.counts.get(v) ?? 1) - 1;
        if (n <= 0) this.counts.delete(v);
        else this.counts.set(v, n);
      }
    };
  }

  /**
   * Runs `fn` with the values held, and scrubs any error it throws before letting them go: the caller records that
   * error after this returns, when the values would no longer be known.
   */
  async during<T>(values: Iterable<string | undefined>, fn: () => Promise<T>): Promise<T> {
    const release = this.hold(values);
    try {
      return await fn();
    } catch (err) {
      throw this.scrubError(err);
    } finally {
      release();
    }
  }

  /** The error with every held value taken out of its message, stack and causes (changed in place, class kept). */
  scrubError(err: unknown, depth = 0): unknown {
    if (typeof err === 'string') return this.scrub(err);
    if (!(err instanceof Error) || depth > 4) return err;
    err.message = this.scrub(err.message);
    if (err.stack) err.stack = this.scrub(err.stack);
    if (err.cause !== undefined) err.cause = this.scrubError(err.cause, depth + 1);
    return err;
  }

  scrub(text: string): string {
    let out = text;
    for (const v of this.counts.keys()) {
      if (out.includes(v)) out = out.split(v).join('[redacted]');
    }
    return out;
  }

  get size(): number {
    return this.counts.size;
  }
}

export const phi = new PhiRegistry();

/** Field names that must never reach a log line, whatever their value. */
const REDACT_PATHS = [
  'patientName', 'patientId', 'patientBirthDate', 'birthDate', 'accession', 'accessionNumber',
  'PatientName', 'PatientID', 'PatientBirthDate', 'AccessionNumber',
  '*.patientName', '*.patientId', '*.patientBirthDate', '*.birthDate', '*.accession', '*.accessionNumber',
  '*.PatientName', '*.PatientID', '*.PatientBirthDate', '*.AccessionNumber',
  'apiKey', '*.apiKey', 'authorization', '*.authorization', 'headers.authorization', 'req.headers.authorization',
  'req.headers.cookie',
];

function scrubValue(value: unknown, registry: PhiRegistry, depth = 0): unknown {
  if (registry.size === 0 || depth > 6) return value;
  if (typeof value === 'string') return registry.scrub(value);
  if (value instanceof Error) {
    const plain: Record<string, unknown> = { type: value.name, message: registry.scrub(value.message) };
    if (value.stack) plain.stack = registry.scrub(value.stack);
    const code = (value as { code?: unknown }).code;
    if (code !== undefined) plain.code = code;
    return plain;
  }
  if (Array.isArray(value)) return value.map((v) => scrubValue(v, registry, depth + 1));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = scrubValue(v, registry, depth + 1);
    return out;
  }
  return value;
}

export interface LogOptions {
  level?: string;
  /** Where lines go: a stream, 'stderr', or standard output by default. */
  destination?: DestinationStream | 'stderr';
  registry?: PhiRegistry;
}

export function createLogger(options: LogOptions = {}): Logger {
  const registry = options.registry ?? phi;
  const opts: LoggerOptions = {
    name: 'raddraft',
    level: options.level ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: { err: pino.stdSerializers.err },
    hooks: {
      logMethod(args, method) {
        const scrubbed = args.map((a) => scrubValue(a, registry)) as Parameters<typeof method>;
        method.apply(this, scrubbed);
      },
    },
  };
  if (options.destination === 'stderr') return pino(opts, pino.destination({ fd: 2, sync: true }));
  return options.destination ? pino(opts, options.destination) : pino(opts);
}

/** The logger every job step writes to: it carries the study UID and job id, never a patient identifier. */
export function jobLogger(base: Logger, job: { id: string; studyUid: string }): Logger {
  return base.child({ jobId: job.id, studyUid: job.studyUid });
}

export type { Logger };
