import type { Hl7Message, Hl7Segment } from '@medplum/core';
import { parseReport, ReplyFormatError } from '../report/sections.js';
import { ErrorCode, type AckProblem } from './ack.js';
import { unescapeText } from './text.js';

/** A radiologist's final report as the RIS sent it (ORU^R01 or MDM^T02), before it is matched to a draft. */
export interface ReceivedFinal {
  messageType: 'ORU^R01' | 'MDM^T02';
  controlId: string;
  facility: string;
  /** Accession numbers the message carries, in the order they are tried (filler, OBR-18, placer, IPC). PHI. */
  accessions: string[];
  /** The Study Instance UID, when the message carries one (ZDS-1, IPC-3). */
  studyUid: string | undefined;
  findings: string;
  impression: string;
  /** The signing radiologist as the RIS names them (OBR-32, TXA-22); staff, not patient data. */
  signer: string | undefined;
  /** When it was signed (OBR-22, TXA-22 time), as HL7 gave it. */
  signedAt: string | undefined;
  /** F, C (ORU) or AU, LA (MDM). */
  status: string;
}

/** Why a message cannot be used: the ACK code (AR: its header; AE: its content) and the problem for ERR. */
export interface Unusable {
  ack: 'AE' | 'AR';
  problem: AckProblem;
}

const first = (s: Hl7Segment | undefined, field: number, component = 1) => unescapeText(s?.getComponent(field, component) ?? '').trim();

/** The header checks every message passes first: type, version, processing ID, control ID. */
export function checkHeader(message: Hl7Message): Unusable | undefined {
  const msh = message.header;
  if (msh.name !== 'MSH') return { ack: 'AR', problem: { code: ErrorCode.segmentSequence, location: 'MSH', message: 'the message does not begin with an MSH segment' } };
  const type = `${first(msh, 9, 1)}^${first(msh, 9, 2)}`;
  if (!msh.getField(10)?.toString()) return { ack: 'AR', problem: { code: ErrorCode.requiredField, location: 'MSH^1^10', message: 'MSH-10 (message control ID) is empty' } };
  if (type !== 'ORU^R01' && type !== 'MDM^T02') {
    const code = ['ORU', 'MDM'].includes(first(msh, 9, 1)) ? ErrorCode.unsupportedEvent : ErrorCode.unsupportedMessageType;
    return { ack: 'AR', problem: { code, location: 'MSH^1^9', message: `raddraft takes ORU^R01 and MDM^T02 final reports, not ${type.replace(/[^A-Za-z0-9^_]/g, '')}` } };
  }
  if (!/^2\.\d/.test(first(msh, 12))) return { ack: 'AR', problem: { code: ErrorCode.unsupportedVersion, location: 'MSH^1^12', message: 'MSH-12 is not an HL7 version 2.x' } };
  if (first(msh, 11) !== 'P') return { ack: 'AR', problem: { code: ErrorCode.unsupportedProcessingId, location: 'MSH^1^11', message: 'MSH-11 is not P (production); raddraft records production reports only' } };
  return undefined;
}

/** The narrative of OBX lines of text types (TX, FT, ST), repetitions as lines. */
function textOf(obx: Hl7Segment[]): { byCode: Map<string, string>; all: string } {
  const byCode = new Map<string, string>();
  const all: string[] = [];
  for (const s of obx) {
    if (!['TX', 'FT', 'ST'].includes(s.getField(2)?.toString() ?? '')) continue;
    const text = (s.getField(5)?.toString() ?? '').split('~').map(unescapeText).join('\n').trim();
    if (!text) continue;
    const code = s.getComponent(3, 1);
    byCode.set(code, [byCode.get(code), text].filter(Boolean).join('\n'));
    all.push(text);
  }
  return { byCode, all: all.join('\n') };
}

/** Findings and impression: by their LOINC codes when the RIS codes them, else by the headings in the text. */
function sections(obx: Hl7Segment[]): { findings: string; impression: string } {
  const { byCode, all } = textOf(obx);
  const coded = { findings: byCode.get('18782-3') ?? '', impression: byCode.get('19005-8') ?? '' };
  if (coded.findings || coded.impression) return coded;
  try {
    const parsed = parseReport(all);
    return { findings: parsed.findings, impression: parsed.impression };
  } catch (err) {
    if (!(err instanceof ReplyFormatError)) throw err;
    return { findings: all, impression: '' };
  }
}

