import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import dcmjs from 'dcmjs';
import { seededRandom } from '../seeded-random.js';

dcmjs.log.setLevel('error');

/**
 * Synthetic studies for the demo and the tests: chest radiograph phantoms at realistic size and depth (lungs,
 * mediastinum, heart, spine, ribs, clavicles, diaphragm), plus a CT and a hand radiograph that raddraft must leave
 * alone. Patient details are invented. Output is deterministic: the same bytes on every run.
 */

/** A deterministic DICOM UID under the UUID-derived root 2.25 (PS3.5 B.2). */
export function fixtureUid(name: string): string {
  const hex = createHash('sha256').update(`raddraft-fixture:${name}`).digest('hex').slice(0, 32);
  return `2.25.${BigInt(`0x${hex}`).toString()}`;
}

const prng = seededRandom;

type Density = (x: number, y: number) => number;

const inEllipse = (x: number, y: number, cx: number, cy: number, rx: number, ry: number) =>
  ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1;

/** Frontal chest: 1 is dense (bone), 0 is air. Coordinates are fractions of width and height. */
export const LANDMARKS = {
  rightLung: { x: 0.32, y: 0.45 },
  leftLung: { x: 0.68, y: 0.45 },
  mediastinum: { x: 0.5, y: 0.5 },
};

const frontalChest: Density = (x, y) => {
  let d = 0.04;
  if (inEllipse(x, y, 0.5, 0.56, 0.44, 0.5)) d = 0.5;
  if (y > 0.74 && inEllipse(x, y, 0.5, 0.56, 0.44, 0.5)) d = 0.62;
  const lung = inEllipse(x, y, 0.32, 0.45, 0.15, 0.29) || inEllipse(x, y, 0.68, 0.45, 0.15, 0.29);
  if (lung && y < 0.72) {
    d = 0.16 + 0.06 * (0.72 - y);
    for (let k = 0; k < 10; k++) {
      const ribY = 0.2 + k * 0.052 + 0.035 * Math.cos((x - 0.5) * 5);
      if (Math.abs(y - ribY) < 0.009) d += 0.14;
    }
  }
  if (inEllipse(x, y, 0.5, 0.5, 0.085, 0.2) || inEllipse(x, y, 0.57, 0.6, 0.14, 0.12)) d = Math.max(d, 0.7);
  if (Math.abs(x - 0.5) < 0.028 && y > 0.08) d = Math.max(d, 0.82);
  for (const side of [-1, 1]) {
    const cy = 0.17 + 0.03 * Math.abs(x - 0.5);
    if (Math.abs(y - cy) < 0.011 && side * (x - 0.5) > 0.03 && side * (x - 0.5) < 0.28) d = Math.max(d, 0.85);
  }
  return d;
};

const lateralChest: Density = (x, y) => {
  let d = 0.04;
  if (inEllipse(x, y, 0.5, 0.55, 0.36, 0.5)) d = 0.5;
  if (inEllipse(x, y, 0.48, 0.45, 0.24, 0.3) && y < 0.72) d = 0.2;
  if (inEllipse(x, y, 0.4, 0.58, 0.14, 0.13)) d = Math.max(d, 0.68);
  if (x > 0.7 && x < 0.76 && y > 0.08) d = Math.max(d, 0.84);
  if (y > 0.74 && inEllipse(x, y, 0.5, 0.55, 0.36, 0.5)) d = 0.62;
  return d;
};

const hand: Density = (x, y) => {
  let d = 0.04;
  if (inEllipse(x, y, 0.5, 0.7, 0.26, 0.22)) d = 0.45;
  for (let f = 0; f < 4; f++) {
    const cx = 0.32 + f * 0.12;
    if (Math.abs(x - cx) < 0.045 && y > 0.12 + Math.abs(f - 1.5) * 0.05 && y < 0.62) d = 0.45;
    if (Math.abs(x - cx) < 0.018 && y > 0.15 + Math.abs(f - 1.5) * 0.05 && y < 0.85) d = 0.85;
  }
  if (inEllipse(x, y, 0.2, 0.6, 0.05, 0.16)) d = 0.45;
  return d;
};

const ctSlice: Density = (x, y) => {
  let d = 0;
  if (inEllipse(x, y, 0.5, 0.5, 0.42, 0.32)) d = 0.5;
  if (inEllipse(x, y, 0.33, 0.48, 0.13, 0.2) || inEllipse(x, y, 0.67, 0.48, 0.13, 0.2)) d = 0.12;
  if (inEllipse(x, y, 0.5, 0.72, 0.05, 0.05)) d = 0.9;
  return d;
};

interface ImageSpec {
  name: string;
  width: number;
  height: number;
  bitsStored: number;
  /** 16 unless given; 8 for a byte-per-pixel image (JPEG baseline can hold nothing else). */
  bitsAllocated?: 8 | 16;
  photometric: 'MONOCHROME1' | 'MONOCHROME2';
  density: Density;
  window?: { center: number; width: number };
  rescale?: { slope: number; intercept: number };
  signed?: boolean;
  tags: Record<string, unknown>;
}

