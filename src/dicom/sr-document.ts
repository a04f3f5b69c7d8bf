import dcmjs, { type ContentItem, type DicomDataset } from 'dcmjs';
import type { SrSource } from './sr-source.js';

/**
 * DICOM objects raddraft stores into a study: a Comprehensive SR for each report version and an IOCM Key Object
 * Selection document that rejects a draft. The data set is built naturalised (dcmjs names), the copied Patient and
 * Study modules are set as the source's DICOM JSON elements, and dcmjs writes Part 10 bytes in UTF-8
 * (ISO_IR 192), so names in any script keep their characters. Every value comes from the report event, so the same
 * event always gives the same bytes.
 */
export const SopClass = {
  comprehensiveSr: '1.2.840.10008.5.1.4.1.1.88.33',
  keyObjectSelection: '1.2.840.10008.5.1.4.1.1.88.59',
} as const;

const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
const IMPLEMENTATION_CLASS_UID = '2.25.80302813137786398554742050926734630921';

/** An instance an object points at. */
export interface InstanceRef {
  seriesUid: string;
  sopUid: string;
  sopClassUid: string;
}

/** Where the new object goes in the study and what it is called there. */
export interface Placement {
  studyUid: string;
  sopUid: string;
  seriesUid: string;
  seriesNumber: number;
  seriesDescription: string;
  /** When the event was recorded: content and creation date-time. */
  at: Date;
}

/** The radiologist who signed, as the Verifying Observer. */
export interface Verifier {
  name: string;
  /** The signing Practitioner's id (`Practitioner/<id>`). */
  id: string;
  organization: string;
  at: Date;
}

