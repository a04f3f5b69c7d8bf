import { PermanentError } from '../util/faults.js';
import { Tag, str, type DicomJson } from './tags.js';

/**
 * What an SR or KOS copies from the study it joins: the Patient, General Study and Patient Study modules exactly as
 * the source instances carry them (never made up: a missing type 2 attribute is written empty), and the SOP Class of
 * each image it references.
 */
export interface SrSource {
  /** DICOM JSON elements of the copied modules. */
  modules: DicomJson;
  /** SOP Class UID by SOP Instance UID, for the instances of the study. */
  sopClasses: Map<string, string>;
  /** Institution Name of the source, if any (the organisation a verifying observer signs for). */
  institution: string | undefined;
  /** The patient identifiers the copy carries, for scrubbing from anything a receiver answers. */
  identifiers: string[];
}

const IDENTIFYING = ['00100010', '00100020', '00100030', '00080050'] as const;

/** Every string value of the identifying elements (each component group of a person name too). */
function identifiersOf(modules: DicomJson): string[] {
  const out: string[] = [];
  for (const tag of IDENTIFYING) {
    const values = (modules[tag] as { Value?: unknown[] } | undefined)?.Value ?? [];
    for (const v of values) {
      if (typeof v === 'string') out.push(v);
      else if (v && typeof v === 'object') out.push(...Object.values(v).filter((x): x is string => typeof x === 'string'));
    }
  }
  return out.filter((v) => v.trim().length > 1);
}

/** Patient module (C.7.1.1), General Study (C.7.2.1), Patient Study (C.7.2.2): the attributes a copy carries. */
const COPIED = [
  // Patient
  '00100010', '00100020', '00100021', '00100022', '00100024', '00100030', '00100032', '00100040', '00101002',
  '00102160', '00102201', '00102202', '00104000', '00100200',
  // General Study
  '0020000D', '00080020', '00080030', '00080090', '00080096', '00200010', '00080050', '00080051', '00081030',
  '00081032', '00081048', '00081049', '00081060', '00081062', '00321034',
  // Patient Study
  '00101010', '00101020', '00101030', '001021B0', '00380500',
] as const;

/** Type 2 attributes of those modules: present, and empty when the source has no value. */
const TYPE2: Record<string, string> = {
  '00100010': 'PN', '00100020': 'LO', '00100030': 'DA', '00100040': 'CS',
  '00080020': 'DA', '00080030': 'TM', '00080090': 'PN', '00200010': 'SH', '00080050': 'SH',
};

/** An element that is only a reference to bulk data elsewhere cannot be copied into a new object. */
function copyable(el: unknown): boolean {
  return !!el && typeof el === 'object' && typeof (el as { vr?: unknown }).vr === 'string' && !('BulkDataURI' in el);
}

/**
 * The modules of one study from its instances' metadata. The images the report is about come first as the copy's
 * source; any other instance of the study (raddraft's own earlier SR included, itself a copy) serves when they are
 * gone. Throws a PermanentError naming the study when it holds no instance at all.
 */
export function srSourceOf(studyUid: string, metadata: DicomJson[], preferred: readonly string[] = []): SrSource {
  const ofStudy = metadata.filter((ds) => str(ds, Tag.StudyInstanceUID) === studyUid);
  if (!ofStudy.length) {
    throw new PermanentError(`study ${studyUid} has no instances at the source (PACS or pushed instances), so raddraft has no patient and study details to copy into its SR`);
  }
  const sopClasses = new Map<string, string>();
  for (const ds of ofStudy) {
    const sop = str(ds, Tag.SOPInstanceUID);
    const cls = str(ds, Tag.SOPClassUID);
    if (sop && cls) sopClasses.set(sop, cls);
  }
  const source = ofStudy.find((ds) => preferred.includes(str(ds, Tag.SOPInstanceUID) ?? '')) ?? ofStudy[0]!;
  const modules: DicomJson = {};
  for (const tag of COPIED) {
    const el = source[tag];
    if (copyable(el)) modules[tag] = el;
    else if (TYPE2[tag]) modules[tag] = { vr: TYPE2[tag], Value: [] };
  }
  return { modules, sopClasses, institution: str(source, '00080080'), identifiers: identifiersOf(modules) };
}
