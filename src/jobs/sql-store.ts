import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type Selectable, type Transaction, type Updateable } from 'kysely';
import {
  JOB_STATES, LeaseLostError, WORKING_STATES, isJobState, sightingChanges,
  type Job, type JobEvent, type JobPatch, type JobState, type JobStore, type KnownStudy, type ListQuery, type Observation, type QualityRow,
  type ReviewRecord,
} from './job-store.js';
import type { NewReportEvent } from './outbox.js';
import { SqlOutbox } from './outbox-sql.js';
import { SqlRisReports } from './ris-reports.js';
import type { Database, JobsTable } from './schema.js';

export interface SqlStoreOptions {
  dialect: 'sqlite' | 'postgres';
  maxAttempts: number;
  /** Closes the underlying connection(s). */
  onClose: () => Promise<void>;
}

const n = (v: number | null): number | undefined => v ?? undefined;
const json = (v: string | null): unknown => (v === null ? undefined : JSON.parse(v));
const text = (v: unknown): string | null => (v === undefined || v === null ? null : JSON.stringify(v));

/** Why a job whose workers kept stopping is dead; the two parts around the count are shared with the SQL. */
const STOPPED = ['the worker processing it stopped ', ' times in state '] as const;
const stoppedReason = (attempts: number, state: JobState): string => `${STOPPED[0]}${attempts}${STOPPED[1]}${state}`;

