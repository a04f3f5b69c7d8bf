/**
 * Reading the DICOM JSON model (PS3.18 F.2) returned by QIDO-RS and WADO-RS metadata. Every value arrives as
 * `unknown`; these accessors return a typed value or undefined and never throw on a malformed element.
 */
export type DicomJson = Record<string, unknown>;

export const Tag = {
  SpecificCharacterSet: '00080005',
  ImageType: '00080008',
  SOPClassUID: '00080016',
  SOPInstanceUID: '00080018',
  StudyDate: '00080020',
  StudyTime: '00080030',
  AccessionNumber: '00080050',
  IssuerOfAccessionNumberSequence: '00080051',
  Modality: '00080060',
  ModalitiesInStudy: '00080061',
  StudyDescription: '00081030',
  SeriesDescription: '0008103E',
  PatientName: '00100010',
  PatientID: '00100020',
  IssuerOfPatientID: '00100021',
  PatientBirthDate: '00100030',
  PatientSex: '00100040',
  BodyPartExamined: '00180015',
  ProtocolName: '00181030',
  ViewPosition: '00185101',
  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  SeriesNumber: '00200011',
  InstanceNumber: '00200013',
  ImageLaterality: '00200062',
  NumberOfStudyRelatedSeries: '00201206',
  NumberOfStudyRelatedInstances: '00201208',
  PresentationIntentType: '00080068',
  AcquisitionDate: '00080022',
  AcquisitionTime: '00080032',
  AcquisitionDateTime: '0008002A',
  BurnedInAnnotation: '00280301',
  Laterality: '00200060',
  Rows: '00280010',
  Columns: '00280011',
  NumberOfFrames: '00280008',
  ViewCodeSequence: '00540220',
  CodeValue: '00080100',
  CodeMeaning: '00080104',
  TransferSyntaxUID: '00020010',
  AvailableTransferSyntaxUID: '00083002',
} as const;

function element(ds: DicomJson, tag: string): { Value?: unknown[] } | undefined {
  const el = ds[tag];
  if (!el || typeof el !== 'object') return undefined;
  const value = (el as { Value?: unknown }).Value;
  return Array.isArray(value) ? { Value: value } : {};
}

/** All string values of an element (backslash-separated values arrive as separate array items). */
export function strings(ds: DicomJson, tag: string): string[] {
  const values = element(ds, tag)?.Value ?? [];
  const out: string[] = [];
  for (const v of values) {
    if (typeof v === 'string') out.push(v.trim());
    else if (typeof v === 'number') out.push(String(v));
    else if (v && typeof v === 'object' && typeof (v as { Alphabetic?: unknown }).Alphabetic === 'string') {
      out.push(((v as { Alphabetic: string }).Alphabetic).trim());
    }
  }
  return out.filter((s) => s.length > 0);
}

export function str(ds: DicomJson, tag: string): string | undefined {
  return strings(ds, tag)[0];
}

export function num(ds: DicomJson, tag: string): number | undefined {
  const v = element(ds, tag)?.Value?.[0];
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

export function sequence(ds: DicomJson, tag: string): DicomJson[] {
  return (element(ds, tag)?.Value ?? []).filter((v): v is DicomJson => !!v && typeof v === 'object' && !Array.isArray(v));
}

/** DICOM DA + TM → ISO 8601 date-time (local time, no zone: DICOM studies carry none unless TimezoneOffset is set). */
export function dicomDateTime(date: string | undefined, time: string | undefined): string | undefined {
  if (!date || !/^\d{8}$/.test(date)) return undefined;
  const d = `${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}`;
  const t = time?.match(/^(\d{2})(\d{2})?(\d{2})?/);
  if (!t) return d;
  return `${d}T${t[1]}:${t[2] ?? '00'}:${t[3] ?? '00'}`;
}

const UID = /^[0-9]+(\.[0-9]+)*$/;

export function isUid(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= 64 && UID.test(value);
}
