import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import type { StudySource } from '../dicom/study-source.js';
import { RenderPool } from '../dicom/render-pool.js';
import type { RenderedImage } from '../dicom/render.js';
import { StagingBuffers } from '../dicom/staging.js';
import { assessStudy } from '../dicom/eligibility.js';
import type { Logger } from '../log.js';
import { reportKey } from '../report/report.js';
import type { ClinicalContext } from '../model/clinical-context.js';
import type { Drafter } from '../model/drafter.js';
import type { PriorReport } from '../model/prior-report.js';
import { Semaphore } from '../util/concurrency.js';
import { PermanentError } from '../util/faults.js';
import type { Job, JobState, JobStore, RenderedRecord } from './job-store.js';
import type { NewReportEvent } from './outbox.js';

export interface PipelineDeps {
  store: JobStore;
  studies: StudySource;
  /** The model seam: Lingshu today, any drafting model behind the same interface. */
  drafter: Drafter;
  dataDir: string;
  renderer?: RenderPool;
  /** shadow: the draft is kept in the job store (state `shadowed`) and no output receives it. */
  mode?: 'live' | 'shadow';
  /** Outputs every draft is delivered to (RADDRAFT_OUTPUTS). */
  outputs: readonly string[];
  /** Told when a draft's deliveries are queued, so the delivery workers look at once. */
  onDrafted?: () => void;
  /** Builds the clinical context for the prompt, when RADDRAFT_PROMPT=clinical-context. */
  clinicalContext?: (job: Job, views: string[]) => Promise<ClinicalContext>;
  /** Finds the patient's latest signed prior report, when RADDRAFT_PROMPT=prior-report; undefined when none. */
  priorReport?: (job: Job) => Promise<PriorReport | undefined>;
}

export { PermanentError };

export function workDir(dataDir: string, jobId: string): string {
  return path.join(dataDir, 'work', jobId);
}

const sha256 = (buf: Buffer) => createHash('sha256').update(buf).digest('hex');

/**
 * Runs one job from its recorded state to the end, recording each state change. Every step can be repeated: files
 * are written under a temporary name and renamed, and publishing is idempotent, so a crash at any point resumes
 * cleanly from the last recorded state.
 */
export class Pipeline {
  /** Rendering is the CPU-heavy step: at most one per core, however many jobs are running, on worker threads. */
  private readonly cpu = new Semaphore(Math.max(1, availableParallelism()));
  private readonly renderer: RenderPool;
  /**
   * The PNGs of a job rendered in this run, for its drafting step straight after. Only a job that leaves this run
   * still `drafting` (the model unreachable, say) has them written to its work directory, where its next run reads
   * them, checked against their recorded hashes; after a crash they are rendered again.
   */
  private readonly justRendered = new Map<string, Buffer[]>();
  /** Two instances per rendering thread may be in memory at once: one rendering, one arriving. */
  private readonly staging: StagingBuffers;

  constructor(private readonly deps: PipelineDeps) {
    this.renderer = deps.renderer ?? new RenderPool();
    this.staging = new StagingBuffers(2 * this.renderer.threads, this.renderer.limitsInForce);
  }

  /** Stops the rendering threads. */
  close(): Promise<void> {
    return this.renderer.close();
  }

  async run(job: Job, owner: string, log: Logger, signal: AbortSignal): Promise<Job> {
    let current = job;
    try {
      while (!signal.aborted) {
        const next = await this.step(current, owner, log, signal);
        if (!next) return current;
        current = next;
      }
      return current;
    } finally {
      const held = this.justRendered.get(job.id);
      this.justRendered.delete(job.id);
      if (held && current.state === 'drafting') await this.keepImages(current, held, log);
    }
  }

  /** Writes a job's rendered PNGs to its work directory for a later run; one that fails to is rendered again then. */
  private async keepImages(job: Job, pngs: Buffer[], log: Logger): Promise<void> {
    const dir = workDir(this.deps.dataDir, job.id);
    try {
      await mkdir(dir, { recursive: true });
      await Promise.all((job.images ?? []).map((img, i) => writeFile(path.join(dir, img.file), pngs[i]!)));
    } catch (err) {
      log.warn({ err }, 'cannot keep the rendered images for the next attempt; they will be rendered again');
    }
  }

