import { formatHl7DateTime } from '@medplum/core';
import type { DraftedEvent, RejectedEvent, ReportEvent, SignedEvent } from '../report/report.js';
import type { StudyContext } from '../report/study.js';
import { controlIdOf } from './control-id.js';
import { escapeText, textLines } from './text.js';

/** Where the accession number goes: ORC-2/OBR-2 (placer), ORC-3/OBR-3 (filler), OBR-18 (placer field 1, IHE SWF). */
export type AccessionPlace = 'placer' | 'filler' | 'obr18';

export interface OruOptions {
  /** OBR-25 of an unverified draft: R (results stored, not yet verified) or P (preliminary). */
  draftStatus: 'R' | 'P';
  accessionIn: readonly AccessionPlace[];
  /** OBX-11 of a rejected draft's observations: D (delete them) or W (post as wrong). */
  withdrawAs: 'D' | 'W';
  sender: { application: string; facility: string };
  receiver: { application: string; facility: string };
}

/** What the message says of the AI that wrote the draft (from the report's drafted event). */
export interface DraftOrigin {
  model: string;
  promptVersion: string;
  flags: readonly string[];
  /** Critical findings the draft asserts, each an unverified AI suspicion. */
  urgent: readonly string[];
}

export interface OruInput {
  event: ReportEvent;
  study: StudyContext;
  origin: DraftOrigin | undefined;
  software: { name: string; version: string };
}

const FINDINGS = '18782-3^Radiology Study observation (narrative)^LN';
const IMPRESSION = '19005-8^Radiology Imaging study [Impression] (narrative)^LN';
const NOTICE = 'AIDRAFT^AI draft status^L';
const ADDENDUM = 'ADDENDUM^Addendum^L';

export class OruInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OruInputError';
  }
}

/** HL7 date-time (UTC, with its offset, so no receiver reads it as local time). */
function hl7Time(iso: string): string {
  return `${formatHl7DateTime(new Date(iso)).slice(0, 14)}+0000`;
}

function studyTime(study: StudyContext): string {
  if (!study.studyDate) return '';
  const time = (study.studyTime ?? '').replace(/\..*$/, '').slice(0, 6);
  return `${study.studyDate}${time}${study.timezoneOffset ?? ''}`;
}

function segment(name: string, fields: Record<number, string>): string {
  const last = Math.max(0, ...Object.keys(fields).map(Number));
  const out: string[] = [name];
  for (let i = 1; i <= last; i++) out.push(fields[i] ?? '');
  return out.join('|').replace(/\|+$/, '');
}

/** OBR-25 and OBX-11 of an event. */
function statusOf(event: ReportEvent, options: OruOptions): { obr: string; obx: string } {
  switch (event.kind) {
    case 'drafted':
      return { obr: options.draftStatus, obx: options.draftStatus };
    case 'signed':
      return { obr: 'F', obx: 'F' };
    case 'corrected':
      return { obr: 'C', obx: 'C' };
    case 'rejected':
      // A correction of what was sent, whose observations are deleted (or posted as wrong): the way results that
      // should never have been filed are taken back, since v2.5.1 has no "withdrawn" order status.
      return { obr: 'C', obx: options.withdrawAs };
  }
}

