import { Hl7Message } from '@medplum/core';
import { ackFor, ErrorCode, type AckProblem } from '../hl7/ack.js';
import { decodeText, peekHeader, printable } from '../hl7/decode.js';
import { checkHeader, readFinalReport, type ReceivedFinal } from '../hl7/final-report.js';
import type { JobStore } from '../jobs/job-store.js';
import type { NewRisMessage } from '../jobs/ris-reports.js';
import type { Logger } from '../log.js';
import { phi } from '../log.js';
import { editDistance, reportText } from '../report/edit-distance.js';

/** Bytes of an unparseable block kept for inspection. */
const KEEP_UNPARSED = 4096;

export interface FinalReportDeps {
  store: JobStore;
  /** Study Instance UIDs the PACS holds under an accession number. */
  studiesByAccession: (accession: string) => Promise<string[]>;
  /** The accession number the PACS holds for a study (undefined: none, or the study is unknown). */
  accessionOf: (studyUid: string) => Promise<string | undefined>;
  senders: readonly { facility: string; address: string | undefined }[];
  log: Logger;
}

/** One block as it arrived, with where it came from. */
export interface Arrival {
  bytes: Buffer;
  address: string;
}

type Refusal = { ack: 'AE' | 'AR'; problem: AckProblem };

const sameAddress = (a: string, b: string) => a.replace(/^::ffff:/, '') === b.replace(/^::ffff:/, '');

/** Whether a sender may send: its MSH-4 is on the allow-list, from the address it is bound to if any. */
export function allowed(senders: FinalReportDeps['senders'], facility: string, address: string): boolean {
  return senders.some((s) => s.facility === facility && (s.address === undefined || sameAddress(s.address, address)));
}

interface Match {
  studyUid: string;
  jobId: string;
  reportKey: string | undefined;
  draft: { findings: string; impression: string; model: string; promptVersion: string };
}

/** The draft a final report belongs to: by the Study UID it names (its accession checked), else by its accession. */
async function match(report: ReceivedFinal, deps: FinalReportDeps): Promise<Match | Refusal> {
  let uids: string[];
  if (report.studyUid) {
    const held = report.accessions.length ? await deps.accessionOf(report.studyUid) : undefined;
    if (report.accessions.length && held !== undefined && !report.accessions.includes(held)) {
      return { ack: 'AE', problem: { code: ErrorCode.unknownKey, location: 'ZDS^1^1', message: 'the accession number does not match the study the message names' } };
    }
    uids = [report.studyUid];
  } else {
    uids = [];
    for (const accession of report.accessions) {
      uids = await deps.studiesByAccession(accession);
      if (uids.length) break;
    }
    if (!uids.length) return { ack: 'AE', problem: { code: ErrorCode.unknownKey, location: report.messageType === 'MDM^T02' ? 'TXA^1^15' : 'OBR^1^3', message: 'no study in the PACS has the accession number of this report' } };
  }
  const found: Match[] = [];
  for (const uid of uids) {
    const job = await deps.store.findByStudy(uid);
    if (!job) continue;
    const drafted = (await deps.store.outbox.eventsOfJob(job.id)).find((e) => e.kind === 'drafted');
    const draft = drafted?.kind === 'drafted' ? drafted.draft : job.draft;
    if (draft) found.push({ studyUid: uid, jobId: job.id, reportKey: drafted?.reportKey, draft });
  }
  if (found.length === 1) return found[0]!;
  const why = found.length ? `${found.length} studies with raddraft drafts share its accession number` : 'raddraft has no draft for the study of this report';
  return { ack: 'AE', problem: { code: ErrorCode.unknownKey, location: report.studyUid ? 'ZDS^1^1' : 'OBR^1^3', message: why } };
}

/**
 * What the listener does with one block: decode it, check the sender and the header, read the final report, find
 * raddraft's draft for the same study, and keep the report beside it. Every block gets an ACK; one that cannot be
 * used is answered AE (its content) or AR (its header or sender) with the reason, and kept for inspection.
 */
export async function receiveBlock(arrival: Arrival, deps: FinalReportDeps): Promise<Hl7Message> {
  const peek = peekHeader(arrival.bytes);
  const from = { senderAddress: arrival.address, senderFacility: peek?.facility ?? '', controlId: peek?.controlId ?? '', messageType: '' };
  if (!peek) return refuse(deps, from, undefined, printable(arrival.bytes, KEEP_UNPARSED), { ack: 'AR', problem: { code: ErrorCode.segmentSequence, location: 'MSH', message: 'the block is not an HL7 message: it does not begin with an MSH segment' } });
  from.messageType = `${peek.msh.header.getComponent(9, 1)}^${peek.msh.header.getComponent(9, 2)}`.slice(0, 16);
  if (!allowed(deps.senders, peek.facility, arrival.address)) {
    // Nothing of a message from an unknown sender is kept but the fact: its content is not raddraft's to hold.
    return refuse(deps, from, peek.msh, undefined, { ack: 'AR', problem: { code: ErrorCode.applicationError, location: 'MSH^1^4', message: 'the sending facility (MSH-4) is not allowed to send to raddraft from this address' } });
  }
  const decoded = decodeText(arrival.bytes, peek.charset);
  if ('ack' in decoded) return refuse(deps, from, peek.msh, printable(arrival.bytes), decoded);
  let message: Hl7Message;
  try {
    message = Hl7Message.parse(decoded.text.replace(/\r?\n/g, '\r'));
  } catch {
    return refuse(deps, from, peek.msh, printable(decoded.text), { ack: 'AR', problem: { code: ErrorCode.segmentSequence, location: 'MSH', message: 'the message cannot be parsed as HL7 v2' } });
  }
  const bad = checkHeader(message);
  if (bad) return refuse(deps, from, message, printable(decoded.text), bad);
  const report = readFinalReport(message);
  if ('ack' in report) return refuse(deps, from, message, printable(decoded.text), report);
  return accept(report, message, printable(decoded.text), from, deps);
}

