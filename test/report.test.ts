import { describe, expect, it } from '@jest/globals';
import type { DiagnosticReport, Provenance, Task } from '@medplum/fhirtypes';
import { buildDraftBundle, type ReportInput } from '../src/fhir/report.js';
import { studyEffective } from '../src/fhir/publish.js';
import { promptTemplate } from '../src/model/prompt.js';

const input: ReportInput = {
  studyUid: '1.2.826.0.1.3680043.2.1125.1',
  effective: '2026-03-01T08:15:00+01:00',
  subject: { reference: 'Patient/p1' },
  imagingStudy: { reference: 'ImagingStudy/s1' },
  basedOn: { reference: 'ServiceRequest/o1' },
  prompt: promptTemplate('medevalkit-report-1'),
  images: [
    { sopUid: '1.2.3.1', seriesUid: '1.2.3', view: 'PA', file: 'a.png', sha256: 'aa', width: 896, height: 1092, sourceWidth: 2048, sourceHeight: 2500, window: { center: 1, width: 2, source: 'file' }, photometric: 'MONOCHROME2', transferSyntaxUid: '1.2.840.10008.1.2.1' },
    { sopUid: '1.2.3.2', seriesUid: '1.2.3', view: 'LATERAL', file: 'b.png', sha256: 'bb', width: 980, height: 980, sourceWidth: 2500, sourceHeight: 2500, window: { center: 1, width: 2, source: 'file' }, photometric: 'MONOCHROME2', transferSyntaxUid: '1.2.840.10008.1.2.1' },
  ],
  draft: {
    findings: 'Heart <normal> & lungs clear.', impression: 'No acute disease.', text: '', model: 'lingshu-medical-mllm/Lingshu-7B',
    promptVersion: 'medevalkit-report-1', requestId: 'x', draftedAt: '2026-03-01T09:00:00.000Z',
  },
  model: { name: 'lingshu-medical-mllm/Lingshu-7B', endpoint: 'http://vllm:8000/v1' },
  software: { name: 'raddraft', version: '0.1.0' },
  now: new Date('2026-03-01T09:00:01.000Z'),
};

describe('buildDraftBundle', () => {
  const { bundle, key, fullUrls } = buildDraftBundle(input);
  const resource = (url: string) => bundle.entry!.find((e) => e.fullUrl === url)!.resource;

  it('makes every entry a conditional create keyed on the study and model', () => {
    expect(key).toBe('1.2.826.0.1.3680043.2.1125.1_lingshu-medical-mllm-Lingshu-7B');
    expect(bundle.type).toBe('transaction');
    expect(bundle.entry!.map((e) => [e.request!.method, e.request!.url, e.request!.ifNoneExist])).toEqual([
      ['POST', 'Device', 'identifier=https%3A%2F%2Fraddraft.dev%2Ffhir%2Fsid%2Fmodel%7Clingshu-medical-mllm-Lingshu-7B'],
      ['POST', 'DocumentReference', 'identifier=https%3A%2F%2Fraddraft.dev%2Ffhir%2Fsid%2Fprompt%7Cmedevalkit-report-1'],
      ['POST', 'DiagnosticReport', `identifier=${encodeURIComponent(`https://raddraft.dev/fhir/sid/ai-draft-report|${key}`)}`],
      ['POST', 'Provenance', `_tag=${encodeURIComponent(`https://raddraft.dev/fhir/CodeSystem/provenance-key|${key}`)}`],
      ['POST', 'Task', `identifier=${encodeURIComponent(`https://raddraft.dev/fhir/sid/ai-draft-review-task|${key}`)}`],
    ]);
  });

  it('escapes model text in the narrative so it can never become markup', () => {
    const report = (resource(fullUrls.report) as DiagnosticReport);
    expect(report.text!.div).toContain('Heart &lt;normal&gt; &amp; lungs clear.');
    expect(report.text!.div).not.toContain('<normal>');
  });

  it('codes two views, and links provenance and task to the report by placeholder', () => {
    const report = (resource(fullUrls.report) as DiagnosticReport);
    expect(report.code.coding![0]!.code).toBe('36643-5');
    expect((resource(fullUrls.provenance) as Provenance).target).toEqual([{ reference: fullUrls.report }]);
    expect((resource(fullUrls.task) as Task).focus).toEqual({ reference: fullUrls.report });
  });

  it('codes a single image as a single view and anything else as a generic imaging study', () => {
    const single = buildDraftBundle({ ...input, images: [input.images[0]!] });
    const r1 = single.bundle.entry!.find((e) => e.fullUrl === single.fullUrls.report)!.resource as DiagnosticReport;
    expect(r1.code.coding![0]!.code).toBe('36554-4');
    const two = buildDraftBundle({ ...input, images: [input.images[0]!, { ...input.images[0]!, view: 'AP' }] });
    const r2 = two.bundle.entry!.find((e) => e.fullUrl === two.fullUrls.report)!.resource as DiagnosticReport;
    expect(r2.code.coding![0]!.code).toBe('18748-4');
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
