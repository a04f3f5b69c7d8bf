#!/usr/bin/env node
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError, loadConfig, describeConfig, type Config } from './config/load.js';
import { isUid } from './dicom/tags.js';
import { createLogger, type Logger } from './log.js';
import { RenderPool } from './dicom/render-pool.js';
import { SOFTWARE } from './version.js';
import type { EvalInput } from './eval/run-eval.js';
import type { SettingName } from './config/schema.js';

// Each command loads what only it needs when it runs: the service, the evaluation and the demonstration bring in
// the FHIR definitions, the job store and their clients, seconds of CPU that `raddraft render` has no use for.
const serviceModule = () => import('./service.js');

/** Exit codes: 0 done, 1 failed, 3 study not eligible, 78 configuration error (EX_CONFIG). */
export const EXIT = { ok: 0, failed: 1, ineligible: 3, config: 78 } as const;

function configOrExit(file: string | undefined, required?: readonly SettingName[]): Config {
  try {
    return loadConfig(process.env, file, required ? { required } : {});
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(EXIT.config);
    }
    throw err;
  }
}

function guardProcess(log: Logger): void {
  process.on('unhandledRejection', (reason) => log.error({ err: reason }, 'unhandled promise rejection; continuing'));
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught exception; exiting so the supervisor restarts raddraft (jobs resume from the store)');
    process.exit(EXIT.failed);
  });
}