const noText = (location: string): Unusable => ({ ack: 'AE', problem: { code: ErrorCode.requiredField, location, message: 'the message holds no report text (no OBX of type TX, FT or ST with a value)' } });

function studyUidOf(message: Hl7Message): string | undefined {
  const uid = first(message.getSegment('ZDS'), 1) || first(message.getSegment('IPC'), 3);
  return /^[0-9.]{1,64}$/.test(uid) ? uid : undefined;
}

function oru(message: Hl7Message, base: Pick<ReceivedFinal, 'controlId' | 'facility'>): ReceivedFinal | Unusable {
  const obr = message.getSegment('OBR');
  if (!message.getSegment('PID') || !obr) return { ack: 'AE', problem: { code: ErrorCode.segmentSequence, location: obr ? 'PID' : 'OBR', message: `an ORU^R01 needs PID and OBR segments; this one has no ${obr ? 'PID' : 'OBR'}` } };
  const status = first(obr, 25);
  if (status !== 'F' && status !== 'C') return { ack: 'AE', problem: { code: ErrorCode.dataType, location: 'OBR^1^25', message: `OBR-25 is "${status.slice(0, 2)}"; raddraft records final reports only (F or C)` } };
  const { findings, impression } = sections(message.getAllSegments('OBX'));
  if (!findings && !impression) return noText('OBX^1^5');
  const accessions = [first(obr, 3), first(obr, 18), first(obr, 2), first(message.getSegment('ORC'), 3), first(message.getSegment('IPC'), 1)];
  // OBR-32 is an NDL whose first component holds ID & family & given as subcomponents (numbered from 0 here).
  const sub = (i: number) => unescapeText(obr.getComponent(32, 1, i)).trim();
  const signer = [sub(2), sub(1)].filter(Boolean).join(' ') || sub(0) || undefined;
  return {
    ...base, messageType: 'ORU^R01', accessions: [...new Set(accessions.filter(Boolean))], studyUid: studyUidOf(message),
    findings, impression, signer, signedAt: first(obr, 22) || undefined, status,
  };
}

function mdm(message: Hl7Message, base: Pick<ReceivedFinal, 'controlId' | 'facility'>): ReceivedFinal | Unusable {
  const txa = message.getSegment('TXA');
  if (!message.getSegment('PID') || !txa) return { ack: 'AE', problem: { code: ErrorCode.segmentSequence, location: txa ? 'PID' : 'TXA', message: `an MDM^T02 needs PID and TXA segments; this one has no ${txa ? 'PID' : 'TXA'}` } };
  const status = first(txa, 17);
  if (status !== 'AU' && status !== 'LA') return { ack: 'AE', problem: { code: ErrorCode.dataType, location: 'TXA^1^17', message: `TXA-17 is "${status.slice(0, 2)}"; raddraft records authenticated reports only (AU or LA)` } };
  const { findings, impression } = sections(message.getAllSegments('OBX'));
  if (!findings && !impression) return noText('OBX^1^5');
  const accessions = [first(txa, 15), first(txa, 14), first(message.getSegment('OBR'), 3), first(message.getSegment('IPC'), 1)];
  const signer = [first(txa, 22, 3), first(txa, 22, 2)].filter(Boolean).join(' ') || first(txa, 22, 1) || undefined;
  return {
    ...base, messageType: 'MDM^T02', accessions: [...new Set(accessions.filter(Boolean))], studyUid: studyUidOf(message),
    findings, impression, signer, signedAt: first(txa, 22, 15) || first(txa, 6) || undefined, status,
  };
}

/** A final report from a message that passed `checkHeader`, or why it cannot be used. */
export function readFinalReport(message: Hl7Message): ReceivedFinal | Unusable {
  const msh = message.header;
  const base = { controlId: msh.getField(10)?.toString() ?? '', facility: first(msh, 4) };
  const found = first(msh, 9, 1) === 'MDM' ? mdm(message, base) : oru(message, base);
  if ('ack' in found) return found;
  if (found.accessions.length === 0 && !found.studyUid) {
    return { ack: 'AE', problem: { code: ErrorCode.requiredField, location: found.messageType === 'MDM^T02' ? 'TXA^1^15' : 'OBR^1^3', message: 'the message names no accession number (filler or placer order number) and no Study Instance UID' } };
  }
  return found;
}
