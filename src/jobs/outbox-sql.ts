import { sql, type ExpressionBuilder, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { DeliveryOutcome } from '../report/output.js';
import { eventId, isReportEventKind, type ReportEvent } from '../report/report.js';
import {
  StaleEventError, isDeliveryState,
  type Delivery, type DeliveryState, type NewReportEvent, type Outbox, type RecordOptions,
} from './outbox.js';
import type { Database, DeliveriesTable, ReportEventsTable } from './schema.js';

const n = (v: number | null): number | undefined => v ?? undefined;

function toDelivery(r: Selectable<DeliveriesTable>): Delivery {
  if (!isDeliveryState(r.state)) throw new Error(`delivery ${r.id} has an unknown state ${r.state}`);
  if (!isReportEventKind(r.kind)) throw new Error(`delivery ${r.id} has an unknown event kind ${r.kind}`);
  return {
    id: r.id, eventId: r.event_id, reportKey: r.report_key, seq: r.seq, kind: r.kind, jobId: r.job_id, output: r.output,
    state: r.state, attempts: r.attempts, nextAttemptAt: n(r.next_attempt_at), leaseOwner: r.lease_owner ?? undefined,
    leaseUntil: n(r.lease_until), reference: r.reference ?? undefined, lastError: r.last_error ?? undefined, note: r.note ?? undefined,
    createdAt: r.created_at, updatedAt: r.updated_at,
  };
}

// Written by this store from the same type; read back as it was written.
const toEvent = (r: Selectable<ReportEventsTable>): ReportEvent => JSON.parse(r.body) as ReportEvent;

export const deliveryId = (event: string, output: string): string => `${event}>${output}`;

function stale(latest: Selectable<ReportEventsTable>): StaleEventError {
  return new StaleEventError(`the report has a newer event (${latest.kind}, number ${latest.seq}) than the one this change was based on`, toEvent(latest));
}

/** Other deliveries of the same report to the same output, earlier in its order, that are not done with. */
function earlierUndone(eb: ExpressionBuilder<Database & { d: DeliveriesTable }, 'd'>) {
  return eb.exists(
    eb.selectFrom('deliveries as e').select('e.id')
      .whereRef('e.report_key', '=', 'd.report_key').whereRef('e.output', '=', 'd.output').whereRef('e.seq', '<', 'd.seq')
      .where('e.state', 'not in', ['delivered', 'cancelled']),
  );
}

/** The outbox over Kysely, in the job store's database: the same queries for SQLite and PostgreSQL. */
export class SqlOutbox implements Outbox {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly options: { dialect: 'sqlite' | 'postgres'; maxAttempts: number },
  ) {}

  async record(input: NewReportEvent, outputs: readonly string[], after: number, options: RecordOptions = {}): Promise<{ event: ReportEvent; deliveries: Delivery[] }> {
    return this.db.transaction().execute((trx) => this.recordIn(trx, input, outputs, after, options));
  }

  /** The same, inside a transaction the caller holds (the job's move to `drafted` and its draft event are one). */
  async recordIn(trx: Transaction<Database>, input: NewReportEvent, outputs: readonly string[], after: number, options: RecordOptions = {}): Promise<{ event: ReportEvent; deliveries: Delivery[] }> {
    const latest = await trx.selectFrom('report_events').selectAll().where('report_key', '=', input.reportKey)
      .orderBy('seq', 'desc').limit(1)
      .$if(this.options.dialect === 'postgres', (q) => q.forUpdate())
      .executeTakeFirst();
    const latestSeq = latest ? latest.seq : -1;
    if (latest && latestSeq !== after) throw stale(latest);
    const seq = latestSeq + 1;
    const event: ReportEvent = { ...input, seq, id: eventId(input.reportKey, seq) };
    const at = Date.now();
    // The lock above holds nothing when the report has no event yet, and on PostgreSQL a writer that waited for it
    // still reads the event it waited on: another writer may have taken this number meanwhile.
    const inserted = await trx.insertInto('report_events').values({
      id: event.id, report_key: event.reportKey, seq, kind: event.kind, study_uid: event.studyUid, job_id: event.jobId,
      at, body: JSON.stringify(event),
    }).onConflict((oc) => oc.doNothing()).returning('id').executeTakeFirst();
    if (!inserted) {
      const taken = await trx.selectFrom('report_events').selectAll().where('report_key', '=', input.reportKey)
        .orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow();
      throw stale(taken);
    }
    const rows = outputs.map((output) => {
      const claimed = options.claimFor?.output === output ? options.claimFor : undefined;
      return {
        id: deliveryId(event.id, output), event_id: event.id, report_key: event.reportKey, seq, kind: event.kind,
        job_id: event.jobId, output, state: 'pending', attempts: 0,
        next_attempt_at: claimed ? null : options.holdUntil ?? null,
        lease_owner: claimed?.owner ?? null, lease_until: claimed ? at + claimed.leaseMs : null,
        reference: null, last_error: null, note: null, created_at: at, updated_at: at,
      };
    });
    if (rows.length) await trx.insertInto('deliveries').values(rows).execute();
    return { event, deliveries: rows.map((r) => toDelivery(r)) };
  }

  async events(reportKey: string): Promise<ReportEvent[]> {
    const rows = await this.db.selectFrom('report_events').selectAll().where('report_key', '=', reportKey).orderBy('seq').execute();
    return rows.map(toEvent);
  }

  async eventsOfJob(jobId: string): Promise<ReportEvent[]> {
    const rows = await this.db.selectFrom('report_events').selectAll().where('job_id', '=', jobId).orderBy('report_key').orderBy('seq').execute();
    return rows.map(toEvent);
  }

  async reportKeyByReference(output: string, reference: string): Promise<string | undefined> {
    // Receivers version their references (`DiagnosticReport/7/_history/2`); callers often know the resource only.
    // A prefix by substr (which counts characters), not LIKE: SQLite's LIKE ignores case, and ids may hold `_` and `%`.
    const versioned = `${reference}/_history/`;
    const row = await this.db.selectFrom('deliveries').select('report_key')
      .where('output', '=', output)
      .where((eb) => eb.or([
        eb('reference', '=', reference),
        eb(sql<string>`substr(reference, 1, length(cast(${versioned} as text)))`, '=', versioned),
      ]))
      .limit(1).executeTakeFirst();
    return row?.report_key;
  }

  async claim(owner: string, leaseMs: number, now = Date.now(), except: readonly string[] = []): Promise<Delivery | undefined> {
    // One statement, so a claim is one round trip (an idle worker's too); on PostgreSQL the chosen row is locked and
    // rows other claimers hold are passed over, on SQLite the statement is atomic.
    const row = await this.db.updateTable('deliveries').set({ lease_owner: owner, lease_until: now + leaseMs, updated_at: now })
      .where('id', '=', (eb) => eb.selectFrom('deliveries as d').select('d.id')
        .where('d.state', '=', 'pending')
        .where((eb) => eb.or([eb('d.lease_until', 'is', null), eb('d.lease_until', '<', now)]))
        .where((eb) => eb.or([eb('d.next_attempt_at', 'is', null), eb('d.next_attempt_at', '<=', now)]))
        .where((eb) => eb.not(earlierUndone(eb)))
        .$if(except.length > 0, (q) => q.where('d.output', 'not in', except))
        .orderBy('d.created_at').orderBy('d.id').limit(1)
        .$if(this.options.dialect === 'postgres', (q) => q.forUpdate().skipLocked()))
      .returningAll().executeTakeFirst();
    return row ? toDelivery(row) : undefined;
  }

  async claimById(id: string, owner: string, leaseMs: number): Promise<Delivery | undefined> {
    const now = Date.now();
    const row = await this.db.updateTable('deliveries as d').set({ lease_owner: owner, lease_until: now + leaseMs, updated_at: now })
      .where('d.id', '=', id).where('d.state', '=', 'pending')
      .where((eb) => eb.or([eb('d.lease_until', 'is', null), eb('d.lease_until', '<', now), eb('d.lease_owner', '=', owner)]))
      .where((eb) => eb.not(earlierUndone(eb)))
      .returningAll().executeTakeFirst();
    return row ? toDelivery(row) : undefined;
  }

  async finish(id: string, owner: string, outcome: DeliveryOutcome, retryAt: number): Promise<Delivery> {
    // One conditional update: only the lease holder of a pending delivery records its outcome, and a worker that
    // took over an expired lease meanwhile makes it match nothing (on PostgreSQL the condition is checked again on
    // the row as that worker left it).
    const now = Date.now();
    const row = await this.db.updateTable('deliveries')
      .set((eb) => {
        const used = eb('attempts', '+', 1);
        const free = { lease_owner: null, lease_until: null, updated_at: now };
        switch (outcome.kind) {
          case 'delivered':
            return { ...free, state: 'delivered', reference: outcome.reference, note: outcome.note ?? null, last_error: null, next_attempt_at: null, attempts: used };
          case 'wait':
            return { ...free, last_error: outcome.reason, next_attempt_at: outcome.until };
          case 'permanent':
            return { ...free, state: 'dead', last_error: outcome.reason, next_attempt_at: null, attempts: used };
          case 'retry': {
            const spent = eb('attempts', '>=', this.options.maxAttempts - 1);
            return {
              ...free, attempts: used, last_error: outcome.reason,
              state: eb.case().when(spent).then('dead').else('pending').end(),
              // Typed, or PostgreSQL takes a CASE of parameters for text.
              next_attempt_at: eb.case().when(spent).then(sql<number | null>`null`).else(eb.cast<number>(eb.val(retryAt), 'bigint')).end(),
            };
          }
        }
      })
      .where('id', '=', id).where('lease_owner', '=', owner).where('state', '=', 'pending')
      .returningAll().executeTakeFirst();
    if (row) return toDelivery(row);
    const current = await this.delivery(id);
    // Withdrawn while it was being delivered.
    if (!current) throw new Error(`delivery ${id} is not in the outbox`);
    return current;
  }

  async releaseDelivery(id: string, owner: string): Promise<void> {
    await this.db.updateTable('deliveries').set({ lease_owner: null, lease_until: null, updated_at: Date.now() })
      .where('id', '=', id).where('lease_owner', '=', owner).execute();
  }

  async releaseHeld(event: string): Promise<void> {
    const now = Date.now();
    await this.db.updateTable('deliveries').set({ next_attempt_at: now, updated_at: now })
      .where('event_id', '=', event).where('state', '=', 'pending').where('attempts', '=', 0).where('next_attempt_at', '>', now)
      // One with an error has been tried: its time is the receiver's (a `wait`), not the hold's.
      .where('last_error', 'is', null)
      .execute();
  }

  async cancel(event: string, reason: string): Promise<void> {
    await this.db.updateTable('deliveries').set({ state: 'cancelled', last_error: reason, lease_owner: null, lease_until: null, updated_at: Date.now() })
      .where('event_id', '=', event).where('state', 'in', ['pending', 'dead']).execute();
  }

  async withdraw(event: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const delivered = await trx.selectFrom('deliveries').select('id').where('event_id', '=', event).where('state', '=', 'delivered').executeTakeFirst();
      if (delivered) {
        await trx.updateTable('deliveries').set({ state: 'cancelled', lease_owner: null, lease_until: null, updated_at: Date.now() })
          .where('event_id', '=', event).where('state', '=', 'pending').execute();
        return;
      }
      await trx.deleteFrom('deliveries').where('event_id', '=', event).execute();
      await trx.deleteFrom('report_events').where('id', '=', event).execute();
    });
  }

  async retryDelivery(id: string): Promise<Delivery | undefined> {
    const now = Date.now();
    const row = await this.db.updateTable('deliveries').set({ state: 'pending', attempts: 0, next_attempt_at: now, updated_at: now })
      .where('id', '=', id).where('state', '=', 'dead').returningAll().executeTakeFirst();
    return row ? toDelivery(row) : this.delivery(id);
  }

  async delivery(id: string): Promise<Delivery | undefined> {
    const row = await this.db.selectFrom('deliveries').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toDelivery(row) : undefined;
  }

  async deliveriesOfJob(jobId: string): Promise<Delivery[]> {
    const rows = await this.db.selectFrom('deliveries').selectAll().where('job_id', '=', jobId).orderBy('seq').orderBy('output').execute();
    return rows.map(toDelivery);
  }

  async listDeliveries(q: { state?: DeliveryState; limit?: number; offset?: number }): Promise<Delivery[]> {
    const rows = await this.db.selectFrom('deliveries').selectAll()
      .$if(q.state !== undefined, (b) => b.where('state', '=', q.state!))
      .orderBy('created_at', 'desc').orderBy('id')
      .limit(q.limit ?? 100).offset(q.offset ?? 0).execute();
    return rows.map(toDelivery);
  }

  async countDeliveries(): Promise<{ output: string; state: DeliveryState; count: number }[]> {
    const rows = await this.db.selectFrom('deliveries')
      .select((eb) => ['output', 'state', eb.fn.countAll<number | string>().as('count')]).groupBy(['output', 'state']).execute();
    return rows.filter((r) => isDeliveryState(r.state)).map((r) => ({ output: r.output, state: r.state as DeliveryState, count: Number(r.count) }));
  }

  async expireDeliveryLeases(isGone: (owner: string) => boolean): Promise<number> {
    const now = Date.now();
    const owners = await this.db.selectFrom('deliveries').select('lease_owner').distinct()
      .where('lease_owner', 'is not', null).where('lease_until', '>=', now).execute();
    const gone = owners.map((o) => o.lease_owner!).filter(isGone);
    if (gone.length === 0) return 0;
    const res = await this.db.updateTable('deliveries').set({ lease_until: 0 }).where('lease_owner', 'in', gone).executeTakeFirst();
    return Number(res.numUpdatedRows);
  }
}