async function serve(opts: { config?: string }): Promise<void> {
  const config = configOrExit(opts.config);
  const log = createLogger({ level: config.logLevel });
  guardProcess(log);
  log.info({ config: describeConfig(config) }, 'starting');
  let service;
  try {
    service = await (await serviceModule()).startService(config, log);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(EXIT.config);
    }
    log.fatal({ err }, 'cannot start');
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'EADDRINUSE' ? `port ${config.port} is already in use; set RADDRAFT_PORT to a free port` : (err as Error).message;
    process.stderr.write(`raddraft cannot start: ${why}\n`);
    process.exit(EXIT.failed);
  }
  const shutdown = (signal: string) => {
    log.info({ signal }, 'shutdown requested');
    void service.stop().then(() => process.exit(EXIT.ok));
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

async function draft(studyUid: string, opts: { config?: string }): Promise<void> {
  const config = configOrExit(opts.config);
  const log = createLogger({ level: config.logLevel, destination: 'stderr' });
  const components = await (await serviceModule()).openComponents(config, log);
  const { store, runner, deliveries } = components;
  try {
    let { job } = await store.observe({ studyUid, source: 'cli', stableAfter: Date.now() });
    if (job.state === 'dead') job = (await store.retry(job.id)) ?? job;
    if (!['drafted', 'posted', 'shadowed', 'ineligible'].includes(job.state)) {
      const done = await runner.processNow(job.id);
      if (!done) {
        process.stderr.write(`study ${studyUid} is being processed by another raddraft worker (job ${job.id}); try again shortly\n`);
        process.exitCode = EXIT.failed;
        return;
      }
      job = done;
    }
    if (job.state === 'drafted') {
      await deliveries.runUntilIdle();
      job = (await store.get(job.id)) ?? job;
      const undelivered = (await store.outbox.deliveriesOfJob(job.id)).filter((d) => d.state !== 'delivered');
      if (job.reportRef) {
        process.stdout.write(`${job.reportRef}\n`);
        process.stderr.write(`unverified AI draft: ${config.fhir.url}/${job.reportRef}\n`);
      }
      for (const d of undelivered) {
        process.stderr.write(`not yet delivered to ${d.output} (${d.state}${d.lastError ? `: ${d.lastError}` : ''}); raddraft serve goes on trying\n`);
      }
      process.exitCode = undelivered.length === 0 ? EXIT.ok : EXIT.failed;
    } else if (job.state === 'posted' && job.reportRef) {
      process.stdout.write(`${job.reportRef}\n`);
      process.stderr.write(`unverified AI draft: ${config.fhir.url}/${job.reportRef}\n`);
      process.exitCode = EXIT.ok;
    } else if (job.state === 'shadowed') {
      process.stderr.write(`study ${studyUid} was drafted in shadow mode (RADDRAFT_MODE=shadow): the draft is kept in the job store (job ${job.id}), nothing was posted\n`);
      process.exitCode = EXIT.ok;
    } else if (job.state === 'ineligible') {
      process.stderr.write(`study ${studyUid} is not eligible: ${job.reason ?? 'no reason recorded'}\n`);
      process.exitCode = EXIT.ineligible;
    } else {
      const next = job.state === 'failed' && job.nextAttemptAt ? `; raddraft serve retries it from ${new Date(job.nextAttemptAt).toISOString()}` : '';
      process.stderr.write(`study ${studyUid} was not drafted (job ${job.id} is ${job.state}): ${job.reason ?? 'no reason recorded'}${next}\n`);
      process.exitCode = EXIT.failed;
    }
  } finally {
    await components.close();
  }
}

async function renderCommand(file: string | undefined, opts: { out?: string; study?: string; config?: string }): Promise<void> {
  if (!file === !opts.study) {
    process.stderr.write('raddraft render: give either a DICOM file (raddraft render FILE.dcm -o OUT.png) or --study <StudyInstanceUID> -o FOLDER\n');
    process.exitCode = EXIT.failed;
    return;
  }
  const out = opts.out ?? (file ? `${path.basename(file).replace(/\.dcm$/i, '')}.png` : `render-${opts.study}`);
  const config = configOrExit(opts.config, opts.study ? ['RADDRAFT_DICOMWEB_URL'] : []);
  // Loaded here, not at the top: every command would otherwise pay for undici and the rest at start-up.
  const { describeRender, renderFile, renderStudy } = await import('./dicom/render-command.js');
  const pool = new RenderPool({ size: 1, limits: { maxPixels: config.images.maxPixels }, memoryLimitMb: config.images.renderMemoryMb });
  try {
    if (file) {
      process.stdout.write(`${describeRender(await renderFile(pool, file, out))}\n`);
      return;
    }
    const [{ DicomWebClient }, { PacsSource }] = await Promise.all([import('./dicom/dicomweb.js'), import('./dicom/study-source.js')]);
    const studies = new PacsSource(new DicomWebClient({ url: config.dicomweb.url, auth: config.dicomweb.auth }));
    const result = await renderStudy(pool, studies, opts.study!, out);
    if (!result.eligible) {
      process.stderr.write(`study ${opts.study} is not eligible: ${result.reason}\n`);
      process.exitCode = EXIT.ineligible;
      return;
    }
    for (const line of result.rendered) process.stdout.write(`${describeRender(line)}\n`);
    for (const s of result.skipped) process.stdout.write(`not sent to the model: instance ${s.sopUid} (${s.reason})\n`);
  } catch (err) {
    process.stderr.write(`raddraft render: ${(err as Error).message}\n`);
    process.exitCode = EXIT.failed;
  } finally {
    await pool.close();
  }
}

function dateOption(value: string): Date {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  const d = m ? new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : undefined;
  if (!d || d.getMonth() !== Number(m![2]) - 1) throw new InvalidArgumentError(`${JSON.stringify(value)} is not a date like 2026-03-01`);
  return d;
}

async function backfillCommand(opts: { since: Date; until?: Date; config?: string }): Promise<void> {
  const config = configOrExit(opts.config);
  const until = opts.until ?? new Date();
  if (until < opts.since) {
    process.stderr.write('--until is before --since; nothing to do\n');
    process.exitCode = EXIT.failed;
    return;
  }
  const log = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel, destination: 'stderr' });
  const store = await (await serviceModule()).openStore(config, log);
  const { DicomWebClient } = await import('./dicom/dicomweb.js');
  const dicomweb = new DicomWebClient({ url: config.dicomweb.url, auth: config.dicomweb.auth });
  const tty = process.stderr.isTTY;
  try {
    const { backfill } = await import('./intake/backfill.js');
    const result = await backfill(dicomweb, store, { since: opts.since, until }, log, (p) => {
      const width = 30;
      const filled = Math.round((p.daysDone / p.days) * width);
      const line = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${p.daysDone}/${p.days} days (${p.day}) · ${p.discovered} queued · ${p.ineligible} not eligible`;
      process.stderr.write(tty ? `\r${line}` : `${line}\n`);
    });
    if (tty) process.stderr.write('\n');
    process.stdout.write(`backfill done: ${result.days} days, ${result.seen} studies seen, ${result.discovered} queued for drafting, ${result.ineligible} not eligible. raddraft serve drafts the queued studies.\n`);
  } catch (err) {
    if (tty) process.stderr.write('\n');
    process.stderr.write(`backfill stopped: ${(err as Error).message}. Run the same command again to resume.\n`);
    process.exitCode = EXIT.failed;
  } finally {
    await store.close();
  }
}

async function doctor(opts: { config?: string }): Promise<void> {
  const config = configOrExit(opts.config);
  const log = createLogger({ level: 'silent' });
  const { formatDoctor, runDoctor } = await import('./doctor.js');
  const checks = await runDoctor(config, log);
  process.stdout.write(`${formatDoctor(config, checks)}\n`);
  process.exitCode = checks.every((c) => c.ok) ? EXIT.ok : EXIT.failed;
}

interface EvalCliOptions {
  set?: string;
  dicom?: string;
  dicomweb?: boolean;
  references?: string;
  production?: boolean;
  pairs?: string;
  since?: Date;
  until?: Date;
  out?: string;
  limit?: number;
  scorerUrl?: string;
  scorerCommand?: string;
  ciderDf?: string;
  models?: string;
  prompts?: string;
  resamples: number;
  seed: number;
  config?: string;
}

function evalInput(opts: EvalCliOptions): EvalInput | string {
  const chosen = [opts.set && '--set', opts.dicom && '--dicom', opts.dicomweb && '--dicomweb', opts.production && '--production', opts.pairs && '--pairs'].filter(Boolean);
  if (chosen.length !== 1) return `choose one input: --set <MedEvalKit test.json or folder>, --dicom <folder> --references <csv|jsonl>, --dicomweb --references <csv|jsonl>, --production --since <date>, or --pairs <file.jsonl>${chosen.length ? ` (given: ${chosen.join(', ')})` : ''}`;
  if (opts.set) return { kind: 'medevalkit', set: opts.set };
  if (opts.pairs) return { kind: 'pairs', file: opts.pairs };
  if ((opts.dicom || opts.dicomweb) && !opts.references) return '--references <file.csv|file.jsonl> is needed with --dicom and --dicomweb (columns study_uid, findings, impression or report)';
  if (opts.dicom) return { kind: 'dicom-folder', folder: opts.dicom, references: opts.references! };
  if (opts.dicomweb) return { kind: 'dicomweb', references: opts.references! };
  if (!opts.since) return '--production needs --since <date>, e.g. --since 2026-03-01';
  const until = opts.until ? new Date(opts.until.getTime() + 86_400_000 - 1) : new Date();
  if (until < opts.since) return '--until is before --since';
  return { kind: 'production', since: opts.since, until };
}

interface EvalRun {
  config: Config;
  log: Logger;
  out: string;
  signal: AbortSignal;
}

/**
 * What every eval run shares: its settings, a logger on standard error, its output folder, and Ctrl-C stopping it
 * where the same command resumes; an unusable input or setting ends it with its message, not a stack trace.
 */
async function runEvalCommand(opts: EvalCliOptions, required: SettingName[], body: (run: EvalRun) => Promise<void>): Promise<void> {
  const config = configOrExit(opts.config, required);
  const log = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel, destination: 'stderr' });
  const out = opts.out ?? `eval-${new Date().toISOString().slice(0, 10)}`;
  const controller = new AbortController();
  const stop = () => controller.abort(new Error('interrupted'));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await body({ config, log, out, signal: controller.signal });
  } catch (err) {
    const { EvalInputError } = await import('./eval/references.js');
    if (!(err instanceof EvalInputError || err instanceof ConfigError)) throw err;
    process.stderr.write(`raddraft eval: ${err.message}\n`);
    process.exitCode = err instanceof ConfigError ? EXIT.config : EXIT.failed;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

/** eval --prompts: the same set drafted with each prompt variant, side by side. */
async function evalPromptsCommand(opts: EvalCliOptions, input: EvalInput): Promise<void> {
  const { parsePromptList, promptsTable, runPromptVariants } = await import('./eval/prompt-variants.js');
  const variants = parsePromptList(opts.prompts ?? '');
  const refused = typeof variants === 'string' ? variants
    : opts.models !== undefined ? '--prompts and --models cannot be combined; compare prompts with one model'
      : input.kind === 'pairs' || input.kind === 'production' ? `--prompts drafts a set with each prompt; it cannot be used with --${input.kind}` : undefined;
  if (refused || typeof variants === 'string') {
    process.stderr.write(`raddraft eval: ${refused}\n`);
    process.exitCode = EXIT.failed;
    return;
  }
  const required: SettingName[] = input.kind === 'dicomweb' ? ['RADDRAFT_LINGSHU_URL', 'RADDRAFT_DICOMWEB_URL'] : ['RADDRAFT_LINGSHU_URL'];
  await runEvalCommand(opts, required, async ({ config, log, out, signal }) => {
    const run = await runPromptVariants(config, log, variants, {
      input, out, resamples: opts.resamples, seed: opts.seed, signal, ...(opts.limit ? { limit: opts.limit } : {}),
    });
    if (run.interrupted) {
      process.stderr.write(`interrupted; the drafts so far are kept under ${out}. Run the same command again to resume.\n`);
      process.exitCode = 130;
      return;
    }
    process.stdout.write(`${promptsTable(run.variants)}\nresults: ${run.file} (each variant's results.json and report.html in its own folder)\n`);
    process.exitCode = run.variants.every((v) => v.scored > 0) ? EXIT.ok : EXIT.failed;
  });
}

async function evalCommand(opts: EvalCliOptions): Promise<void> {
  const input = evalInput(opts);
  if (typeof input === 'string') {
    process.stderr.write(`raddraft eval: ${input}\n`);
    process.exitCode = EXIT.failed;
    return;
  }
  if (opts.prompts !== undefined) return evalPromptsCommand(opts, input);
  const { parseModelList } = await import('./eval/compare-models.js');
  const models = opts.models === undefined ? undefined : parseModelList(opts.models);
  if (typeof models === 'string') {
    process.stderr.write(`raddraft eval: ${models}\n`);
    process.exitCode = EXIT.failed;
    return;
  }
  // Models given with their own endpoints need no default one.
  const lingshu: SettingName[] = models?.every((m) => m.url) ? [] : ['RADDRAFT_LINGSHU_URL'];
  const required: SettingName[] = input.kind === 'pairs' ? [] : input.kind === 'production' ? ['RADDRAFT_FHIR_URL'] : input.kind === 'dicomweb' ? [...lingshu, 'RADDRAFT_DICOMWEB_URL'] : lingshu;
  await runEvalCommand(opts, required, async ({ config, log, out, signal }) => {
    const [{ runEval }, { openStore }] = await Promise.all([import('./eval/run-eval.js'), serviceModule()]);
    const outcome = await runEval(config, log, {
      input, out, resamples: opts.resamples, seed: opts.seed, signal,
      ...(opts.limit ? { limit: opts.limit } : {}),
      ...(opts.scorerUrl ? { scorerUrl: opts.scorerUrl } : {}),
      ...(opts.scorerCommand ? { scorerCommand: opts.scorerCommand } : {}),
      ...(opts.ciderDf ? { ciderDf: opts.ciderDf } : {}),
      ...(models ? { models } : {}),
      openStore: () => openStore(config, log),
    });
    if (outcome.interrupted || !outcome.result) {
      process.stderr.write(`interrupted; the drafts so far are kept in ${outcome.files.drafts}. Run the same command again to resume.\n`);
      process.exitCode = 130;
      return;
    }
    const r = outcome.result;
    const { terminalSummary } = await import('./eval/summary-text.js');
    process.stdout.write(`${terminalSummary(r)}\n`);
    process.stdout.write(`results: ${outcome.files.json}\nreport:  ${outcome.files.html}\n`);
    process.exitCode = r.counts.scored > 0 ? EXIT.ok : EXIT.failed;
  });
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${JSON.stringify(value)} is not a whole number of 1 or more`);
  return n;
}

function uid(value: string): string {
  if (!isUid(value)) throw new InvalidArgumentError('a Study Instance UID is digits and dots, at most 64 characters (e.g. 1.2.840.113619.2.55.3.1234)');
  return value;
}

const program = new Command()
  .name('raddraft')
  .description('Drafts preliminary, AI-labelled chest X-ray reports with Lingshu for radiologist sign-off.')
  .version(SOFTWARE.version);

program.command('serve').description('watch the PACS, draft new chest X-rays and serve the HTTP API until SIGTERM')
  .option('--config <file>', 'JSON file of RADDRAFT_* settings (the environment wins)')
  .action(serve);
program.command('draft').description('draft one study now and print its DiagnosticReport reference')
  .argument('<StudyInstanceUID>', 'the study to draft', uid)
  .option('--config <file>', 'JSON file of RADDRAFT_* settings (the environment wins)')
  .action(draft);
program.command('backfill').description('queue the studies of past days for drafting (resumable)')
  .requiredOption('--since <date>', 'first study date, e.g. 2026-03-01', dateOption)
  .option('--until <date>', 'last study date (default: today)', dateOption)
  .option('--config <file>', 'JSON file of RADDRAFT_* settings (the environment wins)')
  .action(backfillCommand);
program.command('doctor').description('check every configured endpoint and say what to fix')
  .option('--config <file>', 'JSON file of RADDRAFT_* settings (the environment wins)')
  .action(doctor);
program.command('eval').description('draft a labelled set (or take production drafts) and score them: results.json and report.html')
  .option('--set <path>', 'MedEvalKit report set: its test.json, or the folder holding test.json and images/ (IU_XRAY, MIMIC_CXR)')
  .option('--dicom <folder>', 'DICOM studies in a folder (any depth), with --references')
  .option('--dicomweb', 'DICOM studies from RADDRAFT_DICOMWEB_URL, those named in --references')
  .option('--references <file>', 'reference reports: CSV or JSONL with study_uid and findings/impression (or report)')
  .option('--pairs <file>', 'score given texts without a model: JSONL of {"id", "draft", "reference"} (optional "model", "prompt")')
  .option('--production', 'compare drafts with the reports radiologists signed (live drafts, and shadow-mode drafts in the job store)')
  .option('--since <date>', 'with --production: first day, e.g. 2026-03-01', dateOption)
  .option('--until <date>', 'with --production: last day (default: today)', dateOption)
  .option('--out <folder>', 'output folder (default: eval-<today>); drafts.jsonl there makes a run resumable')
  .option('--limit <n>', 'only the first n studies', positiveInt)
  .option('--scorer-url <url>', 'POST each pair {id, hypothesis, reference} here; a JSON object of scores comes back')
  .option('--models <list>', 'draft the set with each model and compare them: name[=url],name[=url] (the first is the baseline)')
  .option('--prompts <list>', 'draft the set with each prompt variant and compare them: medevalkit, clinical-context, prior-report (comma list)')
  .option('--cider-df <file>', 'document frequencies for CIDEr and CIDEr-D (JSON {"ref_len", "df"}), instead of the set\'s own')
  .option('--scorer-command <command>', 'run this command per pair, the pair as JSON on stdin, scores as JSON on stdout')
  .option('--resamples <n>', 'bootstrap resamples for the 95 % intervals', positiveInt, 1000)
  .option('--seed <n>', 'bootstrap seed', positiveInt, 1)
  .option('--config <file>', 'JSON file of RADDRAFT_* settings (the environment wins)')
  .action(evalCommand);
program.command('render').description('write the image exactly as the model receives it, and print its size, window, transfer syntax and milliseconds')
  .argument('[file]', 'a DICOM file')
  .option('-o, --out <path>', 'the PNG to write (for a file; default: its name with .png), or the folder for --study (default: render-<uid>)')
  .option('--study <StudyInstanceUID>', 'fetch the views raddraft would draft this study from (RADDRAFT_DICOMWEB_URL) and render each', uid)
  .option('--config <file>', 'JSON file of RADDRAFT_* settings (the environment wins)')
  .action(renderCommand);
program.command('demo').description('run raddraft against a local Orthanc with sample studies, an in-process FHIR server and the Lingshu stand-in')
  .option('--exit', 'stop after the samples are drafted instead of serving until Ctrl-C')
  .action(async (opts: { exit?: boolean }) => {
    const { runDemo } = await import('./demo/run-demo.js');
    process.exitCode = await runDemo({ exitWhenDone: opts.exit === true });
  });

await program.parseAsync(process.argv);
