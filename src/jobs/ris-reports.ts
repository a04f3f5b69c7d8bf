import { randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { RisReportsTable } from './ris-reports-schema.js';
import type { Database } from './schema.js';

/** One HL7 message the listener answered, as kept: a matched final report, or a refused message and why. */
export interface RisMessage {
  id: string;
  receivedAt: number;
  senderFacility: string;
  senderAddress: string;
  controlId: string;
  messageType: string;
  status: 'accepted' | 'refused';
  ackCode: 'AA' | 'AE' | 'AR';
  reason: string | undefined;
  studyUid: string | undefined;
  jobId: string | undefined;
  reportKey: string | undefined;
  model: string | undefined;
  promptVersion: string | undefined;
  findings: string | undefined;
  impression: string | undefined;
  signer: string | undefined;
  signedAt: string | undefined;
  /** Characters changed between raddraft's draft and the RIS's final report (as on the quality page). */
  editDistance: number | undefined;
  draftChars: number | undefined;
  /** The message as received (patient data); absent for a sender not on the allow-list. */
  raw: string | undefined;
}

export type NewRisMessage = Omit<RisMessage, 'id' | 'receivedAt'>;

/** Drafts compared with the reports the RIS sent, per model and prompt (the latest final report of each study). */
export interface RisQualityRow {
  model: string;
  promptVersion: string;
  reports: number;
  unchanged: number;
  meanEditDistance: number | undefined;
  meanEditRatio: number | undefined;
}

export interface RisReports {
  /** Keeps a message the listener answered; an accepted report the sender sent again is kept once. */
  record(message: NewRisMessage): Promise<{ message: RisMessage; duplicate: boolean }>;
  list(q: { status?: RisMessage['status']; limit?: number; offset?: number }): Promise<RisMessage[]>;
  get(id: string): Promise<RisMessage | undefined>;
  /** The latest accepted final report of each study received in the range. */
  finals(range: { since: Date; until: Date }): Promise<RisMessage[]>;
  qualitySummary(): Promise<RisQualityRow[]>;
}

const u = <T>(v: T | null): T | undefined => v ?? undefined;

function toMessage(r: Selectable<RisReportsTable>): RisMessage {
  return {
    id: r.id, receivedAt: r.received_at, senderFacility: r.sender_facility, senderAddress: r.sender_address, controlId: r.control_id,
    messageType: r.message_type, status: r.status === 'accepted' ? 'accepted' : 'refused', ackCode: r.ack_code as RisMessage['ackCode'],
    reason: u(r.reason), studyUid: u(r.study_uid), jobId: u(r.job_id), reportKey: u(r.report_key), model: u(r.model),
    promptVersion: u(r.prompt_version), findings: u(r.findings), impression: u(r.impression), signer: u(r.signer),
    signedAt: u(r.signed_at), editDistance: u(r.edit_distance), draftChars: u(r.draft_chars), raw: u(r.raw),
  };
}

/** The latest of each study's accepted reports: a corrected report (OBR-25 C) replaces the one it corrects. */
function latestPerStudy(rows: RisMessage[]): RisMessage[] {
  const latest = new Map<string, RisMessage>();
  for (const r of rows) {
    const key = r.reportKey ?? r.studyUid ?? r.id;
    const had = latest.get(key);
    if (!had || had.receivedAt <= r.receivedAt) latest.set(key, r);
  }
  return [...latest.values()];
}

export class SqlRisReports implements RisReports {
  constructor(private readonly db: Kysely<Database>) {}

  async record(m: NewRisMessage): Promise<{ message: RisMessage; duplicate: boolean }> {
    if (m.status === 'accepted') {
      const had = await this.db.selectFrom('ris_reports').selectAll()
        .where('sender_facility', '=', m.senderFacility).where('control_id', '=', m.controlId).where('status', '=', 'accepted')
        .executeTakeFirst();
      if (had) return { message: toMessage(had), duplicate: true };
    }
    const row = {
      id: randomUUID(), received_at: Date.now(), sender_facility: m.senderFacility, sender_address: m.senderAddress, control_id: m.controlId,
      message_type: m.messageType, status: m.status, ack_code: m.ackCode, reason: m.reason ?? null, study_uid: m.studyUid ?? null,
      job_id: m.jobId ?? null, report_key: m.reportKey ?? null, model: m.model ?? null, prompt_version: m.promptVersion ?? null,
      findings: m.findings ?? null, impression: m.impression ?? null, signer: m.signer ?? null, signed_at: m.signedAt ?? null,
      edit_distance: m.editDistance ?? null, draft_chars: m.draftChars ?? null, raw: m.raw ?? null,
    };
    await this.db.insertInto('ris_reports').values(row).execute();
    return { message: toMessage(row), duplicate: false };
  }

  async list(q: { status?: RisMessage['status']; limit?: number; offset?: number }): Promise<RisMessage[]> {
    const rows = await this.db.selectFrom('ris_reports').selectAll()
      .$if(q.status !== undefined, (b) => b.where('status', '=', q.status!))
      .orderBy('received_at', 'desc').orderBy('id').limit(q.limit ?? 100).offset(q.offset ?? 0).execute();
    return rows.map(toMessage);
  }

  async get(id: string): Promise<RisMessage | undefined> {
    const row = await this.db.selectFrom('ris_reports').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toMessage(row) : undefined;
  }

  async finals(range: { since: Date; until: Date }): Promise<RisMessage[]> {
    const rows = await this.db.selectFrom('ris_reports').selectAll().where('status', '=', 'accepted')
      .where('received_at', '>=', range.since.getTime()).where('received_at', '<=', range.until.getTime())
      .orderBy('received_at').execute();
    return latestPerStudy(rows.map(toMessage));
  }

  async qualitySummary(): Promise<RisQualityRow[]> {
    const rows = await this.db.selectFrom('ris_reports').selectAll().where('status', '=', 'accepted').where('model', 'is not', null).execute();
    const groups = new Map<string, { row: RisQualityRow; distances: number[]; ratios: number[] }>();
    for (const r of latestPerStudy(rows.map(toMessage))) {
      const key = `${r.model}\u0000${r.promptVersion}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { row: { model: r.model!, promptVersion: r.promptVersion ?? '', reports: 0, unchanged: 0, meanEditDistance: undefined, meanEditRatio: undefined }, distances: [], ratios: [] }));
      const d = r.editDistance ?? 0;
      g.row.reports += 1;
      if (d === 0) g.row.unchanged += 1;
      g.distances.push(d);
      g.ratios.push(r.draftChars ? d / r.draftChars : 0);
    }
    const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined);
    return [...groups.values()].map((g) => ({ ...g.row, meanEditDistance: mean(g.distances), meanEditRatio: mean(g.ratios) }));
  }
}
