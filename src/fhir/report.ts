import { randomUUID } from 'node:crypto';
import type {
  Bundle, BundleEntry, Device, DiagnosticReport, DocumentReference, ImagingStudy, Patient, Provenance, Reference,
  ServiceRequest, Task,
} from '@medplum/fhirtypes';
import type { DraftRecord, RenderedRecord } from '../report/report.js';
import {
  AIAST, AI_DEVICE_TYPE, AI_KIND_EXTENSION, DRAFT_BANNER, RADIOLOGY_CATEGORY, RAD_V2, REVIEW_REQUIRED, ReportCode, System,
  dicomUidIdentifier, identifierSafe, reportKey,
} from './codes.js';

/** Everything a draft report is made of, resolved before any resource is built. */
export interface ReportInput {
  studyUid: string;
  /** ISO date-time (with zone) of the study, when the study carries a date. */
  effective: string | undefined;
  subject: Reference<Patient> | undefined;
  imagingStudy: Reference<ImagingStudy>;
  basedOn: Reference<ServiceRequest> | undefined;
  images: RenderedRecord[];
  draft: DraftRecord;
  /** The prompt the model was given (its template, with placeholders for per-study data). */
  prompt: { text: string; description: string };
  model: { name: string; endpoint: string };
  software: { name: string; version: string };
  now: Date;
}

export interface DraftBundle {
  bundle: Bundle;
  key: string;
  fullUrls: { device: string; prompt: string; report: string; provenance: string; task: string };
}

function reportCode(images: RenderedRecord[]) {
  const frontal = images.some((i) => i.view === 'PA' || i.view === 'AP' || i.view === 'UNKNOWN');
  const lateral = images.some((i) => i.view === 'LATERAL');
  if (images.length === 1) return ReportCode.singleView;
  if (images.length === 2 && frontal && lateral) return ReportCode.twoViews;
  return ReportCode.imaging;
}

const escapeXml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

export function draftText(input: Pick<ReportInput, 'draft' | 'now'>): string {
  const { draft } = input;
  return [
    `*** ${DRAFT_BANNER.toUpperCase()} ***`,
    `PRELIMINARY. Drafted by ${draft.model} (prompt ${draft.promptVersion}) on ${draft.draftedAt}.`,
    'This text must be reviewed, edited as needed and signed by a radiologist before any clinical use.',
    '',
    'FINDINGS:',
    draft.findings || '(the model gave no findings)',
    '',
    'IMPRESSION:',
    draft.impression || '(the model gave no impression)',
    '',
    ...(draft.flags?.length ? ['REVIEW FLAGS (raddraft checks):', ...draft.flags.map((f) => `- ${f}`), ''] : []),
  ].join('\n');
}

function narrative(draft: DraftRecord): string {
  const para = (s: string) => escapeXml(s).replace(/\n/g, '<br/>');
  return (
    '<div xmlns="http://www.w3.org/1999/xhtml">' +
    `<p><b>${escapeXml(DRAFT_BANNER.toUpperCase())}</b></p>` +
    `<p>Preliminary report drafted by ${escapeXml(draft.model)} (prompt ${escapeXml(draft.promptVersion)}). ` +
    'It must be reviewed and signed by a radiologist before clinical use.</p>' +
    `<p><b>Findings:</b> ${para(draft.findings || '(none given)')}</p>` +
    `<p><b>Impression:</b> ${para(draft.impression || '(none given)')}</p>` +
    (draft.flags?.length ? `<p><b>Review flags:</b></p><ul>${draft.flags.map((f) => `<li>${escapeXml(f)}</li>`).join('')}</ul>` : '') +
    '</div>'
  );
}

function modelDevice(input: ReportInput): Device {
  const { name, endpoint } = input.model;
  const org = name.includes('/') ? name.split('/')[0] : undefined;
  const short = name.split('/').pop() ?? name;
  return {
    resourceType: 'Device',
    identifier: [{ system: System.model, value: identifierSafe(name) }],
    status: 'active',
    type: { coding: [AI_DEVICE_TYPE], text: 'AI vision-language model' },
    extension: [
      { url: AI_KIND_EXTENSION, valueCodeableConcept: { coding: [{ system: System.aiDeviceType, code: 'Large-Language-Models' }] } },
      { url: AI_KIND_EXTENSION, valueCodeableConcept: { coding: [{ system: System.aiDeviceType, code: 'Medical-Image-Analysis' }] } },
    ],
    deviceName: [
      { name: short, type: 'model-name' },
      { name: `${short} chest X-ray report drafting (via raddraft)`, type: 'user-friendly-name' },
    ],
    modelNumber: name,
    version: [{ value: name }],
    ...(org ? { manufacturer: org } : {}),
    url: endpoint,
  };
}

function promptDocument(promptVersion: string, template: ReportInput['prompt']): DocumentReference {
  return {
    resourceType: 'DocumentReference',
    identifier: [{ system: System.prompt, value: promptVersion }],
    status: 'current',
    type: { coding: [{ system: System.aiInputs, code: 'AIInputPrompt', display: 'AI Input Prompt' }] },
    description: template.description,
    content: [{ attachment: { contentType: 'text/markdown', data: Buffer.from(template.text, 'utf8').toString('base64'), title: promptVersion } }],
  };
}