/** OBR-32: the radiologist who signed, as an NDL (ID & name & … & assigning authority). */
function interpreter(event: SignedEvent): string {
  const id = event.by.reference.replace(/^(Practitioner|PractitionerRole)\//, '');
  return `${escapeText(id)}&${escapeText(event.by.display ?? '')}&&&&&&&${escapeText(event.by.reference.split('/')[0] ?? '')}`;
}

function notice(event: ReportEvent, origin: DraftOrigin | undefined): string {
  const ai = origin ? `AI model ${origin.model}` : 'an AI model';
  switch (event.kind) {
    case 'drafted':
      return `UNVERIFIED AI-GENERATED DRAFT by ${ai}: not reviewed by a radiologist. It is a draft until a radiologist signs it.`;
    case 'signed':
      return `Drafted by ${ai}; reviewed, edited as needed and signed by ${event.by.display ?? event.by.reference}.`;
    case 'corrected':
      return `Drafted by ${ai}; signed, then ${event.mode === 'addendum' ? 'given an addendum' : 'corrected'} by ${event.by.display ?? event.by.reference}.`;
    case 'rejected':
      return `The AI-generated draft was withdrawn by ${event.by.display ?? event.by.reference}; it must not be used.`;
  }
}

interface Observation {
  code: string;
  text: string;
}

function observations(event: ReportEvent, origin: DraftOrigin | undefined, drafted: DraftedEvent | undefined): Observation[] {
  const first = { code: NOTICE, text: notice(event, origin) };
  if (event.kind === 'drafted') return [first, { code: FINDINGS, text: event.draft.findings }, { code: IMPRESSION, text: event.draft.impression }];
  if (event.kind === 'rejected') return rejectedObservations(event, drafted);
  const addenda = (event.addenda ?? []).map((text) => ({ code: ADDENDUM, text }));
  return [first, { code: FINDINGS, text: event.findings }, { code: IMPRESSION, text: event.impression }, ...addenda];
}

/** The draft's observations again, marked D or W; their text is never the AI's once a radiologist rejected it. */
function rejectedObservations(event: RejectedEvent, drafted: DraftedEvent | undefined): Observation[] {
  const withdrawn = `Withdrawn by the radiologist${drafted ? ` (AI draft of ${drafted.at.slice(0, 10)})` : ''}.`;
  return [NOTICE, FINDINGS, IMPRESSION].map((code, i) => ({ code, text: i === 0 ? notice(event, undefined) : withdrawn }));
}

function notes(event: ReportEvent, origin: DraftOrigin | undefined, software: OruInput['software']): string[] {
  const out: string[] = [];
  if (origin) out.push(`AI model ${origin.model}, prompt ${origin.promptVersion}; ${software.name} ${software.version}`);
  if (event.kind === 'drafted' && origin) {
    for (const flag of origin.flags) out.push(`Review flag: ${flag}`);
    for (const finding of origin.urgent) out.push(`Unverified AI suspicion of a critical finding: ${finding}`);
  }
  if ((event.kind === 'corrected' || event.kind === 'rejected') && event.reason) out.push(`Reason: ${event.reason}`);
  return out.map((text, i) => segment('NTE', { 1: String(i + 1), 2: 'O', 3: escapeText(text) }));
}

/** The order identifiers: the accession in the places the site asked for, the study UID nowhere else needed. */
function orderFields(study: StudyContext, options: OruOptions): { placer: string; filler: string; obr18: string } {
  const accession = study.accession ? escapeText(study.accession) : '';
  if (!accession) throw new OruInputError('the study has no Accession Number, so the RIS cannot tie the result to its order');
  const at = (place: AccessionPlace) => (options.accessionIn.includes(place) ? accession : '');
  return { placer: at('placer'), filler: at('filler'), obr18: at('obr18') };
}

/**
 * The ORU^R01 (v2.5.1) of one report event: MSH, PID (PID-3 from the PACS), ORC/OBR tied to the order, NTEs (the
 * model and prompt, review flags, the reason of a correction), TQ1 priority for urgent AI findings, and OBX lines
 * with the status notice, findings and impression. Segments end with CR, as MLLP carries them.
 */
export function buildOru(input: OruInput, options: OruOptions, drafted?: DraftedEvent): string {
  const { event, study, origin } = input;
  if (!study.patientId) throw new OruInputError('the study has no Patient ID, so the RIS cannot file the result (PID-3)');
  const order = orderFields(study, options);
  const status = statusOf(event, options);
  const pid3 = `${escapeText(study.patientId)}^^^${escapeText(study.patientIdIssuer ?? '')}`.replace(/\^+$/, '');
  const signer = event.kind === 'signed' || event.kind === 'corrected' ? interpreter(event) : '';
  const segments = [
    segment('MSH', {
      1: '^~\\&', 2: escapeText(options.sender.application), 3: escapeText(options.sender.facility),
      4: escapeText(options.receiver.application), 5: escapeText(options.receiver.facility), 6: hl7Time(event.at),
      8: 'ORU^R01^ORU_R01', 9: controlIdOf(event.id), 10: 'P', 11: '2.5.1', 17: 'UNICODE UTF-8',
    }),
    segment('PID', { 1: '1', 3: pid3 }),
    segment('ORC', { 1: 'RE', 2: order.placer, 3: order.filler }),
    segment('OBR', {
      1: '1', 2: order.placer, 3: order.filler, 4: `^${escapeText(study.description ?? 'Chest radiograph')}`, 7: studyTime(study),
      18: order.obr18, 22: hl7Time(event.at), 24: 'RAD', 25: status.obr, 32: signer,
    }),
    ...notes(event, origin, input.software),
  ];
  // TQ1-9 priority (table 0485) A = ASAP: above routine, as FHIR's Task priority is raised, but not Stat, which only
  // a physician declares; the urgency is the AI's unverified suspicion.
  if (event.kind === 'drafted' && origin?.urgent.length) segments.push(segment('TQ1', { 1: '1', 9: 'A^ASAP^HL70485' }));
  observations(event, origin, drafted).forEach((o, i) => {
    const value = event.kind === 'rejected' && options.withdrawAs === 'D' && i > 0 ? '' : textLines(o.text);
    segments.push(segment('OBX', { 1: String(i + 1), 2: 'TX', 3: o.code, 4: '1', 5: value, 11: status.obx, 14: studyTime(study) }));
  });
  return `${segments.join('\r')}\r`;
}