async function accept(report: ReceivedFinal, message: Hl7Message, raw: string, from: Pick<NewRisMessage, 'senderAddress' | 'senderFacility' | 'controlId' | 'messageType'>, deps: FinalReportDeps): Promise<Hl7Message> {
  let found: Match | Refusal;
  try {
    found = await phi.during(report.accessions, () => match(report, deps));
  } catch (err) {
    deps.log.warn({ err: phi.scrub((err as Error).message), controlId: report.controlId }, 'cannot match an HL7 final report now');
    return refuse(deps, from, message, raw, { ack: 'AE', problem: { code: ErrorCode.applicationError, message: 'raddraft cannot look the study up in the PACS now; send the message again later' } });
  }
  if ('ack' in found) return refuse(deps, from, message, raw, found);
  const draftText = reportText(found.draft.findings, found.draft.impression);
  const record: NewRisMessage = {
    ...from, status: 'accepted', ackCode: 'AA', reason: undefined, studyUid: found.studyUid, jobId: found.jobId, reportKey: found.reportKey,
    model: found.draft.model, promptVersion: found.draft.promptVersion, findings: report.findings, impression: report.impression,
    signer: report.signer, signedAt: report.signedAt, editDistance: editDistance(draftText, reportText(report.findings, report.impression)),
    draftChars: draftText.length, raw,
  };
  try {
    // A store error may quote a value it was given: during() scrubs the accession numbers from it, as for the match.
    const { duplicate } = await phi.during(report.accessions, () => deps.store.risReports.record(record));
    deps.log.info({ studyUid: found.studyUid, jobId: found.jobId, controlId: report.controlId, facility: report.facility, duplicate }, 'recorded the final report the RIS sent');
    return ackFor(message, 'AA');
  } catch (err) {
    deps.log.error({ err: (err as Error).message, controlId: report.controlId }, 'cannot record an HL7 final report');
    return ackFor(message, 'AE', { code: ErrorCode.applicationError, message: 'raddraft cannot store the report now; send the message again later' });
  }
}

/** Answers AE/AR with the reason and keeps the message (or, from an unknown sender, the fact of it). */
async function refuse(deps: FinalReportDeps, from: Pick<NewRisMessage, 'senderAddress' | 'senderFacility' | 'controlId' | 'messageType'>, message: Hl7Message | undefined, raw: string | undefined, why: Refusal): Promise<Hl7Message> {
  deps.log.warn({ ack: why.ack, reason: why.problem.message, facility: from.senderFacility, controlId: from.controlId, address: from.senderAddress }, 'refused an HL7 message');
  await deps.store.risReports.record({
    ...from, status: 'refused', ackCode: why.ack, reason: `${why.problem.code.split('^')[1] ?? ''}${why.problem.location ? ` at ${why.problem.location}` : ''}: ${why.problem.message}`,
    studyUid: undefined, jobId: undefined, reportKey: undefined, model: undefined, promptVersion: undefined, findings: undefined,
    impression: undefined, signer: undefined, signedAt: undefined, editDistance: undefined, draftChars: undefined, raw,
  }).catch((err: unknown) => deps.log.error({ err: (err as Error).message }, 'cannot keep a refused HL7 message'));
  return ackFor(message, why.ack, why.problem);
}

/**
 * Answers a block that cannot be read as a whole (bytes outside MLLP framing, or past the size limit): AR, with the
 * control ID when its header could be read, and its first bytes kept when its sender is on the allow-list.
 */
export function refuseBlock(arrival: Arrival, deps: FinalReportDeps, problem: AckProblem): Promise<Hl7Message> {
  const peek = peekHeader(arrival.bytes);
  const known = peek !== undefined && allowed(deps.senders, peek.facility, arrival.address);
  const from = { senderAddress: arrival.address, senderFacility: peek?.facility ?? '', controlId: peek?.controlId ?? '', messageType: '' };
  return refuse(deps, from, peek?.msh, known || !peek ? printable(arrival.bytes, KEEP_UNPARSED) : undefined, { ack: 'AR', problem });
}