  /** Performs the work of the job's current state; returns the job in its next state, or undefined when done. */
  private async step(job: Job, owner: string, log: Logger, signal: AbortSignal): Promise<Job | undefined> {
    const { store } = this.deps;
    const go = (to: JobState, patch = {}, note?: string) => store.transition(job.id, owner, to, patch, note);
    switch (job.state) {
      case 'discovered':
        return this.assess(job, owner, log);
      case 'queued':
        return go('rendering', {}, `fetching and rendering ${job.views?.length ?? 0} instance(s)`);
      case 'fetching':
        // Left by an earlier raddraft, which fetched instances to disk in a step of their own.
        return go('rendering');
      case 'rendering': {
        const { records, pngs } = await this.render(job, log);
        const next = await go('drafting', { images: records }, `${records.length} image(s) rendered`);
        this.justRendered.set(job.id, pngs);
        return next;
      }
      case 'drafting': {
        const held = this.justRendered.get(job.id);
        const images = held && held.length === job.images?.length ? held.map((png) => ({ png })) : await this.loadImages(job);
        if (!images) {
          log.warn('rendered images are missing from the work directory; fetching and rendering again');
          return go('rendering', { images: null }, 'rendered images missing; fetching and rendering again');
        }
        const views = (job.images ?? []).map((i) => i.view);
        const context = this.deps.clinicalContext ? await this.deps.clinicalContext(job, views) : undefined;
        const prior = this.deps.priorReport ? await this.deps.priorReport(job) : undefined;
        const draft = await this.deps.drafter.draft({ images, views, ...(context ? { context } : {}), ...(prior ? { prior } : {}) }, log, signal);
        const record = {
          findings: draft.findings,
          impression: draft.impression,
          text: draft.text,
          model: draft.model,
          promptVersion: draft.promptVersion,
          requestId: draft.requestId,
          draftedAt: new Date().toISOString(),
          flags: draft.flags,
          ...(draft.sentenceFlags.length ? { sentenceFlags: draft.sentenceFlags } : {}),
          ...(draft.urgent ? { urgent: draft.urgent } : {}),
        };
        if (draft.urgent) log.info({ urgent: draft.urgent.findings }, 'the draft asserts a critical finding (unverified AI suspicion); review priority raised');
        const flags = `${draft.flags.length ? `; ${draft.flags.length} flag(s) for the reviewer` : ''}${draft.urgent ? '; urgent (unverified AI suspicion)' : ''}`;
        return this.fanOut({ ...job, draft: record }, owner, log, `drafted by ${draft.model} (prompt ${draft.promptVersion})${flags}`);
      }
      case 'publishing':
        // Left by an earlier raddraft that posted as a job step: its draft goes out through the outbox now.
        if (!job.draft || !job.images?.length) return go('drafting', {}, 'no draft recorded; drafting again');
        return this.fanOut(job, owner, log, 'draft handed to the outbox');
      default:
        return undefined;
    }
  }

  private async assess(job: Job, owner: string, log: Logger): Promise<Job> {
    const metadata = await this.deps.studies.metadata(job.studyUid);
    const verdict = assessStudy(metadata);
    if (!verdict.eligible) {
      log.info({ reason: verdict.reason }, 'study is not eligible');
      return this.deps.store.transition(job.id, owner, 'ineligible', { reason: verdict.reason }, verdict.reason);
    }
    const summary = verdict.views.map((v) => v.view).join(', ');
    const left = verdict.skipped.length ? `; ${verdict.skipped.length} instance(s) left out` : '';
    log.info({
      views: verdict.views.map((v) => ({ sopUid: v.sopUid, view: v.view })),
      skipped: verdict.skipped.map((v) => ({ sopUid: v.sopUid, reason: v.reason })),
    }, 'study queued');
    return this.deps.store.transition(job.id, owner, 'queued', { views: verdict.views, skippedViews: verdict.skipped, reason: null }, `views chosen: ${summary}${left}`);
  }

