import { describe, expect, it } from '@jest/globals';
import { Hl7Message } from '@medplum/core';
import { ackFor, ErrorCode, readAck } from '../src/hl7/ack.js';
import { controlIdOf } from '../src/hl7/control-id.js';
import { decodeText, peekHeader } from '../src/hl7/decode.js';
import { checkHeader, readFinalReport } from '../src/hl7/final-report.js';
import { MllpDeframer } from '../src/hl7/mllp-frames.js';
import { parseMllpUrl } from '../src/hl7/mllp-client.js';
import { buildOru, OruInputError, type OruOptions } from '../src/hl7/oru.js';
import { escapeText, unescapeText } from '../src/hl7/text.js';
import { originOf } from '../src/outputs/hl7.js';
import type { DraftedEvent, ReportEvent, SignedEvent } from '../src/report/report.js';
import type { StudyContext } from '../src/report/study.js';

const study: StudyContext = {
  studyUid: '1.2.826.0.1.3680043.2.1125.7', patientId: 'P|123', patientIdIssuer: 'HOSP', accession: 'ACC^9', studyDate: '20261201',
  studyTime: '081500.123', timezoneOffset: '+0100', description: 'XR CHEST PA',
};
const options: OruOptions = {
  draftStatus: 'R', accessionIn: ['filler'], withdrawAs: 'D',
  sender: { application: 'RADDRAFT', facility: 'RAD' }, receiver: { application: 'RIS', facility: 'HOSP' },
};
const base = { reportKey: `${study.studyUid}_lingshu-7b`, studyUid: study.studyUid, jobId: 'job-1', at: '2026-12-01T09:00:00.000Z' };
const drafted: DraftedEvent = {
  ...base, kind: 'drafted', id: `${base.reportKey}:0`, seq: 0, images: [],
  draft: {
    findings: 'Heart size normal.\nLungs clear | no effusion ^ & ~ \\.', impression: 'No acute disease.', text: '', model: 'lingshu-7b',
    promptVersion: 'medevalkit-report-1', requestId: undefined, draftedAt: base.at, flags: ['reply cut at the token limit'],
  },
};
const signed: SignedEvent = {
  ...base, kind: 'signed', id: `${base.reportKey}:1`, seq: 1, findings: 'Heart size normal. Lungs clear.', impression: 'Normal chest.',
  by: { reference: 'Practitioner/r1', display: 'Dr Ada Example' }, reviewedVersion: '2',
};
const origin = { model: 'lingshu-7b', promptVersion: 'medevalkit-report-1', flags: ['reply cut at the token limit'], urgent: [] };
const software = { name: 'raddraft', version: '0.1.0' };

function built(event: ReportEvent, o: OruOptions = options, urgent: string[] = []): Hl7Message {
  const text = buildOru({ event, study, origin: { ...origin, urgent }, software }, o, drafted);
  return Hl7Message.parse(text);
}
const field = (m: Hl7Message, seg: string, n: number, i = 0) => m.getAllSegments(seg)[i]!.getField(n)?.toString() ?? '';

