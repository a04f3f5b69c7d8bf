import type { Coding } from '@medplum/fhirtypes';

/** raddraft's own canonical base for the identifiers and codes it defines. */
export const RADDRAFT_BASE = 'https://raddraft.dev/fhir';

export const System = {
  draftReport: `${RADDRAFT_BASE}/sid/ai-draft-report`,
  reviewTask: `${RADDRAFT_BASE}/sid/ai-draft-review-task`,
  model: `${RADDRAFT_BASE}/sid/model`,
  prompt: `${RADDRAFT_BASE}/sid/prompt`,
  modelCard: `${RADDRAFT_BASE}/sid/model-card`,
  provenanceKey: `${RADDRAFT_BASE}/CodeSystem/provenance-key`,
  auditKey: `${RADDRAFT_BASE}/CodeSystem/audit-key`,
  workflow: `${RADDRAFT_BASE}/CodeSystem/workflow`,
  /** Tags a report with the raddraft report event that last changed it, so a retried delivery knows it landed. */
  reportEvent: `${RADDRAFT_BASE}/CodeSystem/report-event`,
  dicomUid: 'urn:dicom:uid',
  loinc: 'http://loinc.org',
  /** RadLex Playbook procedure codes (RPID). */
  radlex: 'http://www.radlex.org',
  v2_0074: 'http://terminology.hl7.org/CodeSystem/v2-0074',
  v2_0203: 'http://terminology.hl7.org/CodeSystem/v2-0203',
  v3ObservationValue: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue',
  v3DataOperation: 'http://terminology.hl7.org/CodeSystem/v3-DataOperation',
  provenanceParticipantType: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type',
  provenanceEntityRole: 'http://hl7.org/fhir/provenance-entity-role',
  taskCode: 'http://hl7.org/fhir/CodeSystem/task-code',
  aiDeviceType: 'http://hl7.org/fhir/uv/aitransparency/CodeSystem/AIdeviceTypeCS',
  aiInputs: 'http://hl7.org/fhir/uv/aitransparency/CodeSystem/AIinputsCS',
} as const;

export const AI_KIND_EXTENSION = 'http://hl7.org/fhir/uv/aitransparency/StructureDefinition/aitransparency.AIKind';
export const MODEL_CARD_EXTENSION = 'http://hl7.org/fhir/uv/aitransparency/StructureDefinition/aitransparency.modelCardDescription';

/**
 * AIKind codes (AIdeviceTypeCS, current build) that say what the model is: a vision-language model that analyses
 * medical images and writes clinical documentation.
 */
export const AI_KINDS = ['Vision-Language-Models', 'Medical-Image-Analysis', 'AI-for-Medical-Imaging-Data', 'Clinical-Documentation-and-Workflow'] as const;

export const AIAST: Coding = { system: System.v3ObservationValue, code: 'AIAST', display: 'Artificial Intelligence asserted' };
export const REVIEW_REQUIRED: Coding = { system: System.workflow, code: 'review-required', display: 'Radiologist review and signature required' };
/** The IG fixes these codings "exactly": system and code, nothing more (a display would break the fixed value). */
export const AI_DEVICE_TYPE: Coding = { system: System.aiDeviceType, code: 'Artificial-Intelligence' };
export const AI_INPUT_PROMPT: Coding = { system: System.aiInputs, code: 'AIInputPrompt' };
export const AI_MODEL_CARD: Coding = { system: System.aiInputs, code: 'AIModelCard' };
/** A pattern in the IG (not fixed exactly), given there with its display. */
export const AI_MODEL_CARD_MARKDOWN: Coding = { system: System.aiInputs, code: 'AIModelCardMarkdownFormat', display: 'Markdown Format' };

export const ReportCode = {
  twoViews: { system: System.loinc, code: '36643-5', display: 'XR Chest 2 Views' },
  singleView: { system: System.loinc, code: '36554-4', display: 'XR Chest Single View' },
  imaging: { system: System.loinc, code: '18748-4', display: 'Diagnostic imaging study' },
} satisfies Record<string, Coding>;

export const RADIOLOGY_CATEGORY: Coding = { system: System.loinc, code: 'LP29684-5', display: 'Radiology' };
export const RAD_V2: Coding = { system: System.v2_0074, code: 'RAD', display: 'Radiology' };

/** The banner every draft carries, in its text, narrative and attachment. */
export const DRAFT_BANNER = 'AI-generated draft — not reviewed by a radiologist';

/** DICOM UIDs as FHIR identifiers (the convention of ImagingStudy.identifier). */
export function dicomUidIdentifier(uid: string): { system: string; value: string } {
  return { system: System.dicomUid, value: `urn:oid:${uid}` };
}

/** An identifier value may not contain the characters FHIR search treats specially. */
export { keySafe as identifierSafe, reportKey } from '../report/report.js';