function pixels(spec: ImageSpec, seed: number): Uint16Array | Uint8Array {
  const { width, height, bitsStored } = spec;
  const max = (1 << bitsStored) - 1;
  const out = spec.bitsAllocated === 8 ? new Uint8Array(width * height) : new Uint16Array(width * height);
  const rnd = prng(seed);
  for (let j = 0; j < height; j++) {
    const y = j / height;
    for (let i = 0; i < width; i++) {
      const x = i / width;
      const d = Math.min(1, Math.max(0, spec.density(x, y) + (rnd() - 0.5) * 0.02 + 0.03 * (x - 0.5)));
      let v = Math.round(d * max);
      if (spec.photometric === 'MONOCHROME1') v = max - v;
      out[j * width + i] = spec.signed ? (v - (1 << (bitsStored - 1))) & 0xffff : v;
    }
  }
  return out;
}

function part10(dataset: Record<string, unknown>, sopClassUid: string, sopInstanceUid: string): Buffer {
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: sopClassUid,
    MediaStorageSOPInstanceUID: sopInstanceUid,
    TransferSyntaxUID: '1.2.840.10008.1.2.1',
    ImplementationClassUID: '2.25.80302813137786398554742050926734630921',
    ImplementationVersionName: 'RADDRAFT_FIXT',
  };
  const dict = new dcmjs.data.DicomDict(dcmjs.data.DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = dcmjs.data.DicomMetaDictionary.denaturalizeDataset(dataset);
  return Buffer.from(dict.write());
}

const SOP = { cr: '1.2.840.10008.5.1.4.1.1.1', dx: '1.2.840.10008.5.1.4.1.1.1.1', ct: '1.2.840.10008.5.1.4.1.1.2' };

export type { ImageSpec };

export interface StudySpec {
  key: string;
  patient: { name: string; id: string; birthDate: string; sex: string };
  accession: string;
  description: string;
  date: string;
  time: string;
  modality: 'DX' | 'CR' | 'CT';
  series: { key: string; number: number; description: string; images: ImageSpec[] }[];
}

/** The made-up patient details of the fixtures; tests check that none of them reaches a log line. */
export const FIXTURE_PHI = {
  names: ['DOE^JANE', 'ROE^RICHARD', 'POE^EDGAR', 'MOE^MARY'],
  ids: ['RDX-PHI-100123', 'RDX-PHI-100456', 'RDX-PHI-100789', 'RDX-PHI-100999'],
  birthDates: ['19610214', '19480530', '19721103', '19850719'],
  accessions: ['ACC-PHI-47110', 'ACC-PHI-47120', 'ACC-PHI-47130', 'ACC-PHI-47140'],
};

const P = FIXTURE_PHI;
const STUDY_DATE = '20260301';

export const FIXTURE_STUDIES: StudySpec[] = [
  {
    key: 'chest-pa-lat', patient: { name: P.names[0]!, id: P.ids[0]!, birthDate: P.birthDates[0]!, sex: 'F' },
    accession: P.accessions[0]!, description: 'XR CHEST PA AND LATERAL', date: STUDY_DATE, time: '081500', modality: 'DX',
    series: [
      { key: 'pa', number: 1, description: 'CHEST PA', images: [{
        name: 'pa', width: 2048, height: 2500, bitsStored: 12, photometric: 'MONOCHROME2', density: frontalChest,
        window: { center: 1900, width: 3600 }, tags: { ViewPosition: 'PA', BodyPartExamined: 'CHEST', ImageLaterality: 'U' },
      }] },
      { key: 'lat', number: 2, description: 'CHEST LATERAL', images: [{
        name: 'lat', width: 2500, height: 2500, bitsStored: 12, photometric: 'MONOCHROME2', density: lateralChest,
        window: { center: 1900, width: 3600 }, tags: { ViewPosition: 'LL', BodyPartExamined: 'CHEST', ImageLaterality: 'U' },
      }] },
    ],
  },
  {
    key: 'chest-ap-mono1', patient: { name: P.names[1]!, id: P.ids[1]!, birthDate: P.birthDates[1]!, sex: 'M' },
    accession: P.accessions[1]!, description: 'XR CHEST PORTABLE', date: STUDY_DATE, time: '093000', modality: 'CR',
    series: [{ key: 'ap', number: 1, description: 'PORTABLE CHEST', images: [{
      name: 'ap', width: 2800, height: 2304, bitsStored: 14, photometric: 'MONOCHROME1', density: frontalChest,
      rescale: { slope: 1, intercept: 0 }, tags: { ViewPosition: 'AP', BodyPartExamined: 'CHEST' },
    }] }],
  },
  {
    key: 'ct-chest', patient: { name: P.names[2]!, id: P.ids[2]!, birthDate: P.birthDates[2]!, sex: 'M' },
    accession: P.accessions[2]!, description: 'CT CHEST WITHOUT CONTRAST', date: STUDY_DATE, time: '101500', modality: 'CT',
    series: [{ key: 'axial', number: 1, description: 'AXIAL 5MM', images: [0, 1, 2].map((k) => ({
      name: `slice${k}`, width: 512, height: 512, bitsStored: 12, photometric: 'MONOCHROME2' as const, density: ctSlice,
      signed: true, rescale: { slope: 1, intercept: -1024 }, window: { center: -600, width: 1500 },
      tags: { BodyPartExamined: 'CHEST', ImagePositionPatient: [0, 0, -5 * k], SliceThickness: 5 },
    })) }],
  },
  {
    key: 'hand-dx', patient: { name: P.names[3]!, id: P.ids[3]!, birthDate: P.birthDates[3]!, sex: 'F' },
    accession: P.accessions[3]!, description: 'XR HAND 2 VIEWS LEFT', date: STUDY_DATE, time: '111500', modality: 'DX',
    series: [{ key: 'hand', number: 1, description: 'HAND PA', images: [{
      name: 'hand', width: 2000, height: 2500, bitsStored: 12, photometric: 'MONOCHROME2', density: hand,
      window: { center: 2000, width: 3800 }, tags: { ViewPosition: 'PA', BodyPartExamined: 'HAND', ImageLaterality: 'L' },
    }] }],
  },
];