describe('ORU^R01 of a report event', () => {
  it('sends the draft as v2.5.1 ORU^R01 with OBR-25 R, OBX-11 R, PID-3 from the PACS and the accession as filler number', () => {
    const m = built(drafted);
    expect(m.segments.filter((s) => s.name).map((s) => s.name)).toEqual(['MSH', 'PID', 'ORC', 'OBR', 'NTE', 'NTE', 'OBX', 'OBX', 'OBX']);
    expect([field(m, 'MSH', 9), field(m, 'MSH', 10), field(m, 'MSH', 12), field(m, 'MSH', 18)]).toEqual(['ORU^R01^ORU_R01', controlIdOf(drafted.id), '2.5.1', 'UNICODE UTF-8']);
    expect(field(m, 'PID', 3)).toBe('P\\F\\123^^^HOSP');
    expect([field(m, 'ORC', 3), field(m, 'OBR', 3), field(m, 'OBR', 2), field(m, 'OBR', 18)]).toEqual(['ACC\\S\\9', 'ACC\\S\\9', '', '']);
    expect([field(m, 'OBR', 7), field(m, 'OBR', 24), field(m, 'OBR', 25), field(m, 'OBR', 32)]).toEqual(['20261201081500+0100', 'RAD', 'R', '']);
    expect(m.getAllSegments('OBX').map((s) => s.getField(11).toString())).toEqual(['R', 'R', 'R']);
    expect(unescapeText(field(m, 'OBX', 5, 0))).toMatch(/^UNVERIFIED AI-GENERATED DRAFT by AI model lingshu-7b/);
    expect(field(m, 'OBX', 3, 1)).toBe('18782-3^Radiology Study observation (narrative)^LN');
    expect(field(m, 'OBX', 5, 1).split('~').map(unescapeText)).toEqual(['Heart size normal.', 'Lungs clear | no effusion ^ & ~ \\.']);
    expect(unescapeText(field(m, 'NTE', 3, 0))).toBe('AI model lingshu-7b, prompt medevalkit-report-1; raddraft 0.1.0');
    expect(unescapeText(field(m, 'NTE', 3, 1))).toBe('Review flag: reply cut at the token limit');
  });

  it('marks a draft P when the site asks for it, and puts the accession where the site expects it', () => {
    const m = built(drafted, { ...options, draftStatus: 'P', accessionIn: ['placer', 'obr18'] });
    expect([field(m, 'OBR', 25), field(m, 'OBX', 11)]).toEqual(['P', 'P']);
    expect([field(m, 'ORC', 2), field(m, 'OBR', 2), field(m, 'OBR', 18), field(m, 'OBR', 3)]).toEqual(['ACC\\S\\9', 'ACC\\S\\9', 'ACC\\S\\9', '']);
  });

  it('raises the priority of a draft asserting a critical finding with TQ1-9 ASAP and names the suspicion as unverified', () => {
    const m = built(drafted, options, ['pneumothorax']);
    expect(m.segments.filter((s) => s.name).map((s) => s.name)).toEqual(['MSH', 'PID', 'ORC', 'OBR', 'NTE', 'NTE', 'NTE', 'TQ1', 'OBX', 'OBX', 'OBX']);
    expect(field(m, 'TQ1', 9)).toBe('A^ASAP^HL70485');
    expect(unescapeText(field(m, 'NTE', 3, 2))).toBe('Unverified AI suspicion of a critical finding: pneumothorax');
  });

  it('sends the signature as F with the radiologist in OBR-32, and a correction as C with its reason and addenda', () => {
    const f = built(signed);
    expect([field(f, 'OBR', 25), field(f, 'OBR', 32)]).toEqual(['F', 'r1&Dr Ada Example&&&&&&&Practitioner']);
    expect(f.getAllSegments('OBX').map((s) => s.getField(11).toString())).toEqual(['F', 'F', 'F']);
    expect(field(f, 'MSH', 10)).toBe(controlIdOf(signed.id));
    const corrected: SignedEvent = { ...signed, kind: 'corrected', id: `${base.reportKey}:2`, seq: 2, reason: 'laterality', mode: 'addendum', addenda: ['Follow-up advised.'] };
    const c = built(corrected);
    expect(field(c, 'OBR', 25)).toBe('C');
    expect(c.getAllSegments('OBX').map((s) => [s.getField(3).toString(), s.getField(11).toString()])).toEqual([
      ['AIDRAFT^AI draft status^L', 'C'], ['18782-3^Radiology Study observation (narrative)^LN', 'C'],
      ['19005-8^Radiology Imaging study [Impression] (narrative)^LN', 'C'], ['ADDENDUM^Addendum^L', 'C'],
    ]);
    expect(c.getAllSegments('NTE').map((s) => unescapeText(s.getField(3).toString()))).toContain('Reason: laterality');
  });

  it('withdraws a rejected draft by deleting its observations (D), or posting them as wrong (W) without the AI text', () => {
    const rejected: ReportEvent = { ...base, kind: 'rejected', id: `${base.reportKey}:1`, seq: 1, reason: 'wrong side', by: signed.by, reviewedVersion: '2' };
    const d = built(rejected);
    expect(field(d, 'OBR', 25)).toBe('C');
    expect(d.getAllSegments('OBX').map((s) => [s.getField(11).toString(), s.getField(5).toString() === '' ? 'empty' : 'text'])).toEqual([['D', 'text'], ['D', 'empty'], ['D', 'empty']]);
    const w = built(rejected, { ...options, withdrawAs: 'W' });
    expect(w.getAllSegments('OBX').map((s) => s.getField(11).toString())).toEqual(['W', 'W', 'W']);
    expect(w.toString()).not.toContain('Heart size normal');
  });

  it('names the draft\'s review flags and sentence flags in NTEs, and its critical findings apart as unverified suspicions', () => {
    const flagged: DraftedEvent = {
      ...drafted, draft: {
        ...drafted.draft, urgent: { findings: ['pneumothorax'] },
        sentenceFlags: [
          { section: 'impression', sentence: 'No change.', kind: 'comparison', why: 'cites a prior exam the model was not given' },
          { section: 'findings', sentence: 'Right pneumothorax.', kind: 'urgent', why: 'a critical finding' },
        ],
      },
    };
    const origin = originOf(flagged)!;
    expect(origin.flags).toEqual(['reply cut at the token limit', 'comparison in the impression: "No change." (cites a prior exam the model was not given)']);
    expect(origin.urgent).toEqual(['pneumothorax']);
    const m = Hl7Message.parse(buildOru({ event: flagged, study, origin, software }, options));
    expect(m.getAllSegments('NTE').map((n) => unescapeText(n.getField(3)?.toString() ?? ''))).toEqual([
      'AI model lingshu-7b, prompt medevalkit-report-1; raddraft 0.1.0', 'Review flag: reply cut at the token limit',
      'Review flag: comparison in the impression: "No change." (cites a prior exam the model was not given)',
      'Unverified AI suspicion of a critical finding: pneumothorax',
    ]);
  });

  it('refuses a study without Patient ID or accession, since the RIS could not file the result', () => {
    expect(() => buildOru({ event: drafted, study: { ...study, patientId: undefined }, origin, software }, options)).toThrow(OruInputError);
    expect(() => buildOru({ event: drafted, study: { ...study, accession: undefined }, origin, software }, options)).toThrow(/Accession Number/);
  });

  it('derives one control ID of at most 20 characters per event, the same on every retry', () => {
    expect(controlIdOf(drafted.id)).toBe(controlIdOf(`${base.reportKey}:0`));
    expect(controlIdOf(drafted.id)).not.toBe(controlIdOf(signed.id));
    expect(controlIdOf(drafted.id)).toMatch(/^RD[A-Z2-7]{18}$/);
  });
});

