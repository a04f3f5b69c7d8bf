import { describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import type { Device, DiagnosticReport, DocumentReference, Task } from '@medplum/fhirtypes';
import { aiProvenance } from '../src/fhir/ai-resources.js';
import { buildDraftBundle, type ReportInput } from '../src/fhir/report.js';
import { studyEffective } from '../src/fhir/publish.js';
import { promptTemplate } from '../src/model/prompt.js';

const input: ReportInput = {
  studyUid: '1.2.826.0.1.3680043.2.1125.1',
  effective: '2026-03-01T08:15:00+01:00',
  subject: { reference: 'Patient/p1' },
  imagingStudy: { reference: 'ImagingStudy/s1' },
  basedOn: { reference: 'ServiceRequest/o1' },
  order: { code: { coding: [{ system: 'http://www.radlex.org', code: 'RPID1', display: 'XR Chest 1 View' }, { system: 'http://hospital.example/codes', code: 'CXR1' }] }, priority: 'routine' },
  prompt: promptTemplate('medevalkit-report-1'),
  images: [
    { sopUid: '1.2.3.1', seriesUid: '1.2.3', view: 'PA', file: 'a.png', sha256: 'aa', width: 896, height: 1092, sourceWidth: 2048, sourceHeight: 2500, window: { center: 1, width: 2, source: 'file' }, photometric: 'MONOCHROME2', transferSyntaxUid: '1.2.840.10008.1.2.1' },
    { sopUid: '1.2.3.2', seriesUid: '1.2.3', view: 'LATERAL', file: 'b.png', sha256: 'bb', width: 980, height: 980, sourceWidth: 2500, sourceHeight: 2500, window: { center: 1, width: 2, source: 'file' }, photometric: 'MONOCHROME2', transferSyntaxUid: '1.2.840.10008.1.2.1' },
  ],
  draft: {
    findings: 'Heart <normal> & lungs clear.', impression: 'No acute disease.', text: '', model: 'lingshu-medical-mllm/Lingshu-7B',
    promptVersion: 'medevalkit-report-1', requestId: 'x', draftedAt: '2026-03-01T09:00:00.000Z',
  },
  model: {
    name: 'lingshu-medical-mllm/Lingshu-7B', endpoint: 'http://vllm:8000/v1', revision: '/models/Lingshu-7B/snapshots/0123abc',
    cardUrl: 'https://huggingface.co/lingshu-medical-mllm/Lingshu-7B', owner: 'Organization/radiology', contact: 'mailto:ai@hospital.example',
  },
  software: { name: 'raddraft', version: '0.1.0' },
  status: 'partial',
  language: 'de',
  now: new Date('2026-03-01T09:00:01.000Z'),
};

describe('buildDraftBundle', () => {
  const { bundle, key, fullUrls } = buildDraftBundle(input);
  const resource = (url: string) => bundle.entry!.find((e) => e.fullUrl === url)!.resource;

  it('makes every entry a conditional create keyed on the study and model', () => {
    expect(key).toBe('1.2.826.0.1.3680043.2.1125.1_lingshu-medical-mllm-Lingshu-7B');
    expect(bundle.type).toBe('transaction');
    expect(bundle.entry!.map((e) => [e.request!.method, e.request!.url, e.request!.ifNoneExist])).toEqual([
      ['POST', 'Device', `identifier=${encodeURIComponent('https://raddraft.dev/fhir/sid/model|lingshu-medical-mllm-Lingshu-7B-models-Lingshu-7B-snapshots-0123abc')}`],
      ['POST', 'DocumentReference', 'identifier=https%3A%2F%2Fraddraft.dev%2Ffhir%2Fsid%2Fprompt%7Cmedevalkit-report-1'],
      ['POST', 'DiagnosticReport', `identifier=${encodeURIComponent(`https://raddraft.dev/fhir/sid/ai-draft-report|${key}`)}`],
      ['POST', 'Task', `identifier=${encodeURIComponent(`https://raddraft.dev/fhir/sid/ai-draft-review-task|${key}`)}`],
      ['POST', 'DocumentReference', `identifier=${encodeURIComponent('https://raddraft.dev/fhir/sid/model-card|https://huggingface.co/lingshu-medical-mllm/Lingshu-7B')}`],
    ]);
  });

  it('escapes model text in the narrative so it can never become markup', () => {
    const report = (resource(fullUrls.report) as DiagnosticReport);
    expect(report.text!.div).toContain('Heart &lt;normal&gt; &amp; lungs clear.');
    expect(report.text!.div).not.toContain('<normal>');
  });

  it('is partial (unverified), coded from the order\'s RadLex code, with text and HTML forms that carry size, hash and language', () => {
    const report = resource(fullUrls.report) as DiagnosticReport;
    expect(report.status).toBe('partial');
    expect(report.code).toEqual({ coding: [{ system: 'http://www.radlex.org', code: 'RPID1', display: 'XR Chest 1 View' }] });
    expect(report.presentedForm!.map((a) => a.contentType)).toEqual(['text/plain; charset=utf-8', 'text/html; charset=utf-8']);
    for (const form of report.presentedForm!) {
      const bytes = Buffer.from(form.data!, 'base64');
      expect(form).toMatchObject({ language: 'de', size: bytes.length, hash: createHash('sha1').update(bytes).digest('base64') });
    }
    expect(Buffer.from(report.presentedForm![1]!.data!, 'base64').toString()).toContain('<p><b>Findings:</b> Heart &lt;normal&gt; &amp; lungs clear.</p>');
  });

  it('codes a report without an order code as a diagnostic imaging study, whatever images were sent', () => {
    const single = buildDraftBundle({ ...input, order: { code: undefined, priority: undefined }, images: [input.images[0]!] });
    const r1 = single.bundle.entry!.find((e) => e.fullUrl === single.fullUrls.report)!.resource as DiagnosticReport;
    expect(r1.code).toEqual({ coding: [{ system: 'http://loinc.org', code: '18748-4', display: 'Diagnostic imaging study' }] });
  });

  it('gives the review task the order\'s priority, raised to urgent when the draft asserts a critical finding', () => {
    const priority = (order: ReportInput['order'], urgent?: string[]) => {
      const b = buildDraftBundle({ ...input, order, draft: { ...input.draft, ...(urgent ? { urgent: { findings: urgent } } : {}) } });
      return (b.bundle.entry!.find((e) => e.fullUrl === b.fullUrls.task)!.resource as Task).priority;
    };
    expect(priority({ code: undefined, priority: 'asap' })).toBe('asap');
    expect(priority({ code: undefined, priority: undefined })).toBe('routine');
    expect(priority({ code: undefined, priority: 'routine' }, ['pneumothorax'])).toBe('urgent');
    expect(priority({ code: undefined, priority: 'stat' }, ['pneumothorax'])).toBe('stat');
    const task = resource(fullUrls.task) as Task;
    expect(task).toMatchObject({ status: 'requested', requester: { reference: fullUrls.device }, focus: { reference: fullUrls.report } });
  });

  it('writes the AI Transparency codings exactly as the IG fixes them, and the model\'s revision, owner, contact and card', () => {
    const device = resource(fullUrls.device) as Device;
    expect(device.type).toEqual({ coding: [{ system: 'http://hl7.org/fhir/uv/aitransparency/CodeSystem/AIdeviceTypeCS', code: 'Artificial-Intelligence' }] });
    expect(device.extension!.filter((e) => e.url.endsWith('aitransparency.AIKind')).map((e) => e.valueCodeableConcept!.coding![0]!.code)).toContain('Vision-Language-Models');
    expect(device.extension!.find((e) => e.url.endsWith('aitransparency.modelCardDescription'))!.valueReference).toEqual({ reference: fullUrls.card });
    expect(device).toMatchObject({ version: [{ value: '/models/Lingshu-7B/snapshots/0123abc' }], owner: { reference: 'Organization/radiology' }, contact: [{ system: 'email', value: 'ai@hospital.example' }] });
    const card = resource(fullUrls.card) as DocumentReference;
    expect(card.type).toEqual({ coding: [{ system: 'http://hl7.org/fhir/uv/aitransparency/CodeSystem/AIinputsCS', code: 'AIModelCard' }] });
    expect(card.content[0]!.attachment).toMatchObject({ contentType: 'text/markdown', url: 'https://huggingface.co/lingshu-medical-mllm/Lingshu-7B' });
    const prompt = resource(fullUrls.prompt) as DocumentReference;
    expect(prompt.type).toEqual({ coding: [{ system: 'http://hl7.org/fhir/uv/aitransparency/CodeSystem/AIinputsCS', code: 'AIInputPrompt' }] });
  });
});

describe('review flags on the report', () => {
  it('lists the safety flags in the attached text and the narrative for the reviewer', () => {
    const flagged = buildDraftBundle({ ...input, draft: { ...input.draft, flags: ['findings refers to a prior or comparison exam, but none was given: "Unchanged."'] } });
    const report = flagged.bundle.entry!.find((e) => e.fullUrl === flagged.fullUrls.report)!.resource as DiagnosticReport;
    const text = Buffer.from(report.presentedForm![0]!.data!, 'base64').toString();
    expect(text).toContain('REVIEW FLAGS (raddraft checks):\n- findings refers to a prior or comparison exam, but none was given: "Unchanged."');
    expect(report.text!.div).toContain('<li>findings refers to a prior or comparison exam, but none was given: &quot;Unchanged.&quot;</li>');
  });
});

describe('studyEffective', () => {
  it('uses the DICOM timezone offset when the study has one', () => {
    expect(studyEffective({ studyDate: '20260301', studyTime: '081500.123', timezoneOffset: '+0100' })).toBe('2026-03-01T08:15:00+01:00');
  });
  it('gives a date alone when the study has no time, and nothing for a malformed date', () => {
    expect(studyEffective({ studyDate: '20260301', studyTime: undefined, timezoneOffset: undefined })).toBe('2026-03-01');
    expect(studyEffective({ studyDate: '2026-03-01', studyTime: '0815', timezoneOffset: undefined })).toBeUndefined();
  });
  it('falls back to the local zone, always with an offset', () => {
    expect(studyEffective({ studyDate: '20260301', studyTime: '0815', timezoneOffset: undefined })).toMatch(/^2026-03-01T08:15:00[+-]\d{2}:\d{2}$/);
  });
});

describe('the AI Provenance', () => {
  const provenance = aiProvenance({
    key: 'k', target: 'DiagnosticReport/r1/_history/1', device: { reference: 'Device/d1' }, prompt: 'DocumentReference/p1', card: 'DocumentReference/c1',
    imagingStudy: input.imagingStudy, images: input.images, draft: { ...input.draft, promptVersion: 'clinical-context-1' }, software: input.software,
    owner: 'Organization/radiology', recorded: '2026-03-01T09:00:01.000Z',
    contextInputs: [
      { what: { reference: 'ServiceRequest/o1' }, display: 'the order\'s indication, quoted in the prompt' },
      { what: { reference: 'Patient/p1' }, display: 'the patient\'s age band and sex, quoted in the prompt' },
    ],
  });

  it('names every input the model was given: study, each image, the clinical context, the prompt and the model card', () => {
    expect(provenance.entity!.map((e) => [e.role, e.what.reference ?? e.what.identifier?.value])).toEqual([
      ['source', 'ImagingStudy/s1'], ['source', 'urn:oid:1.2.3.1'], ['source', 'urn:oid:1.2.3.2'],
      ['source', 'ServiceRequest/o1'], ['source', 'Patient/p1'], ['derivation', 'DocumentReference/p1'], ['derivation', 'DocumentReference/c1'],
    ]);
  });

  it('points at the AI\'s version of the report, and says on whose behalf the model acted (US Core provenance-1)', () => {
    expect(provenance.target).toEqual([{ reference: 'DiagnosticReport/r1/_history/1' }]);
    expect(provenance.agent[0]).toMatchObject({ who: { reference: 'Device/d1' }, onBehalfOf: { reference: 'Organization/radiology' }, role: [{ coding: [{ system: 'http://hl7.org/fhir/uv/aitransparency/CodeSystem/AIdeviceTypeCS', code: 'Artificial-Intelligence' }] }] });
    expect(provenance.agent[0]!.role![0]!.coding![0]!.display).toBeUndefined();
  });
});
