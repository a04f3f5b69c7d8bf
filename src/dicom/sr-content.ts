import dcmjs, { type CodedConcept, type ContentItem } from 'dcmjs';
import { deviceUid } from './sr-uids.js';

/**
 * The content tree of raddraft's reports: TID 2000 Basic Diagnostic Imaging Report with the AI draft's author as a
 * device observer (TID 1002/1004) and the algorithm as IHE AI Results asks (TID 4019), built with dcmjs's SR
 * content items; and TID 2010 for the IOCM rejection note. Codes are PS3.16's (DCM) and LOINC's.
 */
const { CodedConcept: Coded } = dcmjs.sr.coding;
const { TextContentItem, CodeContentItem, UIDRefContentItem, ContainerContentItem, CompositeContentItem, RelationshipTypes: Rel } = dcmjs.sr.valueTypes;
const { AlgorithmIdentification, LanguageOfContentItemAndDescendants } = dcmjs.sr.templates;

const dcm = (value: string, meaning: string): CodedConcept => new Coded({ value, meaning, schemeDesignator: 'DCM' });

/** raddraft's own codes, for what PS3.16 has no concept of (an AI draft's review flags). */
const RADDRAFT_SCHEME = '99RADDRAFT';
const local = (value: string, meaning: string): CodedConcept => new Coded({ value, meaning, schemeDesignator: RADDRAFT_SCHEME });

export const Codes = {
  findingsSection: dcm('121070', 'Findings'),
  finding: dcm('121071', 'Finding'),
  impressionsSection: dcm('121072', 'Impressions'),
  impression: dcm('121073', 'Impression'),
  comment: dcm('121106', 'Comment'),
  observerType: dcm('121005', 'Observer Type'),
  device: dcm('121007', 'Device'),
  deviceUid: dcm('121012', 'Device Observer UID'),
  deviceName: dcm('121013', 'Device Observer Name'),
  deviceManufacturer: dcm('121014', 'Device Observer Manufacturer'),
  deviceModel: dcm('121015', 'Device Observer Model Name'),
  rejectedForQuality: dcm('113001', 'Rejected for Quality Reasons'),
  keyObjectDescription: dcm('113012', 'Key Object Description'),
  reviewFlags: local('review-flags', 'AI draft review flags'),
  changes: local('changes', 'Corrections and addenda'),
  /** CID 7000 titles for a chest radiograph report, by the number of views the model saw. */
  chestSingleView: new Coded({ value: '36554-4', meaning: 'XR Chest Single view', schemeDesignator: 'LN' }),
  chestTwoViews: new Coded({ value: '36643-5', meaning: 'XR Chest 2 Views', schemeDesignator: 'LN' }),
} as const;

/** The model that wrote a draft, as the report names it. */
export interface AlgorithmInfo {
  /** The served model's id, e.g. `lingshu-medical-mllm/Lingshu-7B`: its name and revision as served. */
  model: string;
  /** The weights the server loaded the model from (vLLM's `root`), when the server states it. */
  revision?: string | undefined;
  promptVersion: string;
  software: { name: string; version: string };
}

/** The text of one report version. Flags and urgent findings appear only in an unverified draft. */
export interface ReportText {
  findings: string;
  impression: string;
  flags: readonly string[];
  urgent: readonly string[];
  /** After signing: why the report was corrected, and its addenda. */
  notes: readonly string[];
}

const contains = (name: CodedConcept, children: ContentItem[]): ContentItem => {
  const item = new ContainerContentItem({ name, relationshipType: Rel.CONTAINS });
  item.ContentSequence = children;
  return item;
};
const text = (name: CodedConcept, value: string, relationshipType: string = Rel.CONTAINS): ContentItem =>
  new TextContentItem({ name, value, relationshipType });

/** TID 1002 with TID 1004: the model as a device observer. */
function deviceObserver(algorithm: AlgorithmInfo): ContentItem[] {
  const obs = Rel.HAS_OBS_CONTEXT;
  const org = algorithm.model.includes('/') ? algorithm.model.split('/')[0] : undefined;
  const short = algorithm.model.split('/').pop() || algorithm.model;
  return [
    new CodeContentItem({ name: Codes.observerType, value: Codes.device, relationshipType: obs }),
    new UIDRefContentItem({ name: Codes.deviceUid, value: deviceUid(algorithm.model), relationshipType: obs }),
    text(Codes.deviceName, `${short} (via ${algorithm.software.name})`, obs),
    ...(org ? [text(Codes.deviceManufacturer, org, obs)] : []),
    text(Codes.deviceModel, algorithm.revision ? `${algorithm.model} (${algorithm.revision})` : algorithm.model, obs),
  ];
}

function sections(report: ReportText, draft: boolean): ContentItem[] {
  const out = [
    contains(Codes.findingsSection, [text(Codes.finding, report.findings || '(none given)')]),
    contains(Codes.impressionsSection, [text(Codes.impression, report.impression || '(none given)')]),
  ];
  if (draft) {
    const flags = [
      'AI-generated draft: unverified; it must be reviewed and signed by a radiologist before clinical use.',
      ...report.urgent.map((f) => `Unverified AI suspicion of a critical finding: ${f}`),
      ...report.flags,
    ];
    out.push(contains(Codes.reviewFlags, flags.map((f) => text(Codes.comment, f))));
  }
  if (report.notes.length) out.push(contains(Codes.changes, report.notes.map((n) => text(Codes.comment, n))));
  return out;
}

/** A chest radiograph report: the document title by the number of distinct views the model saw. */
export function reportTitle(views: number): CodedConcept {
  return views >= 2 ? Codes.chestTwoViews : Codes.chestSingleView;
}

/**
 * The root of a TID 2000 report. The AI author (device observer and TID 4019) stays in every version: the signed
 * report is the radiologist's, who is its Verifying Observer, but its text began as the model's draft.
 */
export function reportContent(title: CodedConcept, report: ReportText, algorithm: AlgorithmInfo, draft: boolean): ContentItem {
  const root = new ContainerContentItem({ name: title, templateID: '2000' });
  root.ContentSequence = [
    ...new LanguageOfContentItemAndDescendants({}),
    ...deviceObserver(algorithm),
    ...new AlgorithmIdentification({
      name: algorithm.model.split('/').pop() || algorithm.model,
      version: algorithm.revision ?? algorithm.model,
      parameters: [`prompt ${algorithm.promptVersion}`, `${algorithm.software.name} ${algorithm.software.version}`],
    }),
    ...sections(report, draft),
  ];
  return root;
}

/** TID 2010: an IOCM rejection note naming the rejected instances. */
export function rejectionContent(reason: string, rejected: readonly { sopClassUid: string; sopUid: string }[]): ContentItem {
  const root = new ContainerContentItem({ name: Codes.rejectedForQuality, templateID: '2010' });
  root.ContentSequence = [
    text(Codes.keyObjectDescription, reason),
    ...rejected.map((r) => {
      const item = new CompositeContentItem({
        name: Codes.rejectedForQuality, relationshipType: Rel.CONTAINS, referencedSOPClassUID: r.sopClassUid, referencedSOPInstanceUID: r.sopUid,
      });
      // TID 2010 references carry no concept name, though dcmjs asks for one to build the item; and PS3.3 names the
      // reference ReferencedSOPSequence where dcmjs writes ReferenceSOPSequence.
      const { ConceptNameCodeSequence: _name, ReferenceSOPSequence: refs, ...rest } = item;
      return { ...rest, ReferencedSOPSequence: refs };
    }),
  ];
  return root;
}