describe('HL7 text and ACKs', () => {
  it('escapes every delimiter and unescapes them back, with line breaks and hexadecimal data', () => {
    const text = 'a|b^c&d~e\\f';
    expect(escapeText(text)).toBe('a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f');
    expect(unescapeText(escapeText(text))).toBe(text);
    expect(unescapeText('one\\.br\\two \\XE9\\ \\H\\bold\\N\\')).toBe('one\ntwo é bold');
  });

  it('reads AA/AE/AR with the receiver\'s text from MSA-3 and ERR', () => {
    const m = Hl7Message.parse('MSH|^~\\&|RIS|H|RADDRAFT|RAD|20261201||ACK^R01^ACK|9|P|2.5.1\rMSA|AE|RDX|Bad order\rERR||OBR^1^3|204^Unknown key identifier^HL70357|E||||order not found');
    expect(readAck(m)).toEqual({ code: 'AE', controlId: 'RDX', text: 'Bad order; Unknown key identifier; order not found' });
    expect(readAck(Hl7Message.parse('MSH|^~\\&|A|B|C|D|1||ACK|1|P|2.5.1\rMSA|ZZ|RDX'))).toBeUndefined();
  });

  it('answers a message with its control ID and an ERR naming the code, place and reason', () => {
    const received = Hl7Message.parse('MSH|^~\\&|RIS|HOSP|RADDRAFT|RAD|20261201||ORU^R01|CTL7|P|2.5.1');
    const ack = ackFor(received, 'AE', { code: ErrorCode.unknownKey, location: 'OBR^1^3', message: 'no study has this accession' });
    expect(ack.getSegment('MSA')!.toString()).toBe('MSA|AE|CTL7|no study has this accession');
    expect(ack.getSegment('ERR')!.toString()).toBe('ERR||OBR^1^3|204^Unknown key identifier^HL70357|E||||no study has this accession');
    expect(ackFor(undefined, 'AR', { code: ErrorCode.segmentSequence, message: 'not HL7' }).getSegment('MSA')!.toString()).toBe('MSA|AR||not HL7');
  });

  it('reads mllp:// and mllps:// destinations and nothing else', () => {
    expect(parseMllpUrl('mllp://ris.example:2575')).toEqual({ tls: false, host: 'ris.example', port: 2575 });
    expect(parseMllpUrl('mllps://[::1]:6661')).toEqual({ tls: true, host: '::1', port: 6661 });
    expect(parseMllpUrl('http://ris.example:2575')).toBeUndefined();
    expect(parseMllpUrl('mllp://ris.example:70000')).toBeUndefined();
  });
});

