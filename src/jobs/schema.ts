import { Kysely, Migrator, sql, type Migration, type MigrationProvider } from 'kysely';
import { risReportsMigration, type RisReportsTable } from './ris-reports-schema.js';

/** Row types as stored; times are epoch milliseconds, JSON columns are text. */
export interface JobsTable {
  id: string;
  study_uid: string;
  state: string;
  resume_state: string | null;
  attempts: number;
  reason: string | null;
  source: string;
  instance_count: number | null;
  stable_after: number;
  next_attempt_at: number | null;
  lease_owner: string | null;
  lease_until: number | null;
  views: string | null;
  skipped_views: string | null;
  images: string | null;
  draft: string | null;
  report_ref: string | null;
  created_at: number;
  updated_at: number;
}

export interface JobEventsTable {
  job_id: string;
  at: number;
  from_state: string | null;
  to_state: string;
  note: string | null;
}

export interface CheckpointsTable {
  name: string;
  value: string;
  updated_at: number;
}

export interface ReviewsTable {
  report_ref: string;
  study_uid: string;
  model: string;
  prompt_version: string;
  outcome: string;
  edit_distance: number | null;
  draft_chars: number;
  final_chars: number | null;
  signer: string;
  at: number;
}

/** One lifecycle event of a report (drafted, signed, corrected, rejected); `body` is the event as JSON. */
export interface ReportEventsTable {
  id: string;
  report_key: string;
  seq: number;
  kind: string;
  study_uid: string;
  job_id: string;
  at: number;
  body: string;
}

/** One (report event, output) pair on its way to the receiver. */
export interface DeliveriesTable {
  id: string;
  event_id: string;
  report_key: string;
  seq: number;
  kind: string;
  job_id: string;
  output: string;
  state: string;
  attempts: number;
  next_attempt_at: number | null;
  lease_owner: string | null;
  lease_until: number | null;
  reference: string | null;
  last_error: string | null;
  /** What the output said of a delivery that went through. */
  note: string | null;
  created_at: number;
  updated_at: number;
}

export interface Database {
  jobs: JobsTable;
  job_events: JobEventsTable;
  checkpoints: CheckpointsTable;
  reviews: ReviewsTable;
  report_events: ReportEventsTable;
  deliveries: DeliveriesTable;
  ris_reports: RisReportsTable;
}

/** Times need 64 bits; SQLite's INTEGER has them, PostgreSQL needs bigint. */
const time = (dialect: 'sqlite' | 'postgres') => (dialect === 'sqlite' ? 'integer' : 'bigint');

function migrations(dialect: 'sqlite' | 'postgres'): Record<string, Migration> {
  return {
    '0001_jobs': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('jobs')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('study_uid', 'text', (c) => c.notNull().unique())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('resume_state', 'text')
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('reason', 'text')
          .addColumn('source', 'text', (c) => c.notNull())
          .addColumn('instance_count', 'integer')
          .addColumn('stable_after', time(dialect), (c) => c.notNull())
          .addColumn('next_attempt_at', time(dialect))
          .addColumn('lease_owner', 'text')
          .addColumn('lease_until', time(dialect))
          .addColumn('views', 'text')
          .addColumn('images', 'text')
          .addColumn('draft', 'text')
          .addColumn('report_ref', 'text')
          .addColumn('created_at', time(dialect), (c) => c.notNull())
          .addColumn('updated_at', time(dialect), (c) => c.notNull())
          .execute();
        await db.schema.createIndex('jobs_state').on('jobs').columns(['state', 'created_at']).execute();
        await db.schema
          .createTable('job_events')
          .addColumn('job_id', 'text', (c) => c.notNull().references('jobs.id').onDelete('cascade'))
          .addColumn('at', time(dialect), (c) => c.notNull())
          .addColumn('from_state', 'text')
          .addColumn('to_state', 'text', (c) => c.notNull())
          .addColumn('note', 'text')
          .execute();
        await db.schema.createIndex('job_events_job').on('job_events').columns(['job_id', 'at']).execute();
        await db.schema
          .createTable('checkpoints')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('value', 'text', (c) => c.notNull())
          .addColumn('updated_at', time(dialect), (c) => c.notNull())
          .execute();
      },
    },
    '0002_reviews': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('reviews')
          .addColumn('report_ref', 'text', (c) => c.primaryKey())
          .addColumn('study_uid', 'text', (c) => c.notNull())
          .addColumn('model', 'text', (c) => c.notNull())
          .addColumn('prompt_version', 'text', (c) => c.notNull())
          .addColumn('outcome', 'text', (c) => c.notNull())
          .addColumn('edit_distance', 'integer')
          .addColumn('draft_chars', 'integer', (c) => c.notNull())
          .addColumn('final_chars', 'integer')
          .addColumn('signer', 'text', (c) => c.notNull())
          .addColumn('at', time(dialect), (c) => c.notNull())
          .execute();
      },
    },
    '0003_skipped_views': {
      async up(db: Kysely<unknown>) {
        await db.schema.alterTable('jobs').addColumn('skipped_views', 'text').execute();
      },
    },
    '0004_outbox': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('report_events')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('report_key', 'text', (c) => c.notNull())
          .addColumn('seq', 'integer', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('study_uid', 'text', (c) => c.notNull())
          .addColumn('job_id', 'text', (c) => c.notNull())
          .addColumn('at', time(dialect), (c) => c.notNull())
          .addColumn('body', 'text', (c) => c.notNull())
          .addUniqueConstraint('report_events_key_seq', ['report_key', 'seq'])
          .execute();
        await db.schema.createIndex('report_events_job').on('report_events').columns(['job_id', 'seq']).execute();
        await db.schema
          .createTable('deliveries')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('event_id', 'text', (c) => c.notNull().references('report_events.id').onDelete('cascade'))
          .addColumn('report_key', 'text', (c) => c.notNull())
          .addColumn('seq', 'integer', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('job_id', 'text', (c) => c.notNull())
          .addColumn('output', 'text', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('next_attempt_at', time(dialect))
          .addColumn('lease_owner', 'text')
          .addColumn('lease_until', time(dialect))
          .addColumn('reference', 'text')
          .addColumn('last_error', 'text')
          .addColumn('note', 'text')
          .addColumn('created_at', time(dialect), (c) => c.notNull())
          .addColumn('updated_at', time(dialect), (c) => c.notNull())
          .execute();
        await db.schema.createIndex('deliveries_due').on('deliveries').columns(['state', 'next_attempt_at']).execute();
        await db.schema.createIndex('deliveries_order').on('deliveries').columns(['report_key', 'output', 'seq']).execute();
        await db.schema.createIndex('deliveries_job').on('deliveries').columns(['job_id']).execute();
      },
    },
    '0005_ris_reports': risReportsMigration(time(dialect)),
  };
}

export async function migrate(db: Kysely<Database>, dialect: 'sqlite' | 'postgres'): Promise<void> {
  const provider: MigrationProvider = { getMigrations: () => Promise.resolve(migrations(dialect)) };
  const { error, results } = await new Migrator({ db, provider }).migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`job store migration ${failed} failed: ${(error as Error).message}`);
  }
}

export { sql };
