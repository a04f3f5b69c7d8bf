import { randomUUID } from 'node:crypto';
import type {
  Bundle, BundleEntry, CodeableConcept, Coding, DiagnosticReport, ImagingStudy, Patient, Reference, ServiceRequest, Task,
} from '@medplum/fhirtypes';
import type { DraftRecord, RenderedRecord } from '../report/report.js';
import { deviceIdentifier, modelCard, modelDevice, promptDocument, type ModelInfo } from './ai-resources.js';
import {
  AIAST, DRAFT_BANNER, RADIOLOGY_CATEGORY, RAD_V2, REVIEW_REQUIRED, ReportCode, System, reportKey,
} from './codes.js';
import { plainText, presentedForm, xhtmlDiv, type ReportDocument } from './presented.js';

/** R4 Task/ServiceRequest priorities, lowest first. */
const PRIORITIES = ['routine', 'urgent', 'asap', 'stat'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** What the order says about the exam: its procedure code and priority (from the ServiceRequest or ImagingStudy). */
export interface OrderFacts {
  code: CodeableConcept | undefined;
  priority: Priority | undefined;
}

/** Everything a draft report is made of, resolved before any resource is built. */
export interface ReportInput {
  studyUid: string;
  /** ISO date-time (with zone) of the study. */
  effective: string;
  /** The patient: a Patient reference, or a logical reference by the study's Patient ID. */
  subject: Reference<Patient>;
  imagingStudy: Reference<ImagingStudy>;
  basedOn: Reference<ServiceRequest> | undefined;
  order: OrderFacts;
  images: RenderedRecord[];
  draft: DraftRecord;
  /** The prompt the model was given (its template, with placeholders for per-study data). */
  prompt: { text: string; description: string };
  model: ModelInfo;
  software: { name: string; version: string };
  /** `partial` (R4: "may be incomplete or unverified"), or `preliminary` where a site's worklists need it. */
  status: 'partial' | 'preliminary';
  /** ISO 639-1 language of the report text. */
  language: string;
  /** What the prompt variant added to the images and the prompt, each a Provenance entity (none for the default). */
  contextInputs?: { what: Reference; display: string }[];
  now: Date;
}

export interface DraftBundle {
  bundle: Bundle;
  key: string;
  fullUrls: { device: string; prompt: string; report: string; task: string; card: string };
}

/** The index of each resource in the draft's transaction (and in the server's answer). */
export const DRAFT_ENTRY = { device: 0, prompt: 1, report: 2, task: 3, card: 4 } as const;

const CODE_SYSTEMS = [System.loinc, System.radlex];

/**
 * The report's code: the order's procedure code (ServiceRequest.code, else ImagingStudy.procedureCode) when it has
 * a LOINC or RadLex Playbook coding; otherwise LOINC's generic diagnostic imaging study. Never guessed from the
 * images sent, which say what the model saw, not what was ordered.
 */
export function reportCode(order: OrderFacts): CodeableConcept {
  const codings: Coding[] = (order.code?.coding ?? []).filter((c) => c.system && CODE_SYSTEMS.includes(c.system as (typeof CODE_SYSTEMS)[number]) && c.code);
  if (codings.length) return { coding: codings, ...(order.code?.text ? { text: order.code.text } : {}) };
  return { coding: [ReportCode.imaging] };
}

/** The review's priority: the order's, raised to `urgent` when the draft asserts a critical finding. */
export function taskPriority(order: OrderFacts, draft: DraftRecord): Priority {
  const fromOrder = order.priority ?? 'routine';
  const urgent = (draft.urgent?.findings.length ?? 0) > 0;
  return urgent && PRIORITIES.indexOf(fromOrder) < PRIORITIES.indexOf('urgent') ? 'urgent' : fromOrder;
}

export function isPriority(value: unknown): value is Priority {
  return typeof value === 'string' && (PRIORITIES as readonly string[]).includes(value);
}

function draftDocument(input: Pick<ReportInput, 'draft' | 'status' | 'language'>): ReportDocument {
  const { draft } = input;
  return {
    headline: [
      `*** ${DRAFT_BANNER.toUpperCase()} ***`,
      `UNVERIFIED (${input.status}). Drafted by ${draft.model} (prompt ${draft.promptVersion}) on ${draft.draftedAt}.`,
      'This text must be reviewed, edited as needed and signed by a radiologist before any clinical use.',
      ...(draft.urgent?.findings.length ? [`Unverified AI suspicion of a critical finding: ${draft.urgent.findings.join(', ')}.`] : []),
    ],
    findings: draft.findings || '(the model gave no findings)',
    impression: draft.impression || '(the model gave no impression)',
    notes: { title: 'REVIEW FLAGS (raddraft checks)', items: draft.flags ?? [] },
    title: `${DRAFT_BANNER} (${input.status})`,
    language: input.language,
    creation: draft.draftedAt,
  };
}

export function draftText(input: Pick<ReportInput, 'draft' | 'status' | 'language'>): string {
  return plainText(draftDocument(input));
}

/**
 * One transaction Bundle: model Device, its model card, prompt DocumentReference, the unverified DiagnosticReport and
 * the review Task. Every entry is a conditional create, so posting the same study twice (a retry, a crash between post
 * and bookkeeping, a server whose transactions are not atomic) never makes a second copy. The AI Provenance follows
 * once the report's version is known, since it points at that version.
 */
export function buildDraftBundle(input: ReportInput): DraftBundle {
  const key = reportKey(input.studyUid, input.model.name);
  const uuid = () => `urn:uuid:${randomUUID()}`;
  const fullUrls = { device: uuid(), prompt: uuid(), report: uuid(), task: uuid(), card: uuid() };
  const { draft } = input;
  const doc = draftDocument(input);

  const report: DiagnosticReport = {
    resourceType: 'DiagnosticReport',
    meta: { security: [AIAST], tag: [REVIEW_REQUIRED] },
    identifier: [{ system: System.draftReport, value: key }],
    ...(input.basedOn ? { basedOn: [input.basedOn] } : {}),
    status: input.status,
    category: [{ coding: [RADIOLOGY_CATEGORY] }, { coding: [RAD_V2] }],
    code: reportCode(input.order),
    subject: input.subject,
    effectiveDateTime: input.effective,
    issued: input.now.toISOString(),
    imagingStudy: [input.imagingStudy],
    conclusion: draft.impression || undefined,
    presentedForm: presentedForm(doc),
    text: { status: 'generated', div: xhtmlDiv(doc) },
  };
  if (!report.conclusion) delete report.conclusion;

  const task: Task = {
    resourceType: 'Task',
    identifier: [{ system: System.reviewTask, value: key }],
    status: 'requested',
    intent: 'order',
    priority: taskPriority(input.order, draft),
    code: { coding: [{ system: System.taskCode, code: 'approve', display: 'Activate/approve the focal resource' }] },
    description: 'Review, edit and sign the AI-generated draft chest X-ray report',
    focus: { reference: fullUrls.report },
    for: input.subject,
    ...(input.basedOn ? { basedOn: [input.basedOn] } : {}),
    authoredOn: input.now.toISOString(),
    // The model that drafted the report asks for its review.
    requester: { reference: fullUrls.device, display: input.model.name },
  };

  const device = modelDevice(input.model, fullUrls.card);
  const card = modelCard(input.model);
  const prompt = promptDocument(draft.promptVersion, input.prompt);
  const entry = (fullUrl: string, resource: BundleEntry['resource'], ifNoneExist: string): BundleEntry => ({
    fullUrl,
    resource,
    request: { method: 'POST', url: resource!.resourceType, ifNoneExist },
  });
  const byIdentifier = (system: string, value: string) => `identifier=${encodeURIComponent(`${system}|${value}`)}`;
  const entries: BundleEntry[] = [];
  entries[DRAFT_ENTRY.device] = entry(fullUrls.device, device, byIdentifier(System.model, deviceIdentifier(input.model)));
  entries[DRAFT_ENTRY.prompt] = entry(fullUrls.prompt, prompt, byIdentifier(System.prompt, draft.promptVersion));
  entries[DRAFT_ENTRY.report] = entry(fullUrls.report, report, byIdentifier(System.draftReport, key));
  entries[DRAFT_ENTRY.task] = entry(fullUrls.task, task, byIdentifier(System.reviewTask, key));
  entries[DRAFT_ENTRY.card] = entry(fullUrls.card, card, byIdentifier(System.modelCard, input.model.cardUrl));
  return { bundle: { resourceType: 'Bundle', type: 'transaction', entry: entries }, key, fullUrls };
}