export interface WrittenStudy {
  key: string;
  studyUid: string;
  modality: string;
  eligible: boolean;
  files: string[];
}

/** Writes the fixture studies under `dir/<study key>/` and returns what was written. */
export async function writeFixtureStudies(dir: string, studies: StudySpec[] = FIXTURE_STUDIES): Promise<WrittenStudy[]> {
  const written: WrittenStudy[] = [];
  for (const study of studies) {
    const studyUid = fixtureUid(study.key);
    const files: string[] = [];
    const studyDir = path.join(dir, study.key);
    await mkdir(studyDir, { recursive: true });
    for (const series of study.series) {
      const seriesUid = fixtureUid(`${study.key}/${series.key}`);
      let instanceNumber = 1;
      for (const img of series.images) {
        const sopUid = fixtureUid(`${study.key}/${series.key}/${img.name}`);
        const sopClass = study.modality === 'CT' ? SOP.ct : study.modality === 'CR' ? SOP.cr : SOP.dx;
        // Noise seeded by series and image name alone, so that a twin written under another study key (the
        // MONOCHROME2 twin of the MONOCHROME1 AP) carries the same noise.
        const data = pixels(img, parseInt(createHash('sha256').update(`${series.key}/${img.name}`).digest('hex').slice(0, 8), 16));
        const dataset: Record<string, unknown> = {
          SpecificCharacterSet: 'ISO_IR 100',
          ImageType: ['ORIGINAL', 'PRIMARY'],
          SOPClassUID: sopClass,
          SOPInstanceUID: sopUid,
          StudyDate: study.date,
          SeriesDate: study.date,
          StudyTime: study.time,
          AccessionNumber: study.accession,
          Modality: study.modality,
          Manufacturer: 'raddraft phantom',
          StudyDescription: study.description,
          SeriesDescription: series.description,
          PatientName: study.patient.name,
          PatientID: study.patient.id,
          PatientBirthDate: study.patient.birthDate,
          PatientSex: study.patient.sex,
          StudyInstanceUID: studyUid,
          SeriesInstanceUID: seriesUid,
          StudyID: '1',
          SeriesNumber: series.number,
          InstanceNumber: instanceNumber++,
          SamplesPerPixel: 1,
          PhotometricInterpretation: img.photometric,
          Rows: img.height,
          Columns: img.width,
          BitsAllocated: img.bitsAllocated ?? 16,
          BitsStored: img.bitsStored,
          HighBit: img.bitsStored - 1,
          PixelRepresentation: img.signed ? 1 : 0,
          ...(study.modality !== 'CT' ? { PresentationIntentType: 'FOR PRESENTATION', PixelSpacing: [0.15, 0.15] } : { PixelSpacing: [0.7, 0.7] }),
          ...(img.window ? { WindowCenter: img.window.center, WindowWidth: img.window.width } : {}),
          ...(img.rescale ? { RescaleSlope: img.rescale.slope, RescaleIntercept: img.rescale.intercept, RescaleType: 'US' } : {}),
          ...img.tags,
          PixelData: [data.buffer],
          _vrMap: { PixelData: img.bitsAllocated === 8 ? 'OB' : 'OW' },
        };
        const file = path.join(studyDir, `${series.key}-${img.name}.dcm`);
        await writeFile(file, part10(dataset, sopClass, sopUid));
        files.push(file);
      }
    }
    written.push({ key: study.key, studyUid, modality: study.modality, eligible: study.key.startsWith('chest'), files });
  }
  return written;
}