function toJob(r: Selectable<JobsTable>): Job {
  if (!isJobState(r.state)) throw new Error(`job ${r.id} has an unknown state ${r.state}`);
  return {
    id: r.id,
    studyUid: r.study_uid,
    state: r.state,
    resumeState: isJobState(r.resume_state) ? r.resume_state : undefined,
    attempts: r.attempts,
    reason: r.reason ?? undefined,
    source: r.source,
    instanceCount: n(r.instance_count),
    stableAfter: r.stable_after,
    nextAttemptAt: n(r.next_attempt_at),
    leaseOwner: r.lease_owner ?? undefined,
    leaseUntil: n(r.lease_until),
    // Written by this store from the same types; read back as they were written.
    views: json(r.views) as Job['views'],
    skippedViews: json(r.skipped_views) as Job['skippedViews'],
    images: json(r.images) as Job['images'],
    draft: json(r.draft) as Job['draft'],
    reportRef: r.report_ref ?? undefined,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** The job store over Kysely: the same queries for SQLite and PostgreSQL, locking only where PostgreSQL needs it. */
export class SqlJobStore implements JobStore {
  readonly outbox: SqlOutbox;
  readonly risReports: SqlRisReports;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly options: SqlStoreOptions,
  ) {
    this.outbox = new SqlOutbox(db, options);
    this.risReports = new SqlRisReports(db);
  }

  private async event(db: Kysely<Database> | Transaction<Database>, jobId: string, from: JobState | undefined, to: JobState, note?: string, at = Date.now()): Promise<void> {
    await db.insertInto('job_events').values({ job_id: jobId, at, from_state: from ?? null, to_state: to, note: note ?? null }).execute();
  }

  async observe(o: Observation): Promise<{ job: Job; created: boolean }> {
    const now = Date.now();
    const id = randomUUID();
    const job = {
      id, study_uid: o.studyUid, state: 'discovered', resume_state: null, attempts: 0, reason: null,
      source: o.source, instance_count: o.instanceCount ?? null, stable_after: o.stableAfter,
      next_attempt_at: null, lease_owner: null, lease_until: null, views: null, skipped_views: null, images: null, draft: null,
      report_ref: null, created_at: now, updated_at: now,
    };
    const note = `seen by ${o.source}`;
    if (this.options.dialect === 'postgres') {
      // The usual sighting, a new study, as one statement: the job and its first event, or nothing for a known study.
      const made = await this.db
        .with('made', (db) => db.insertInto('jobs').values(job).onConflict((oc) => oc.column('study_uid').doNothing()).returningAll())
        .with('logged', (db) => db.insertInto('job_events').columns(['job_id', 'at', 'from_state', 'to_state', 'note'])
          .expression((eb) => eb.selectFrom('made').select((eb) => [
            'made.id', eb.cast<number>(eb.val(now), 'bigint').as('at'), sql<string | null>`null`.as('from_state'), eb.val('discovered').as('to_state'), eb.val(note).as('note'),
          ])))
        .selectFrom('made').selectAll().executeTakeFirst();
      if (made) return { job: toJob(made), created: true };
    }
    return this.db.transaction().execute(async (trx) => {
      const existing = await trx.selectFrom('jobs').selectAll().where('study_uid', '=', o.studyUid).executeTakeFirst();
      if (!existing) {
        await trx.insertInto('jobs').values(job).onConflict((oc) => oc.column('study_uid').doNothing()).execute();
        const row = await trx.selectFrom('jobs').selectAll().where('study_uid', '=', o.studyUid).executeTakeFirstOrThrow();
        const created = row.id === id;
        if (created) await this.event(trx, id, undefined, 'discovered', note, now);
        return { job: toJob(row), created };
      }
      if (sightingChanges({ state: toJob(existing).state, instanceCount: n(existing.instance_count) }, o.instanceCount)) {
        const row = await trx.updateTable('jobs')
          .set({ instance_count: o.instanceCount ?? null, stable_after: o.stableAfter, updated_at: now })
          .where('id', '=', existing.id).returningAll().executeTakeFirstOrThrow();
        return { job: toJob(row), created: false };
      }
      return { job: toJob(existing), created: false };
    });
  }

  async knownStudies(studyUids: readonly string[]): Promise<Map<string, KnownStudy>> {
    const known = new Map<string, KnownStudy>();
    // In slices, within every database's limit on bound parameters.
    for (let i = 0; i < studyUids.length; i += 500) {
      const rows = await this.db.selectFrom('jobs').select(['study_uid', 'state', 'instance_count'])
        .where('study_uid', 'in', studyUids.slice(i, i + 500)).execute();
      for (const row of rows) {
        if (!isJobState(row.state)) throw new Error(`the job of study ${row.study_uid} has an unknown state ${row.state}`);
        known.set(row.study_uid, { state: row.state, instanceCount: n(row.instance_count) });
      }
    }
    return known;
  }

  async recordIneligible(studyUid: string, source: string, reason: string): Promise<{ job: Job; created: boolean }> {
    return this.db.transaction().execute(async (trx) => {
      const existing = await trx.selectFrom('jobs').selectAll().where('study_uid', '=', studyUid).executeTakeFirst();
      if (existing) return { job: toJob(existing), created: false };
      const now = Date.now();
      const id = randomUUID();
      const row = await trx.insertInto('jobs').values({
        id, study_uid: studyUid, state: 'ineligible', resume_state: null, attempts: 0, reason, source,
        instance_count: null, stable_after: now, next_attempt_at: null, lease_owner: null, lease_until: null,
        views: null, skipped_views: null, images: null, draft: null, report_ref: null, created_at: now, updated_at: now,
      }).returningAll().executeTakeFirstOrThrow();
      await this.event(trx, id, undefined, 'ineligible', reason, now);
      return { job: toJob(row), created: true };
    });
  }

  /** The next runnable job (or the one named), first come first served. */
  private runnable(db: Kysely<Database> | Transaction<Database>, now: number, jobId: string | undefined) {
    return db.selectFrom('jobs').selectAll()
      .where((eb) => eb.and([
        eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]),
        jobId !== undefined
          ? eb.and([eb('id', '=', jobId), eb('state', 'in', ['discovered', 'failed', ...WORKING_STATES])])
          : eb.or([
              eb.and([eb('state', '=', 'discovered'), eb('stable_after', '<=', now)]),
              eb('state', 'in', [...WORKING_STATES]),
              eb.and([eb('state', '=', 'failed'), eb('next_attempt_at', '<=', now)]),
            ]),
      ]))
      .orderBy('created_at').orderBy('id').limit(1);
  }

  async claim(owner: string, leaseMs: number, opts: { now?: number; jobId?: string } = {}): Promise<Job | undefined> {
    const now = opts.now ?? Date.now();
    if (this.options.dialect === 'postgres') return this.claimAtOnce(owner, leaseMs, now, opts.jobId);
    return this.db.transaction().execute(async (trx) => {
      const candidate = await this.runnable(trx, now, opts.jobId).executeTakeFirst();
      if (!candidate) return undefined;
      const job = toJob(candidate);
      let state = job.state;
      let attempts = job.attempts;
      let note: string | undefined;
      if (state === 'failed') {
        state = job.resumeState ?? 'queued';
        note = `attempt ${attempts + 1} by ${owner}`;
      } else if (WORKING_STATES.includes(state) && job.leaseOwner) {
        // The previous holder stopped without a word (crash, kill -9): that counts as a failed attempt.
        attempts += 1;
        note = `taken over from ${job.leaseOwner} after its lease expired`;
        if (attempts >= this.options.maxAttempts) {
          const reason = stoppedReason(attempts, state);
          await trx.updateTable('jobs').set({
            state: 'dead', attempts, reason, lease_owner: null, lease_until: null, updated_at: now,
          }).where('id', '=', job.id).execute();
          await this.event(trx, job.id, job.state, 'dead', reason, now);
          return undefined;
        }
      }
      const row = await trx.updateTable('jobs').set({
        state, attempts, lease_owner: owner, lease_until: now + leaseMs, next_attempt_at: null, updated_at: now,
      }).where('id', '=', job.id).returningAll().executeTakeFirstOrThrow();
      if (note) await this.event(trx, job.id, job.state, state, note, now);
      return toJob(row);
    });
  }

  /**
   * The claim above as one PostgreSQL statement, a single round trip for a worker with or without work: the row is
   * locked (rows other claimers hold are passed over), changed by the same rules, and its event written, at once.
   */
  private async claimAtOnce(owner: string, leaseMs: number, now: number, jobId: string | undefined): Promise<Job | undefined> {
    const working = sql.join(WORKING_STATES.map((state) => sql.lit(state)));
    const takenOver = sql`(candidate.state in (${working}) and candidate.lease_owner is not null)`;
    const dies = sql`(${takenOver} and candidate.attempts + 1 >= ${this.options.maxAttempts})`;
    const { rows } = await sql<Selectable<JobsTable> & { prev_state: string }>`
      with candidate as (${this.runnable(this.db, now, jobId).forUpdate().skipLocked()}),
      claimed as (
        update jobs set
          state = case when ${dies} then 'dead' when candidate.state = 'failed' then coalesce(candidate.resume_state, 'queued') else candidate.state end,
          attempts = candidate.attempts + case when ${takenOver} then 1 else 0 end,
          reason = case when ${dies} then ${sql.lit(STOPPED[0])} || (candidate.attempts + 1) || ${sql.lit(STOPPED[1])} || candidate.state else jobs.reason end,
          lease_owner = case when ${dies} then null else cast(${owner} as text) end,
          lease_until = case when ${dies} then null else cast(${now + leaseMs} as bigint) end,
          next_attempt_at = null,
          updated_at = cast(${now} as bigint)
        from candidate where jobs.id = candidate.id
        returning jobs.*, candidate.state as prev_state, candidate.lease_owner as prev_owner
      ),
      logged as (
        insert into job_events (job_id, at, from_state, to_state, note)
        select id, cast(${now} as bigint), prev_state, state, case
          when state = 'dead' then reason
          when prev_state = 'failed' then 'attempt ' || (attempts + 1) || ' by ' || cast(${owner} as text)
          else 'taken over from ' || prev_owner || ' after its lease expired' end
        from claimed where state = 'dead' or prev_state = 'failed' or (prev_state in (${working}) and prev_owner is not null)
      )
      select * from claimed`.execute(this.db);
    const row = rows[0];
    return row && row.state !== 'dead' ? toJob(row) : undefined;
  }

  private async owned(trx: Transaction<Database>, id: string, owner: string): Promise<Job> {
    const row = await trx.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row || row.lease_owner !== owner) throw new LeaseLostError(id);
    return toJob(row);
  }

  async transition(id: string, owner: string, to: JobState, patch: JobPatch = {}, note?: string, event?: { event: NewReportEvent; outputs: readonly string[] }): Promise<Job> {
    const changes = (now: number): Updateable<JobsTable> => ({
      state: to,
      updated_at: now,
      ...(!WORKING_STATES.includes(to) ? { lease_owner: null, lease_until: null, resume_state: null } : {}),
      ...(patch.reason !== undefined ? { reason: patch.reason } : {}),
      ...(patch.views !== undefined ? { views: text(patch.views) } : {}),
      ...(patch.skippedViews !== undefined ? { skipped_views: text(patch.skippedViews) } : {}),
      ...(patch.images !== undefined ? { images: text(patch.images) } : {}),
      ...(patch.draft !== undefined ? { draft: text(patch.draft) } : {}),
      ...(patch.reportRef !== undefined ? { report_ref: patch.reportRef } : {}),
    });
    if (this.options.dialect === 'postgres') {
      if (!event) return this.transitionAtOnce(this.db, id, owner, to, changes, note);
      return this.db.transaction().execute(async (trx) => {
        await this.recordFirstDraft(trx, event);
        // A lease lost meanwhile throws here, and the draft event goes with the transaction.
        return this.transitionAtOnce(trx, id, owner, to, changes, note);
      });
    }
    return this.db.transaction().execute(async (trx) => {
      const job = await this.owned(trx, id, owner);
      if (event) await this.recordFirstDraft(trx, event);
      const now = Date.now();
      const row = await trx.updateTable('jobs').set(changes(now)).where('id', '=', id).returningAll().executeTakeFirstOrThrow();
      if (to !== job.state) await this.event(trx, id, job.state, to, note, now);
      return toJob(row);
    });
  }

  /** A draft recorded before a crash is kept: the first draft of a report is the one every output receives. */
  private async recordFirstDraft(trx: Transaction<Database>, event: { event: NewReportEvent; outputs: readonly string[] }): Promise<void> {
    const first = await trx.selectFrom('report_events').select('id').where('report_key', '=', event.event.reportKey).where('seq', '=', 0).executeTakeFirst();
    if (!first) await this.outbox.recordIn(trx, event.event, event.outputs, -1);
  }

  /**
   * A transition as one PostgreSQL statement, a single round trip instead of five: the held row is locked and read
   * as it was, the event is written from it, and the row is changed, all or nothing (with a draft event, inside the
   * transaction that records it).
   */
  private async transitionAtOnce(
    db: Kysely<Database> | Transaction<Database>, id: string, owner: string, to: JobState, changes: (now: number) => Updateable<JobsTable>, note: string | undefined,
  ): Promise<Job> {
    const at = Date.now();
    const row = await db
      .with('held', (db) => db.selectFrom('jobs').select(['id', 'state']).where('id', '=', id).where('lease_owner', '=', owner).forUpdate())
      .with('logged', (db) => db.insertInto('job_events').columns(['job_id', 'at', 'from_state', 'to_state', 'note'])
        .expression((eb) => eb.selectFrom('held').where('held.state', '<>', to).select((eb) => [
          'held.id', eb.cast<number>(eb.val(at), 'bigint').as('at'), 'held.state', eb.val(to).as('to_state'), eb.val(note ?? null).as('note'),
        ])))
      .updateTable('jobs').from('held').set(changes(at)).whereRef('jobs.id', '=', 'held.id')
      .returningAll('jobs').executeTakeFirst();
    if (!row) throw new LeaseLostError(id);
    return toJob(row);
  }

  async renewLease(id: string, owner: string, leaseMs: number): Promise<void> {
    const res = await this.db.updateTable('jobs').set({ lease_until: Date.now() + leaseMs })
      .where('id', '=', id).where('lease_owner', '=', owner).executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) throw new LeaseLostError(id);
  }

  async fail(id: string, owner: string, reason: string, opts: { retryAt?: number; final?: boolean }): Promise<Job> {
    return this.db.transaction().execute(async (trx) => {
      const job = await this.owned(trx, id, owner);
      const attempts = job.attempts + 1;
      const dead = opts.final === true || attempts >= this.options.maxAttempts || opts.retryAt === undefined;
      const now = Date.now();
      const to: JobState = dead ? 'dead' : 'failed';
      const row = await trx.updateTable('jobs').set({
        state: to,
        resume_state: job.state,
        attempts,
        reason,
        next_attempt_at: dead ? null : opts.retryAt ?? null,
        lease_owner: null,
        lease_until: null,
        updated_at: now,
      }).where('id', '=', id).returningAll().executeTakeFirstOrThrow();
      await this.event(trx, id, job.state, to, `attempt ${attempts}: ${reason}`, now);
      return toJob(row);
    });
  }

  async expireLeases(isGone: (owner: string) => boolean): Promise<number> {
    const now = Date.now();
    const owners = await this.db.selectFrom('jobs').select('lease_owner').distinct()
      .where('lease_owner', 'is not', null).where('lease_until', '>=', now).execute();
    const gone = owners.map((o) => o.lease_owner!).filter(isGone);
    if (gone.length === 0) return 0;
    const res = await this.db.updateTable('jobs').set({ lease_until: 0 }).where('lease_owner', 'in', gone).executeTakeFirst();
    return Number(res.numUpdatedRows);
  }

  async defer(id: string, owner: string, until: number, reason: string): Promise<Job> {
    return this.db.transaction().execute(async (trx) => {
      const job = await this.owned(trx, id, owner);
      const row = await trx.updateTable('jobs').set({ lease_owner: null, lease_until: until, reason, updated_at: Date.now() })
        .where('id', '=', id).returningAll().executeTakeFirstOrThrow();
      if (job.reason !== reason) await this.event(trx, id, job.state, job.state, `waiting: ${reason}`);
      return toJob(row);
    });
  }

  async release(id: string, owner: string): Promise<void> {
    await this.db.updateTable('jobs').set({ lease_owner: null, lease_until: null, updated_at: Date.now() })
      .where('id', '=', id).where('lease_owner', '=', owner).execute();
  }

  async retry(id: string): Promise<Job | undefined> {
    return this.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row || (row.state !== 'failed' && row.state !== 'dead')) return row ? toJob(row) : undefined;
      const now = Date.now();
      const updated = await trx.updateTable('jobs').set({
        state: 'failed', attempts: 0, next_attempt_at: now, updated_at: now,
      }).where('id', '=', id).returningAll().executeTakeFirstOrThrow();
      await this.event(trx, id, row.state, 'failed', 'retry requested', now);
      return toJob(updated);
    });
  }

  async setReportRef(id: string, reportRef: string): Promise<void> {
    await this.db.updateTable('jobs').set({ report_ref: reportRef, updated_at: Date.now() }).where('id', '=', id).execute();
  }

  async get(id: string): Promise<Job | undefined> {
    const row = await this.db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toJob(row) : undefined;
  }

  async findByStudy(studyUid: string): Promise<Job | undefined> {
    const row = await this.db.selectFrom('jobs').selectAll().where('study_uid', '=', studyUid).executeTakeFirst();
    return row ? toJob(row) : undefined;
  }

  async list(q: ListQuery = {}): Promise<Job[]> {
    const rows = await this.db.selectFrom('jobs').selectAll()
      .$if(q.state !== undefined, (b) => b.where('state', '=', q.state!))
      .orderBy('created_at', 'desc').orderBy('id')
      .limit(q.limit ?? 100).offset(q.offset ?? 0)
      .execute();
    return rows.map(toJob);
  }

  async countByState(): Promise<Record<JobState, number>> {
    const rows = await this.db.selectFrom('jobs').select((eb) => ['state', eb.fn.countAll<number | string>().as('count')]).groupBy('state').execute();
    const out = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    for (const r of rows) if (isJobState(r.state)) out[r.state] = Number(r.count);
    return out;
  }

  async events(id: string): Promise<JobEvent[]> {
    const rows = await this.db.selectFrom('job_events').selectAll().where('job_id', '=', id).orderBy('at').execute();
    return rows.map((r) => ({
      at: r.at,
      from: isJobState(r.from_state) ? r.from_state : undefined,
      to: r.to_state as JobState,
      note: r.note ?? undefined,
    }));
  }

  async recordReview(r: ReviewRecord): Promise<void> {
    await this.db.insertInto('reviews').values({
      report_ref: r.reportRef, study_uid: r.studyUid, model: r.model, prompt_version: r.promptVersion, outcome: r.outcome,
      edit_distance: r.editDistance ?? null, draft_chars: r.draftChars, final_chars: r.finalChars ?? null, signer: r.signer, at: r.at,
    }).onConflict((oc) => oc.column('report_ref').doNothing()).execute();
  }

  async qualitySummary(): Promise<QualityRow[]> {
    const rows = await this.db.selectFrom('reviews').select(['model', 'prompt_version', 'outcome', 'edit_distance', 'draft_chars']).execute();
    const groups = new Map<string, { row: QualityRow; distances: number[]; ratios: number[] }>();
    for (const r of rows) {
      const key = `${r.model}\u0000${r.prompt_version}`;
      let g = groups.get(key);
      if (!g) {
        g = { row: { model: r.model, promptVersion: r.prompt_version, signed: 0, signedUnchanged: 0, rejected: 0, meanEditDistance: undefined, meanEditRatio: undefined }, distances: [], ratios: [] };
        groups.set(key, g);
      }
      if (r.outcome === 'rejected') {
        g.row.rejected += 1;
        continue;
      }
      g.row.signed += 1;
      const d = r.edit_distance ?? 0;
      if (d === 0) g.row.signedUnchanged += 1;
      g.distances.push(d);
      g.ratios.push(r.draft_chars > 0 ? d / r.draft_chars : 0);
    }
    const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined);
    return [...groups.values()].map((g) => ({ ...g.row, meanEditDistance: mean(g.distances), meanEditRatio: mean(g.ratios) }));
  }

  async getCheckpoint(name: string): Promise<string | undefined> {
    const row = await this.db.selectFrom('checkpoints').select('value').where('name', '=', name).executeTakeFirst();
    return row?.value;
  }

  async setCheckpoint(name: string, value: string): Promise<void> {
    const now = Date.now();
    await this.db.insertInto('checkpoints').values({ name, value, updated_at: now })
      .onConflict((oc) => oc.column('name').doUpdateSet({ value, updated_at: now })).execute();
  }

  async ping(): Promise<void> {
    await this.db.selectFrom('checkpoints').select('name').limit(1).execute();
  }

  async close(): Promise<void> {
    await this.db.destroy();
    await this.options.onClose();
  }
}