describe('MLLP framing of the listener', () => {
  const block = (s: string) => Buffer.concat([Buffer.from([0x0b]), Buffer.from(s), Buffer.from([0x1c, 0x0d])]);

  it('finds blocks split across chunks and several in one chunk', () => {
    const d = new MllpDeframer(100);
    const two = Buffer.concat([block('first'), block('second')]);
    expect(d.push(two.subarray(0, 4)).length).toBe(0);
    expect(d.partial).toBe(true);
    const events = d.push(two.subarray(4));
    expect(events.map((e) => (e.kind === 'frame' ? e.bytes.toString() : e.kind))).toEqual(['first', 'second']);
    expect(d.push(Buffer.from('\r\n')).length).toBe(0);
  });

  it('reports bytes outside a block and a block past the limit, keeping at most the limit', () => {
    expect(new MllpDeframer(100).push(Buffer.from('GET / HTTP/1.1\r\n'))).toEqual([{ kind: 'garbage', bytes: Buffer.from('GET / HTTP/1.1\r\n') }]);
    const d = new MllpDeframer(10);
    expect(d.push(Buffer.from([0x0b, ...Buffer.from('0123456')])).length).toBe(0);
    const [event] = d.push(Buffer.from('789abc'));
    expect(event).toEqual({ kind: 'oversize', head: Buffer.from('0123456789') });
  });
});

describe('decoding and reading a final report', () => {
  const oru = (obr25: string, extra = '') => [
    'MSH|^~\\&|RIS|HOSP|RADDRAFT|RAD|20261201||ORU^R01^ORU_R01|CTL1|P|2.5.1',
    'PID|1||123^^^HOSP', `OBR|1||ACC1|^XR CHEST|||||||||||||||||||||${obr25}|||||||r7&Radiologist&Rita`,
    'OBX|1|TX|18782-3^Findings^LN|1|Lungs clear.~No effusion.||||||F', 'OBX|2|TX|19005-8^Impression^LN|1|Normal.||||||F', extra,
  ].filter(Boolean).join('\r');

  it('reads the final report, its accession and its coded sections', () => {
    const report = readFinalReport(Hl7Message.parse(oru('F')));
    expect(report).toMatchObject({ messageType: 'ORU^R01', controlId: 'CTL1', facility: 'HOSP', accessions: ['ACC1'], findings: 'Lungs clear.\nNo effusion.', impression: 'Normal.', signer: 'Rita Radiologist', status: 'F' });
    expect(readFinalReport(Hl7Message.parse(oru('F', 'ZDS|1.2.3.4^RADDRAFT^Application^DICOM')))).toMatchObject({ studyUid: '1.2.3.4' });
  });

  it('refuses a report that is not final, has no text, or names no order, each with the field at fault', () => {
    expect(readFinalReport(Hl7Message.parse(oru('P')))).toMatchObject({ ack: 'AE', problem: { location: 'OBR^1^25' } });
    const noText = oru('F').split('\r').filter((s) => !s.startsWith('OBX')).join('\r');
    expect(readFinalReport(Hl7Message.parse(noText))).toMatchObject({ ack: 'AE', problem: { code: ErrorCode.requiredField, location: 'OBX^1^5' } });
    expect(readFinalReport(Hl7Message.parse(oru('F').replace('|ACC1|', '||')))).toMatchObject({ ack: 'AE', problem: { location: 'OBR^1^3' } });
  });

  it('refuses other message types, versions and processing IDs in the header (AR)', () => {
    expect(checkHeader(Hl7Message.parse(oru('F').replace('ORU^R01^ORU_R01', 'ADT^A01')))).toMatchObject({ ack: 'AR', problem: { code: ErrorCode.unsupportedMessageType } });
    expect(checkHeader(Hl7Message.parse(oru('F').replace('|P|2.5.1', '|T|2.5.1')))).toMatchObject({ ack: 'AR', problem: { code: ErrorCode.unsupportedProcessingId } });
    expect(checkHeader(Hl7Message.parse(oru('F').replace('|P|2.5.1', '|P|3.0')))).toMatchObject({ ack: 'AR', problem: { code: ErrorCode.unsupportedVersion } });
  });

  it('decodes UTF-8 and Latin-1 by MSH-18 and names the first byte that is neither', () => {
    const bytes = Buffer.concat([Buffer.from('MSH|^~\\&|RIS|HOSP|||1||ORU^R01|C|P|2.5.1\rOBX|1|TX|||caf'), Buffer.from([0xe9, 0x21])]);
    expect(peekHeader(bytes)).toMatchObject({ facility: 'HOSP', controlId: 'C', charset: '' });
    expect(decodeText(bytes, '')).toMatchObject({ ack: 'AE', problem: { code: ErrorCode.dataType, location: 'OBX^1' } });
    expect(decodeText(bytes, '8859/1')).toEqual({ text: `${bytes.subarray(0, -2).toString()}é!` });
    expect(decodeText(bytes, 'ISO IR87')).toMatchObject({ ack: 'AR', problem: { location: 'MSH^1^18' } });
    expect(peekHeader(Buffer.from('hello'))).toBeUndefined();
  });
});
