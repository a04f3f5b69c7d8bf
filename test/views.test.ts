import { describe, expect, it } from '@jest/globals';
import { chooseViews, instanceInfo, type InstanceInfo } from '../src/dicom/views.js';
import type { DicomJson } from '../src/dicom/tags.js';

let n = 0;
interface Spec {
  view?: string;
  intent?: 'FOR PRESENTATION' | 'FOR PROCESSING';
  imageType?: string[];
  sopClass?: string;
  burnedIn?: 'YES' | 'NO';
  acquired?: string;
  rows?: number;
  viewCode?: { value: string; meaning?: string };
  laterality?: string;
}

function image(spec: Spec): InstanceInfo {
  n += 1;
  const ds: DicomJson = {
    '0020000D': { vr: 'UI', Value: ['1.2.3'] },
    '0020000E': { vr: 'UI', Value: [`1.2.3.${n}`] },
    '00080018': { vr: 'UI', Value: [`1.2.3.${n}.1`] },
    '00080016': { vr: 'UI', Value: [spec.sopClass ?? '1.2.840.10008.5.1.4.1.1.1.1'] },
    '00080060': { vr: 'CS', Value: ['DX'] },
    '00280010': { vr: 'US', Value: [spec.rows ?? 3000] },
    '00280011': { vr: 'US', Value: [2500] },
    '00200011': { vr: 'IS', Value: [n] },
  };
  if (spec.view) ds['00185101'] = { vr: 'CS', Value: [spec.view] };
  if (spec.intent) ds['00080068'] = { vr: 'CS', Value: [spec.intent] };
  if (spec.imageType) ds['00080008'] = { vr: 'CS', Value: spec.imageType };
  if (spec.burnedIn) ds['00280301'] = { vr: 'CS', Value: [spec.burnedIn] };
  if (spec.acquired) ds['0008002A'] = { vr: 'DT', Value: [spec.acquired] };
  if (spec.laterality) ds['00200062'] = { vr: 'CS', Value: [spec.laterality] };
  if (spec.viewCode) {
    ds['00540220'] = { vr: 'SQ', Value: [{
      '00080100': { vr: 'SH', Value: [spec.viewCode.value] },
      ...(spec.viewCode.meaning ? { '00080104': { vr: 'LO', Value: [spec.viewCode.meaning] } } : {}),
    }] };
  }
  return instanceInfo(ds)!;
}

const uids = (list: { sopUid: string }[]) => list.map((v) => v.sopUid);

