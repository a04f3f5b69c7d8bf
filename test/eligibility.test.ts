import { describe, expect, it } from '@jest/globals';
import { assessStudy, eligibleByModalities } from '../src/dicom/eligibility.js';
import type { DicomJson } from '../src/dicom/tags.js';

let n = 0;
function instance(tags: { modality?: string; bodyPart?: string; view?: string; series?: string; study?: string; rows?: number; viewCode?: string }): DicomJson {
  n += 1;
  const ds: DicomJson = {
    '0020000D': { vr: 'UI', Value: ['1.2.3'] },
    '0020000E': { vr: 'UI', Value: [`1.2.3.${n}`] },
    '00080018': { vr: 'UI', Value: [`1.2.3.${n}.1`] },
    '00280010': { vr: 'US', Value: [tags.rows ?? 2000] },
    '00280011': { vr: 'US', Value: [2000] },
    '00200011': { vr: 'IS', Value: [n] },
  };
  if (tags.modality) ds['00080060'] = { vr: 'CS', Value: [tags.modality] };
  if (tags.bodyPart) ds['00180015'] = { vr: 'CS', Value: [tags.bodyPart] };
  if (tags.view) ds['00185101'] = { vr: 'CS', Value: [tags.view] };
  if (tags.series) ds['0008103E'] = { vr: 'LO', Value: [tags.series] };
  if (tags.study) ds['00081030'] = { vr: 'LO', Value: [tags.study] };
  if (tags.viewCode) ds['00540220'] = { vr: 'SQ', Value: [{ '00080104': { vr: 'LO', Value: [tags.viewCode] } }] };
  return ds;
}

describe('assessStudy', () => {
  it('takes a DX chest PA and lateral, frontal first', () => {
    const lat = instance({ modality: 'DX', bodyPart: 'CHEST', view: 'LL' });
    const pa = instance({ modality: 'DX', bodyPart: 'CHEST', view: 'PA' });
    const v = assessStudy([lat, pa]);
    expect(v.eligible).toBe(true);
    if (!v.eligible) return;
    expect(v.views.map((x) => x.view)).toEqual(['PA', 'LATERAL']);
    expect(v.views[0]!.reason).toBe('best frontal view (ViewPosition PA)');
  });

  it('prefers PA over AP and keeps at most four images', () => {
    const images = [
      instance({ modality: 'CR', bodyPart: 'CHEST', view: 'AP' }),
      instance({ modality: 'CR', bodyPart: 'CHEST', view: 'PA' }),
      ...Array.from({ length: 4 }, () => instance({ modality: 'CR', bodyPart: 'CHEST', view: 'LAT' })),
    ];
    const v = assessStudy(images);
    if (!v.eligible) throw new Error('expected eligible');
    expect(v.views.map((x) => x.view)).toEqual(['PA', 'AP', 'LATERAL', 'LATERAL']);
  });

  it('accepts a chest by its description when BodyPartExamined is empty, and reads the view from the View Code Sequence', () => {
    const v = assessStudy([instance({ modality: 'DX', study: 'XR Thorax 1 view', viewCode: 'postero-anterior' })]);
    if (!v.eligible) throw new Error('expected eligible');
    expect(v.views[0]).toMatchObject({ view: 'PA', reason: 'best frontal view (View Code Sequence)' });
  });

  it.each([
    ['a study without instances', [], 'the study has no instances'],
    ['a CT', [instance({ modality: 'CT', bodyPart: 'CHEST' })], 'no CR or DX image in the study (Modality CT)'],
    ['a hand radiograph', [instance({ modality: 'DX', bodyPart: 'HAND', view: 'PA' })],
      'not a chest study: BodyPartExamined is HAND and no study/series description or protocol name mentions the chest'],
    ['a lateral without a frontal view', [instance({ modality: 'DX', bodyPart: 'CHEST', view: 'LL' })], 'no frontal (PA or AP) chest view; views present: lateral'],
  ])('records %s as ineligible with the reason', (_what, metadata, reason) => {
    expect(assessStudy(metadata)).toEqual({ eligible: false, reason });
  });

  it('rejects by QIDO modalities before any metadata is read', () => {
    expect(eligibleByModalities(['CT', 'SR'])).toEqual({ eligible: false, reason: 'ModalitiesInStudy is CT\\SR: not CR or DX' });
    expect(eligibleByModalities(['DX', 'SR'])).toEqual({ eligible: true });
    expect(eligibleByModalities([])).toEqual({ eligible: true });
  });
});
