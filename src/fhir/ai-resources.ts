import type { Device, DocumentReference, Provenance, ProvenanceEntity, Reference } from '@medplum/fhirtypes';
import type { DraftRecord, RenderedRecord } from '../report/report.js';
import {
  AIAST, AI_DEVICE_TYPE, AI_INPUT_PROMPT, AI_KIND_EXTENSION, AI_KINDS, AI_MODEL_CARD, AI_MODEL_CARD_MARKDOWN, MODEL_CARD_EXTENSION,
  System, dicomUidIdentifier, identifierSafe,
} from './codes.js';

/** The served model as the site runs it: its name, where it is served, its revision and who answers for it. */
export interface ModelInfo {
  name: string;
  endpoint: string;
  /** The model's revision as the server reports it (vLLM: `root` in GET /v1/models); unknown when it did not say. */
  revision: string | undefined;
  cardUrl: string;
  /** `Organization/<id>` (a reference) or a name. */
  owner: string | undefined;
  /** `mailto:`, `tel:` or a URL. */
  contact: string | undefined;
}

/** The model Device's identifier: its name and, when known, its revision (a new revision is a new Device). */
export function deviceIdentifier(model: ModelInfo): string {
  return identifierSafe(model.revision && model.revision !== model.name ? `${model.name}@${model.revision}` : model.name);
}

function contactPoint(contact: string): NonNullable<Device['contact']>[number] {
  if (contact.startsWith('mailto:')) return { system: 'email', value: contact.slice('mailto:'.length) };
  if (contact.startsWith('tel:')) return { system: 'phone', value: contact.slice('tel:'.length) };
  return { system: 'url', value: contact };
}

/** The AI Transparency IG's AI-Device: type fixed exactly, AIKind codes of the current code system, model card. */
export function modelDevice(model: ModelInfo, modelCardRef: string): Device {
  const { name, endpoint } = model;
  const org = name.includes('/') ? name.split('/')[0] : undefined;
  const short = name.split('/').pop() ?? name;
  return {
    resourceType: 'Device',
    identifier: [{ system: System.model, value: deviceIdentifier(model) }],
    status: 'active',
    type: { coding: [AI_DEVICE_TYPE] },
    extension: [
      ...AI_KINDS.map((code) => ({ url: AI_KIND_EXTENSION, valueCodeableConcept: { coding: [{ system: System.aiDeviceType, code }] } })),
      { url: MODEL_CARD_EXTENSION, valueReference: { reference: modelCardRef } },
    ],
    deviceName: [
      { name: short, type: 'model-name' },
      { name: `${short} chest X-ray report drafting (via raddraft)`, type: 'user-friendly-name' },
    ],
    modelNumber: name,
    ...(model.revision ? { version: [{ value: model.revision }] } : {}),
    ...(org ? { manufacturer: org } : {}),
    ...(model.owner ? { owner: model.owner.startsWith('Organization/') ? { reference: model.owner } : { display: model.owner } } : {}),
    ...(model.contact ? { contact: [contactPoint(model.contact)] } : {}),
    url: endpoint,
  };
}

/** The IG's AI-ModelCard: a link to the card in Markdown (a Hugging Face card is a README.md). */
export function modelCard(model: ModelInfo): DocumentReference {
  return {
    resourceType: 'DocumentReference',
    identifier: [{ system: System.modelCard, value: model.cardUrl }],
    status: 'current',
    type: { coding: [AI_MODEL_CARD] },
    category: [{ coding: [AI_MODEL_CARD_MARKDOWN] }],
    description: `Model card of ${model.name}`,
    content: [{ attachment: { contentType: 'text/markdown', url: model.cardUrl, title: `${model.name} model card` } }],
  };
}

export function promptDocument(promptVersion: string, template: { text: string; description: string }): DocumentReference {
  return {
    resourceType: 'DocumentReference',
    identifier: [{ system: System.prompt, value: promptVersion }],
    status: 'current',
    type: { coding: [AI_INPUT_PROMPT] },
    description: template.description,
    content: [{ attachment: { contentType: 'text/markdown', data: Buffer.from(template.text, 'utf8').toString('base64'), title: promptVersion } }],
  };
}

export interface AiProvenanceInput {
  key: string;
  /** The report's version-specific reference (`DiagnosticReport/<id>/_history/<n>`). */
  target: string;
  device: Reference<Device>;
  prompt: string;
  card: string | undefined;
  imagingStudy: Reference;
  images: RenderedRecord[];
  draft: DraftRecord;
  software: { name: string; version: string };
  owner: string | undefined;
  recorded: string;
  /** Inputs a prompt variant adds (the clinical-context prompt: the order's indication, the patient's age band and sex). */
  contextInputs: { what: Reference; display: string }[];
}

/** Every input the model was given: the study, each image as sent, the prompt, and the model card it runs under. */
function inputs(p: AiProvenanceInput): ProvenanceEntity[] {
  return [
    { role: 'source', what: p.imagingStudy },
    ...p.images.map((img, i) => ({
      role: 'source' as const,
      what: {
        identifier: dicomUidIdentifier(img.sopUid),
        display: `<image_${i + 1}> ${img.view} ${img.width}x${img.height} PNG sha256:${img.sha256}`,
      },
    })),
    ...p.contextInputs.map((c) => ({ role: 'source' as const, what: { ...c.what, display: c.display } })),
    { role: 'derivation', what: { reference: p.prompt, display: `prompt ${p.draft.promptVersion}` } },
    ...(p.card ? [{ role: 'derivation' as const, what: { reference: p.card, display: 'model card' } }] : []),
  ];
}

/**
 * The IG's AI-Provenance for the draft version: the model Device as author (role fixed exactly), raddraft as
 * assembler, every input as an entity. US Core provenance-1: a Device agent names on whose behalf it acted.
 */
export function aiProvenance(p: AiProvenanceInput): Provenance {
  const onBehalfOf = p.owner ? (p.owner.startsWith('Organization/') ? { reference: p.owner } : { display: p.owner }) : { display: `${p.software.name} operator` };
  return {
    resourceType: 'Provenance',
    meta: { tag: [{ system: System.provenanceKey, code: p.key }] },
    target: [{ reference: p.target }],
    occurredDateTime: p.draft.draftedAt,
    recorded: p.recorded,
    reason: [{ coding: [AIAST] }],
    activity: { coding: [{ system: System.v3DataOperation, code: 'CREATE', display: 'create' }] },
    agent: [
      {
        type: { coding: [{ system: System.provenanceParticipantType, code: 'author', display: 'Author' }] },
        role: [{ coding: [AI_DEVICE_TYPE] }],
        who: p.device,
        onBehalfOf,
      },
      {
        type: { coding: [{ system: System.provenanceParticipantType, code: 'assembler', display: 'Assembler' }] },
        who: { display: `${p.software.name} ${p.software.version}` },
      },
    ],
    entity: inputs(p),
  };
}
