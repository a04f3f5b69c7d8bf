import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import dcmjs from 'dcmjs';
import { reportContent, reportTitle } from '../src/dicom/sr-content.js';
import { reportSr, type ReportSrInput } from '../src/dicom/sr-document.js';
import { srSourceOf } from '../src/dicom/sr-source.js';
import { documentUid, seriesUid } from '../src/dicom/sr-uids.js';
import type { DicomJson } from '../src/dicom/tags.js';
import { dciodvfy, dsrdump } from './harness/sr-receivers.js';

const STUDY = '1.2.826.0.1.3680043.8.498.1';
const IMAGE = { seriesUid: `${STUDY}.1`, sopUid: `${STUDY}.1.1`, sopClassUid: '1.2.840.10008.5.1.4.1.1.1.1' };
const NAME = { Alphabetic: 'Müller^Zoë', Ideographic: '山田^太郎' };

const metadata: DicomJson[] = [{
  '0020000D': { vr: 'UI', Value: [STUDY] }, '0020000E': { vr: 'UI', Value: [IMAGE.seriesUid] },
  '00080018': { vr: 'UI', Value: [IMAGE.sopUid] }, '00080016': { vr: 'UI', Value: [IMAGE.sopClassUid] },
  '00100010': { vr: 'PN', Value: [NAME] }, '00100020': { vr: 'LO', Value: ['MRN-1'] }, '00080020': { vr: 'DA', Value: ['20261201'] },
  '00280010': { vr: 'US', Value: [2500] },
}];

function draftInput(eventId: string, revision?: string): ReportSrInput {
  const algorithm = { model: 'lingshu-medical-mllm/Lingshu-7B', revision, promptVersion: 'medevalkit-v1', software: { name: 'raddraft', version: '0.1.0' } };
  const text = { findings: 'Épanchement pleural gauche — modéré.', impression: 'Pleural effusion.', flags: ['the reply was cut off at the token limit'], urgent: ['pneumothorax'], notes: [] };
  return {
    source: srSourceOf(STUDY, metadata, [IMAGE.sopUid]),
    placement: { studyUid: STUDY, sopUid: documentUid(eventId), seriesUid: seriesUid('key', 'draft'), seriesNumber: 9901, seriesDescription: 'AI draft report - unverified', at: new Date('2026-12-01T10:00:00.250Z') },
    software: algorithm.software,
    content: reportContent(reportTitle(2), text, algorithm, true),
    evidence: [IMAGE],
  };
}

const naturalise = (bytes: Buffer) =>
  dcmjs.data.DicomMetaDictionary.naturalizeDataset(dcmjs.data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer).dict);

describe('a draft SR as raddraft writes it', () => {
  let dir: string;
  let file: string;
  const bytes = reportSr(draftInput('key:0'));

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'raddraft-sr-unit-'));
    file = path.join(dir, 'draft.dcm');
    await writeFile(file, bytes);
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps a patient name in any script, in UTF-8 (ISO_IR 192)', () => {
    const ds = naturalise(bytes);
    expect(ds.SpecificCharacterSet).toBe('ISO_IR 192');
    expect(ds.PatientName).toEqual([NAME]);
  });

  it('copies the patient and study modules and invents nothing: an attribute the source lacks is present but empty', () => {
    const ds = naturalise(bytes);
    expect(ds).toMatchObject({ PatientID: 'MRN-1', StudyDate: '20261201', StudyInstanceUID: STUDY });
    expect(ds.AccessionNumber ?? '').toBe('');
    expect(ds.PatientBirthDate ?? '').toBe('');
    expect(ds.Rows).toBeUndefined();
  });

  it('is the same object, byte for byte, every time the same event is written, and another event is another object', () => {
    expect(reportSr(draftInput('key:0')).equals(bytes)).toBe(true);
    const other = naturalise(reportSr(draftInput('key:1')));
    expect(other.SOPInstanceUID).not.toBe(naturalise(bytes).SOPInstanceUID);
    expect(documentUid('key:0')).toMatch(/^2\.25\.[1-9]\d{0,38}$/);
  });

  it('labels the draft\'s urgent findings and review flags as unverified AI text, and passes dciodvfy', async () => {
    const dump = await dsrdump(file);
    expect(dump).toContain('Unverified AI suspicion of a critical finding: pneumothorax');
    expect(dump).toContain('the reply was cut off at the token limit');
    expect(naturalise(bytes).ConceptNameCodeSequence).toEqual([expect.objectContaining({ CodeValue: '36643-5', CodingSchemeDesignator: 'LN', CodeMeaning: 'XR Chest 2 Views' })]);
    expect((await dciodvfy(file)).errors).toEqual([]);
  });

  it('names the model\'s revision, when the model server states it, as the device\'s model and the algorithm\'s version', async () => {
    const revised = path.join(dir, 'revised.dcm');
    await writeFile(revised, reportSr(draftInput('key:0', 'snapshots/5f2c9e1')));
    const dump = await dsrdump(revised);
    expect(dump).toContain('"Device Observer Model Name")="lingshu-medical-mllm/Lingshu-7B (snapshots/5f2c9e1)"');
    expect(dump).toContain('"Algorithm Version")="snapshots/5f2c9e1"');
    expect(await dsrdump(file)).toContain('"Algorithm Version")="lingshu-medical-mllm/Lingshu-7B"');
  });
});