describe('chooseViews', () => {
  it('takes the FOR PRESENTATION image over its FOR PROCESSING original and says why', () => {
    const raw = image({ view: 'PA', intent: 'FOR PROCESSING', acquired: '20260101101500' });
    const processed = image({ view: 'PA', intent: 'FOR PRESENTATION', acquired: '20260101101500' });
    const { views, skipped } = chooseViews([raw, processed]);
    expect(uids(views)).toEqual([processed.sopUid]);
    expect(skipped).toEqual([
      { sopUid: raw.sopUid, seriesUid: raw.seriesUid, view: 'PA', reason: 'FOR PROCESSING, and a FOR PRESENTATION image of the pa view exists' },
    ]);
  });

  it('drafts from a FOR PROCESSING image when it is all the study holds', () => {
    const raw = image({ view: 'PA', intent: 'FOR PROCESSING' });
    expect(uids(chooseViews([raw]).views)).toEqual([raw.sopUid]);
  });

  it('orders PA before AP before lateral, prefers another view to a repeat, and sends at most four images', () => {
    const lat = image({ view: 'LL', acquired: '20260101101600' });
    const pa = image({ view: 'PA', acquired: '20260101101500' });
    const repeats = [1, 2, 3].map((i) => image({ view: 'PA', acquired: `2026010110170${i}` }));
    const ap = image({ view: 'AP', acquired: '20260101101400' });
    const { views, skipped } = chooseViews([lat, ap, ...repeats, pa]);
    expect(views.map((v) => v.view)).toEqual(['PA', 'PA', 'AP', 'LATERAL']);
    expect(views.map((v) => v.reason)).toEqual([
      'best frontal view (ViewPosition PA)', 'additional pa view (ViewPosition PA)', 'additional ap view (ViewPosition AP)', 'best lateral view (ViewPosition LL)',
    ]);
    expect(uids(views)).toEqual([pa.sopUid, repeats[0]!.sopUid, ap.sopUid, lat.sopUid]);
    expect(skipped).toEqual(repeats.slice(1).map((r) => ({ sopUid: r.sopUid, seriesUid: r.seriesUid, view: 'PA', reason: 'beyond the 4 images sent to the model' })));
  });

  it('leaves out one exposure stored twice', () => {
    const a = image({ view: 'PA', acquired: '20260101101500' });
    const b = image({ view: 'PA', acquired: '20260101101500' });
    const { views, skipped } = chooseViews([a, b]);
    expect(uids(views)).toEqual([a.sopUid]);
    expect(skipped[0]!.reason).toBe(`a duplicate of ${a.sopUid} (same view, size and acquisition time)`);
  });

  it('keeps two exposures of one view when their acquisition times differ', () => {
    const a = image({ view: 'PA', acquired: '20260101101500' });
    const b = image({ view: 'PA', acquired: '20260101102000' });
    expect(uids(chooseViews([a, b]).views)).toEqual([a.sopUid, b.sopUid]);
  });

  it.each([
    [{ sopClass: '1.2.840.10008.5.1.4.1.1.7' }, 'a secondary capture, and a primary image exists'],
    [{ imageType: ['DERIVED', 'SECONDARY'] }, 'a derived secondary image (ImageType DERIVED\\SECONDARY), and a primary image exists'],
    [{ imageType: ['ORIGINAL', 'PRIMARY', 'LOCALIZER'] }, 'a localizer (ImageType ORIGINAL\\PRIMARY\\LOCALIZER), and a primary image exists'],
    [{ burnedIn: 'YES' as const }, 'an image with burned-in annotation, and a primary image exists'],
  ])('leaves out %j when a primary image exists', (spec, reason) => {
    const primary = image({ view: 'PA', imageType: ['DERIVED', 'PRIMARY'] });
    const other = image({ view: 'AP', ...spec });
    const { views, skipped } = chooseViews([other, primary]);
    expect(uids(views)).toEqual([primary.sopUid]);
    expect(skipped).toEqual([{ sopUid: other.sopUid, seriesUid: other.seriesUid, view: 'AP', reason }]);
  });

  it('uses a secondary capture of a film when there is nothing else', () => {
    const scan = image({ view: 'PA', sopClass: '1.2.840.10008.5.1.4.1.1.7' });
    expect(uids(chooseViews([scan]).views)).toEqual([scan.sopUid]);
  });

  it('leaves out decubitus views', () => {
    const pa = image({ view: 'PA' });
    const decub = image({ view: 'LLD' });
    expect(chooseViews([pa, decub]).skipped).toEqual([
      { sopUid: decub.sopUid, seriesUid: decub.seriesUid, view: 'OTHER', reason: 'not a PA, AP or lateral view (ViewPosition LLD)' },
    ]);
  });

  it.each([
    [{ value: '272479007' }, 'PA'],
    [{ value: 'R-10206', meaning: 'antero-posterior' }, 'AP'],
    [{ value: '399173006', meaning: 'Seitlich' }, 'LATERAL'],
    [{ value: '399059000', meaning: 'PA' }, 'OTHER'],
    [{ value: '99LOCAL', meaning: 'postero-anterior' }, 'PA'],
  ])('reads the view from the View Code Sequence %j, the code before its meaning', (viewCode, view) => {
    expect(image({ viewCode }).view).toBe(view);
  });

  it('takes a whole-chest frontal over a one-sided one (ImageLaterality L or R), but keeps a lateral with its side', () => {
    const ribs = image({ view: 'PA', laterality: 'R' });
    const chest = image({ view: 'PA', laterality: 'U', acquired: '20260101101600' });
    const lateral = image({ view: 'LL', laterality: 'L' });
    const { views } = chooseViews([ribs, lateral, chest]);
    expect(uids(views)).toEqual([chest.sopUid, ribs.sopUid, lateral.sopUid]);
    expect(views[0]!.reason).toBe('best frontal view (ViewPosition PA)');
    expect(views[2]!.reason).toBe('best lateral view (ViewPosition LL)');
  });
});
