import type { Logger } from '../log.js';
import { ModelError, ModelUnavailableError, type LingshuClient } from '../model/lingshu.js';
import { sleep } from '../util/concurrency.js';
import { DraftsFile, type DraftLine } from './drafts-file.js';
import { StudyInputError } from './model-images.js';
import { Progress } from './progress.js';
import type { EvalSample } from './sample.js';

export interface DraftRunOptions {
  lingshu: LingshuClient;
  model: string;
  drafts: DraftsFile;
  /** Studies in preparation or at the model at once; the model client's own limit still applies. */
  concurrency: number;
  log: Logger;
  signal?: AbortSignal;
  progress?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Waits for a model endpoint that is down before the study is recorded as failed. */
  unavailableWaits?: number;
}

export interface DraftRunResult {
  lines: Map<string, DraftLine>;
  drafted: number;
  resumed: number;
  failed: number;
  interrupted: boolean;
}

/**
 * Drafts every sample not already drafted by the same model and prompt (drafts.jsonl is the record), with the
 * production prompt and model client. A study that cannot be drafted is recorded with its reason and the run goes
 * on; running again retries only those and the ones never reached.
 */
export async function draftSamples(samples: readonly EvalSample[], options: DraftRunOptions): Promise<DraftRunResult> {
  const { lingshu, drafts, log } = options;
  const promptVersion = lingshu.promptVersion;
  const lines = await drafts.read();
  const done = (id: string) => {
    const l = lines.get(id);
    return l?.ok === true && l.model === options.model && l.promptVersion === promptVersion;
  };
  const todo = samples.filter((s) => !done(s.id));
  const resumed = samples.length - todo.length;
  const progress = new Progress(samples.length, 'drafting', options.progress, resumed);
  let drafted = 0;
  let failed = 0;
  let next = 0;

  const draftOne = async (sample: EvalSample): Promise<DraftLine> => {
    const base = { id: sample.id, model: options.model, promptVersion };
    try {
      const images = await sample.images();
      const views = images.map((i) => i.view);
      for (let wait = 0; ; wait++) {
        try {
          const d = await lingshu.draft({ images, views, ...(sample.prior ? { prior: sample.prior } : {}) }, log, options.signal);
          return { ...base, ok: true, findings: d.findings, impression: d.impression, text: d.text, flags: d.flags, views, draftedAt: new Date().toISOString(), priorGiven: d.priorGiven === true };
        } catch (err) {
          if (!(err instanceof ModelUnavailableError) || wait >= (options.unavailableWaits ?? 3) || options.signal?.aborted) throw err;
          log.warn({ sample: sample.id, until: new Date(err.until).toISOString() }, err.message);
          await sleep(Math.min(60_000, Math.max(1000, err.until - Date.now())), options.signal);
        }
      }
    } catch (err) {
      if (options.signal?.aborted) throw err;
      const known = err instanceof StudyInputError || err instanceof ModelError || err instanceof ModelUnavailableError;
      if (!known) log.error({ err, sample: sample.id }, 'study could not be drafted');
      return { ...base, ok: false, error: (err as Error).message, at: new Date().toISOString() };
    }
  };

  const worker = async () => {
    while (next < todo.length && !options.signal?.aborted) {
      const sample = todo[next++]!;
      let line: DraftLine;
      try {
        line = await draftOne(sample);
      } catch {
        return; // interrupted: the study stays undrafted and is taken up by the next run
      }
      await drafts.append(line);
      lines.set(sample.id, line);
      if (line.ok) drafted++;
      else failed++;
      progress.tick(line.ok);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency, todo.length)) }, worker));
  progress.finish();
  await drafts.close();
  return { lines, drafted, resumed, failed, interrupted: options.signal?.aborted === true };
}
