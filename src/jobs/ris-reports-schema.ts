import type { Kysely, Migration } from 'kysely';

/**
 * Every HL7 message the listener answered: a radiologist's final report from the RIS matched to raddraft's draft
 * (`accepted`), or one raddraft could not use (`refused`), kept with the reason for an administrator to inspect.
 * `raw` is the message as received, with its patient data: it is kept like the job store's other records, never
 * logged; a message from a sender not on the allow-list is recorded without it.
 */
export interface RisReportsTable {
  id: string;
  received_at: number;
  sender_facility: string;
  sender_address: string;
  control_id: string;
  message_type: string;
  status: string;
  ack_code: string;
  reason: string | null;
  study_uid: string | null;
  job_id: string | null;
  report_key: string | null;
  model: string | null;
  prompt_version: string | null;
  findings: string | null;
  impression: string | null;
  signer: string | null;
  signed_at: string | null;
  edit_distance: number | null;
  draft_chars: number | null;
  raw: string | null;
}

/** Migration 0005: the table above, with what the listener and the quality figures look rows up by. */
export function risReportsMigration(time: 'integer' | 'bigint'): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('ris_reports')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('received_at', time, (c) => c.notNull())
        .addColumn('sender_facility', 'text', (c) => c.notNull())
        .addColumn('sender_address', 'text', (c) => c.notNull())
        .addColumn('control_id', 'text', (c) => c.notNull())
        .addColumn('message_type', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('ack_code', 'text', (c) => c.notNull())
        .addColumn('reason', 'text')
        .addColumn('study_uid', 'text')
        .addColumn('job_id', 'text')
        .addColumn('report_key', 'text')
        .addColumn('model', 'text')
        .addColumn('prompt_version', 'text')
        .addColumn('findings', 'text')
        .addColumn('impression', 'text')
        .addColumn('signer', 'text')
        .addColumn('signed_at', 'text')
        .addColumn('edit_distance', 'integer')
        .addColumn('draft_chars', 'integer')
        .addColumn('raw', 'text')
        .execute();
      await db.schema.createIndex('ris_reports_control').on('ris_reports').columns(['sender_facility', 'control_id']).execute();
      await db.schema.createIndex('ris_reports_status').on('ris_reports').columns(['status', 'received_at']).execute();
      await db.schema.createIndex('ris_reports_study').on('ris_reports').columns(['study_uid']).execute();
    },
  };
}