  /**
   * Fetches and renders each chosen instance. An instance from the PACS is read from the socket straight into a
   * staging buffer the rendering thread reads (never to disk); a pushed instance is rendered from its file. Only
   * the PNGs are kept, for the drafting step.
   */
  private async render(job: Job, log: Logger): Promise<{ records: RenderedRecord[]; pngs: Buffer[] }> {
    const out: RenderedRecord[] = [];
    const pngs: Buffer[] = [];
    for (const view of job.views ?? []) {
      // A RenderError is a permanent fault: the job ends at once with its reason.
      const image = await this.renderView(job, view, log);
      pngs.push(image.png);
      log.debug({ sopUid: view.sopUid, width: image.width, height: image.height, window: image.window }, 'instance rendered');
      out.push({
        sopUid: view.sopUid, seriesUid: view.seriesUid, view: view.view, file: `${view.sopUid}.png`, sha256: image.sha256,
        width: image.width, height: image.height, sourceWidth: image.sourceWidth, sourceHeight: image.sourceHeight,
        window: image.window, photometric: image.photometric, transferSyntaxUid: image.transferSyntaxUid,
      });
    }
    if (out.length === 0) throw new PermanentError('no image was chosen for drafting');
    return { records: out, pngs };
  }

  private async renderView(job: Job, view: { sopUid: string; seriesUid: string }, log: Logger): Promise<RenderedImage> {
    const label = `instance ${view.sopUid}`;
    const staging = await this.staging.acquire();
    try {
      const got = await this.deps.studies.readInstance(job.studyUid, view.seriesUid, view.sopUid, staging);
      if ('file' in got) {
        staging.release();
        return await this.cpu.run(() => this.renderer.render(got.file, label));
      }
      log.debug({ sopUid: view.sopUid, bytes: got.streamed }, 'instance fetched');
      return await this.cpu.run(() => this.renderer.render(staging.shared(), label));
    } finally {
      staging.release();
    }
  }

  /** The rendered PNGs, checked against their recorded hashes; undefined if any is gone or changed. */
  private async loadImages(job: Job): Promise<{ png: Buffer }[] | undefined> {
    const dir = workDir(this.deps.dataDir, job.id);
    const out: { png: Buffer }[] = [];
    for (const img of job.images ?? []) {
      const png = await readFile(path.join(dir, img.file)).catch(() => undefined);
      if (!png || sha256(png) !== img.sha256) return undefined;
      out.push({ png });
    }
    return out.length ? out : undefined;
  }

  /**
   * The end of the pipeline: the draft becomes the report's first event and one delivery per output, recorded with
   * the job's move to `drafted` in one transaction. In shadow mode there are no outputs: the job ends `shadowed`.
   */
  private async fanOut(job: Job, owner: string, log: Logger, note: string): Promise<Job> {
    const { store } = this.deps;
    const draft = job.draft!;
    const images = job.images ?? [];
    if (this.deps.mode === 'shadow') {
      const kept = await store.transition(job.id, owner, 'shadowed', { draft, reason: null }, `shadow mode: ${note}; kept in the job store, nothing delivered`);
      log.info('draft kept (shadow mode); nothing delivered');
      await rm(workDir(this.deps.dataDir, job.id), { recursive: true, force: true });
      return kept;
    }
    const event: NewReportEvent = {
      kind: 'drafted', reportKey: reportKey(job.studyUid, draft.model), studyUid: job.studyUid, jobId: job.id,
      at: new Date().toISOString(), images, draft,
    };
    const outputs = this.deps.outputs;
    const done = await store.transition(job.id, owner, 'drafted', { draft, reason: null }, `${note}; to ${outputs.join(', ') || 'no output'}`, { event, outputs });
    log.info({ outputs }, 'draft recorded; deliveries queued');
    this.deps.onDrafted?.();
    await rm(workDir(this.deps.dataDir, job.id), { recursive: true, force: true });
    return done;
  }
}