export interface ReportSrInput {
  source: SrSource;
  placement: Placement;
  software: { name: string; version: string };
  content: ContentItem;
  /** The images the model saw, and only those. */
  evidence: readonly InstanceRef[];
  /** Set for a signed or corrected report; an unverified draft has none. */
  verifier?: Verifier;
  predecessor?: InstanceRef;
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');
const da = (d: Date) => `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}`;
const tm = (d: Date) => `${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}`;
const dt = (d: Date) => `${da(d)}${tm(d)}+0000`;

/**
 * A display name ("Jane Doe") as a DICOM person name ("Doe^Jane"): the last word as the family name. PN components
 * are separated by ^ and =, and values by \, so the display keeps none of them.
 */
function personName(display: string): string {
  const words = display.replace(/[\\^=]/g, ' ').split(/\s+/).filter(Boolean);
  if (words.length < 2) return (words[0] ?? '').slice(0, 64);
  return `${words.at(-1)}^${words.slice(0, -1).join(' ')}`.slice(0, 64);
}

/** References grouped by series, as the Hierarchical SOP Instance Reference Macro (C.17-3) lists them. */
function hierarchical(studyUid: string, refs: readonly InstanceRef[]): Record<string, unknown>[] {
  const bySeries = new Map<string, InstanceRef[]>();
  for (const r of refs) bySeries.set(r.seriesUid, [...(bySeries.get(r.seriesUid) ?? []), r]);
  return [{
    StudyInstanceUID: studyUid,
    ReferencedSeriesSequence: [...bySeries].map(([seriesUid, items]) => ({
      SeriesInstanceUID: seriesUid,
      ReferencedSOPSequence: items.map((r) => ({ ReferencedSOPClassUID: r.sopClassUid, ReferencedSOPInstanceUID: r.sopUid })),
    })),
  }];
}

/** SOP Common, the series and General Equipment: what every object raddraft stores shares. */
function common(sopClassUid: string, modality: string, p: Placement, software: ReportSrInput['software']): Record<string, unknown> {
  return {
    SpecificCharacterSet: 'ISO_IR 192',
    SOPClassUID: sopClassUid,
    SOPInstanceUID: p.sopUid,
    InstanceCreationDate: da(p.at),
    InstanceCreationTime: tm(p.at),
    TimezoneOffsetFromUTC: '+0000',
    Modality: modality,
    SeriesInstanceUID: p.seriesUid,
    SeriesNumber: p.seriesNumber,
    SeriesDescription: p.seriesDescription,
    SeriesDate: da(p.at),
    SeriesTime: tm(p.at),
    ReferencedPerformedProcedureStepSequence: [],
    Manufacturer: software.name,
    ManufacturerModelName: software.name,
    SoftwareVersions: software.version,
    InstanceNumber: 1,
    ContentDate: da(p.at),
    ContentTime: tm(p.at),
  };
}

/** The root content item's attributes sit at the top level of the data set. */
function rootAttributes(root: ContentItem): Record<string, unknown> {
  const { RelationshipType: _unused, ...rest } = root;
  return { ...rest };
}

function verifying(v: Verifier): Record<string, unknown> {
  const id = v.id.replace(/^Practitioner(Role)?\//, '');
  const code = id.length <= 16 ? { CodeValue: id } : { LongCodeValue: id };
  return {
    VerifyingObserverName: personName(v.name),
    VerifyingObserverIdentificationCodeSequence: [{ ...code, CodingSchemeDesignator: '99RADDRAFT', CodeMeaning: v.id.slice(0, 64) }],
    VerifyingOrganization: v.organization.slice(0, 64),
    VerificationDateTime: dt(v.at),
  };
}

/** Part 10 bytes of a naturalised data set plus the copied modules (DICOM JSON, set as they came). */
function write(natural: Record<string, unknown>, copied: SrSource['modules']): Buffer {
  const dataset: DicomDataset = { ...dcmjs.data.DicomMetaDictionary.denaturalizeDataset(natural), ...(copied as DicomDataset) };
  const meta = dcmjs.data.DicomMetaDictionary.denaturalizeDataset({
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: natural.SOPClassUID,
    MediaStorageSOPInstanceUID: natural.SOPInstanceUID,
    TransferSyntaxUID: EXPLICIT_VR_LITTLE_ENDIAN,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: 'RADDRAFT',
  });
  const dict = new dcmjs.data.DicomDict(meta);
  dict.dict = dataset;
  return Buffer.from(dict.write());
}

/** A Comprehensive SR: UNVERIFIED/PARTIAL without a verifier, VERIFIED/COMPLETE with one. */
export function reportSr(input: ReportSrInput): Buffer {
  const { placement: p, verifier } = input;
  const natural: Record<string, unknown> = {
    ...common(SopClass.comprehensiveSr, 'SR', p, input.software),
    CompletionFlag: verifier ? 'COMPLETE' : 'PARTIAL',
    VerificationFlag: verifier ? 'VERIFIED' : 'UNVERIFIED',
    ...(verifier ? { VerifyingObserverSequence: [verifying(verifier)] } : {}),
    ...(input.predecessor ? { PredecessorDocumentsSequence: hierarchical(p.studyUid, [input.predecessor]) } : {}),
    PerformedProcedureCodeSequence: [],
    CurrentRequestedProcedureEvidenceSequence: hierarchical(p.studyUid, input.evidence),
    ...rootAttributes(input.content),
  };
  return write(natural, input.source.modules);
}

export interface RejectionKosInput {
  source: SrSource;
  placement: Placement;
  software: { name: string; version: string };
  content: ContentItem;
  rejected: readonly InstanceRef[];
}

/** An IHE IOCM rejection note: a Key Object Selection document titled "Rejected for Quality Reasons". */
export function rejectionKos(input: RejectionKosInput): Buffer {
  const natural: Record<string, unknown> = {
    ...common(SopClass.keyObjectSelection, 'KO', input.placement, input.software),
    CurrentRequestedProcedureEvidenceSequence: hierarchical(input.placement.studyUid, input.rejected),
    ...rootAttributes(input.content),
  };
  return write(natural, input.source.modules);
}