/**
 * One transaction Bundle: model Device, prompt DocumentReference, the preliminary DiagnosticReport, its AI
 * Provenance and the review Task. Every entry is a conditional create, so posting the same study twice (a retry,
 * a crash between post and bookkeeping, a server whose transactions are not atomic) never makes a second copy.
 */
export function buildDraftBundle(input: ReportInput): DraftBundle {
  const key = reportKey(input.studyUid, input.model.name);
  const uuid = () => `urn:uuid:${randomUUID()}`;
  const fullUrls = { device: uuid(), prompt: uuid(), report: uuid(), provenance: uuid(), task: uuid() };
  const { draft } = input;
  const text = draftText(input);

  const report: DiagnosticReport = {
    resourceType: 'DiagnosticReport',
    meta: { security: [AIAST], tag: [REVIEW_REQUIRED] },
    identifier: [{ system: System.draftReport, value: key }],
    ...(input.basedOn ? { basedOn: [input.basedOn] } : {}),
    status: 'preliminary',
    category: [{ coding: [RADIOLOGY_CATEGORY] }, { coding: [RAD_V2] }],
    code: { coding: [reportCode(input.images)] },
    ...(input.subject ? { subject: input.subject } : {}),
    ...(input.effective ? { effectiveDateTime: input.effective } : {}),
    issued: input.now.toISOString(),
    imagingStudy: [input.imagingStudy],
    conclusion: draft.impression || undefined,
    presentedForm: [{
      contentType: 'text/plain; charset=utf-8',
      language: 'en',
      title: `${DRAFT_BANNER} (preliminary)`,
      data: Buffer.from(text, 'utf8').toString('base64'),
      creation: draft.draftedAt,
    }],
    text: { status: 'generated', div: narrative(draft) },
  };
  if (!report.conclusion) delete report.conclusion;

  const provenance: Provenance = {
    resourceType: 'Provenance',
    meta: { tag: [{ system: System.provenanceKey, code: key }] },
    target: [{ reference: fullUrls.report }],
    occurredDateTime: draft.draftedAt,
    recorded: input.now.toISOString(),
    reason: [{ coding: [AIAST] }],
    activity: { coding: [{ system: System.v3DataOperation, code: 'CREATE', display: 'create' }] },
    agent: [
      {
        type: { coding: [{ system: System.provenanceParticipantType, code: 'author', display: 'Author' }] },
        role: [{ coding: [AI_DEVICE_TYPE] }],
        who: { reference: fullUrls.device, display: input.model.name },
      },
      {
        type: { coding: [{ system: System.provenanceParticipantType, code: 'assembler', display: 'Assembler' }] },
        who: { display: `${input.software.name} ${input.software.version}` },
      },
    ],
    entity: [
      { role: 'source', what: input.imagingStudy },
      { role: 'derivation', what: { reference: fullUrls.prompt, display: `prompt ${draft.promptVersion}` } },
      ...input.images.map((img, i) => ({
        role: 'source' as const,
        what: {
          identifier: dicomUidIdentifier(img.sopUid),
          display: `<image_${i + 1}> ${img.view} ${img.width}x${img.height} PNG sha256:${img.sha256}`,
        },
      })),
    ],
  };

  const task: Task = {
    resourceType: 'Task',
    identifier: [{ system: System.reviewTask, value: key }],
    status: 'requested',
    intent: 'order',
    priority: 'routine',
    code: { coding: [{ system: System.taskCode, code: 'approve', display: 'Activate/approve the focal resource' }] },
    description: 'Review, edit and sign the AI-generated draft chest X-ray report',
    focus: { reference: fullUrls.report },
    ...(input.subject ? { for: input.subject } : {}),
    ...(input.basedOn ? { basedOn: [input.basedOn] } : {}),
    authoredOn: input.now.toISOString(),
  };

  const device = modelDevice(input);
  const prompt = promptDocument(draft.promptVersion, input.prompt);
  const entry = (fullUrl: string, resource: BundleEntry['resource'], ifNoneExist: string): BundleEntry => ({
    fullUrl,
    resource,
    request: { method: 'POST', url: resource!.resourceType, ifNoneExist },
  });
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      entry(fullUrls.device, device, `identifier=${encodeURIComponent(`${System.model}|${device.identifier![0]!.value}`)}`),
      entry(fullUrls.prompt, prompt, `identifier=${encodeURIComponent(`${System.prompt}|${draft.promptVersion}`)}`),
      entry(fullUrls.report, report, `identifier=${encodeURIComponent(`${System.draftReport}|${key}`)}`),
      entry(fullUrls.provenance, provenance, `_tag=${encodeURIComponent(`${System.provenanceKey}|${key}`)}`),
      entry(fullUrls.task, task, `identifier=${encodeURIComponent(`${System.reviewTask}|${key}`)}`),
    ],
  };
  return { bundle, key, fullUrls };
}
