import { Tag, num, sequence, str, strings, type DicomJson } from './tags.js';

export type View = 'PA' | 'AP' | 'LATERAL' | 'UNKNOWN' | 'OTHER';

/** What raddraft needs to know of one instance, read from WADO-RS metadata. */
export interface InstanceInfo {
  studyUid: string;
  seriesUid: string;
  sopUid: string;
  sopClassUid: string | undefined;
  modality: string | undefined;
  bodyPart: string | undefined;
  view: View;
  viewSource: string;
  descriptions: string[];
  rows: number | undefined;
  columns: number | undefined;
  seriesNumber: number | undefined;
  instanceNumber: number | undefined;
}

export interface ChosenView {
  sopUid: string;
  seriesUid: string;
  view: View;
  reason: string;
}

const VIEW_POSITION: Record<string, View> = {
  PA: 'PA', AP: 'AP', LL: 'LATERAL', RL: 'LATERAL', LAT: 'LATERAL', LATERAL: 'LATERAL',
  LLD: 'OTHER', RLD: 'OTHER', AP_DEC: 'OTHER', PA_DEC: 'OTHER',
};

function viewFromWords(text: string): View | undefined {
  const t = text.toUpperCase();
  if (/\b(DECUB|DECUBITUS|LLD|RLD|LORDOTIC|OBLIQUE|OBL)\b/.test(t)) return 'OTHER';
  if (/\b(LAT|LATERAL|LL|RL)\b/.test(t)) return 'LATERAL';
  if (/\bP\.?A\.?\b|POSTERO-?ANTERIOR/.test(t)) return 'PA';
  if (/\bA\.?P\.?\b|ANTERO-?POSTERIOR|PORTABLE|SUPINE/.test(t)) return 'AP';
  return undefined;
}

export function classifyView(ds: DicomJson): { view: View; source: string } {
  const vp = str(ds, Tag.ViewPosition)?.toUpperCase();
  const fromPosition = vp ? VIEW_POSITION[vp] : undefined;
  if (fromPosition) return { view: fromPosition, source: `ViewPosition ${vp}` };
  for (const item of sequence(ds, Tag.ViewCodeSequence)) {
    const meaning = str(item, Tag.CodeMeaning);
    const v = meaning ? viewFromWords(meaning) : undefined;
    if (v) return { view: v, source: 'View Code Sequence' };
  }
  for (const tag of [Tag.SeriesDescription, Tag.ProtocolName]) {
    const text = str(ds, tag);
    const v = text ? viewFromWords(text) : undefined;
    if (v) return { view: v, source: tag === Tag.SeriesDescription ? 'SeriesDescription' : 'ProtocolName' };
  }
  return { view: 'UNKNOWN', source: 'no view information' };
}

export function instanceInfo(ds: DicomJson): InstanceInfo | undefined {
  const studyUid = str(ds, Tag.StudyInstanceUID);
  const seriesUid = str(ds, Tag.SeriesInstanceUID);
  const sopUid = str(ds, Tag.SOPInstanceUID);
  if (!studyUid || !seriesUid || !sopUid) return undefined;
  const { view, source } = classifyView(ds);
  return {
    studyUid,
    seriesUid,
    sopUid,
    sopClassUid: str(ds, Tag.SOPClassUID),
    modality: str(ds, Tag.Modality)?.toUpperCase(),
    bodyPart: str(ds, Tag.BodyPartExamined)?.toUpperCase(),
    view,
    viewSource: source,
    descriptions: [Tag.StudyDescription, Tag.SeriesDescription, Tag.ProtocolName].flatMap((t) => strings(ds, t)),
    rows: num(ds, Tag.Rows),
    columns: num(ds, Tag.Columns),
    seriesNumber: num(ds, Tag.SeriesNumber),
    instanceNumber: num(ds, Tag.InstanceNumber),
  };
}

const RANK: Record<View, number> = { PA: 0, AP: 1, UNKNOWN: 2, LATERAL: 3, OTHER: 9 };
export const MAX_IMAGES = 4;

export function isFrontal(view: View): boolean {
  return view === 'PA' || view === 'AP' || view === 'UNKNOWN';
}

/**
 * Frontal first (PA over AP over an image without view information), then lateral; at most four images. Within a
 * view, the earlier series and instance come first so the choice is stable across runs.
 */
export function chooseViews(candidates: InstanceInfo[]): ChosenView[] {
  const usable = candidates.filter((c) => c.view !== 'OTHER');
  const order = [...usable].sort(
    (a, b) =>
      RANK[a.view] - RANK[b.view] ||
      (a.seriesNumber ?? 0) - (b.seriesNumber ?? 0) ||
      (a.instanceNumber ?? 0) - (b.instanceNumber ?? 0) ||
      a.sopUid.localeCompare(b.sopUid),
  );
  const frontal = order.filter((c) => isFrontal(c.view));
  const lateral = order.filter((c) => c.view === 'LATERAL');
  const picked: InstanceInfo[] = [];
  if (frontal[0]) picked.push(frontal[0]);
  if (lateral[0]) picked.push(lateral[0]);
  for (const c of order) if (picked.length < MAX_IMAGES && !picked.includes(c)) picked.push(c);
  picked.sort((a, b) => RANK[a.view] - RANK[b.view]);
  return picked.map((c) => ({
    sopUid: c.sopUid,
    seriesUid: c.seriesUid,
    view: c.view,
    reason: c === frontal[0] ? `best frontal view (${c.viewSource})` : c === lateral[0] ? `best lateral view (${c.viewSource})` : `additional ${c.view.toLowerCase()} view (${c.viewSource})`,
  }));
}
