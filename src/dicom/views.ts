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
  presentationIntent: 'FOR PRESENTATION' | 'FOR PROCESSING' | undefined;
  /** Set when the instance is not a primary radiograph: what it is instead. */
  secondary?: string;
  /** Acquisition date and time as stored, to recognise one exposure stored twice. */
  acquired?: string;
  /** ImageLaterality L or R: one side of the chest only (a rib or apical view), not the whole chest. */
  oneSided?: boolean;
}

export interface ChosenView {
  sopUid: string;
  seriesUid: string;
  view: View;
  reason: string;
}

/** An instance of the study that is not sent to the model, and why. */
export type SkippedView = ChosenView;

export interface ViewChoice {
  views: ChosenView[];
  skipped: SkippedView[];
}

const VIEW_POSITION: Record<string, View> = {
  PA: 'PA', AP: 'AP', LL: 'LATERAL', RL: 'LATERAL', LAT: 'LATERAL', LATERAL: 'LATERAL',
  LLD: 'OTHER', RLD: 'OTHER', AP_DEC: 'OTHER', PA_DEC: 'OTHER',
};

/**
 * View Code Sequence values of DICOM CID 4010 (DX View), as SNOMED CT codes and as the SNOMED RT codes older
 * equipment sends. A code is trusted before its meaning, which vendors word as they like.
 */
const VIEW_CODES: Record<string, View> = {
  '272479007': 'PA', 'R-10214': 'PA',
  '399348003': 'AP', 'R-10206': 'AP',
  '399067008': 'LATERAL', '399198007': 'LATERAL', 'R-10232': 'LATERAL', '399173006': 'LATERAL', 'R-10236': 'LATERAL',
  // Oblique projections: not what the model was trained to read.
  '399160007': 'OTHER', '399312000': 'OTHER', '399038007': 'OTHER', '399006002': 'OTHER', '399059000': 'OTHER',
  '399356000': 'OTHER', '399135007': 'OTHER', '260427002': 'OTHER', '260426006': 'OTHER', '399236003': 'OTHER',
  '399184004': 'OTHER', '399182000': 'OTHER',
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
    const code = str(item, Tag.CodeValue);
    if (code && VIEW_CODES[code]) return { view: VIEW_CODES[code], source: `View Code Sequence ${code}` };
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

/** Why an instance is not a primary radiograph, or undefined when it is one. */
function secondaryKind(ds: DicomJson, sopClassUid: string | undefined): string | undefined {
  // Secondary Capture Image Storage and its multi-frame variants: screenshots and scans of film.
  if (sopClassUid?.startsWith('1.2.840.10008.5.1.4.1.1.7')) return 'a secondary capture';
  const imageType = strings(ds, Tag.ImageType).map((v) => v.toUpperCase());
  if (imageType.some((v) => v === 'LOCALIZER' || v === 'SCOUT')) return `a localizer (ImageType ${imageType.join('\\')})`;
  // DERIVED\PRIMARY is what many DX units write on their processed presentation image, so only SECONDARY counts.
  if (imageType[1] === 'SECONDARY') return `a derived secondary image (ImageType ${imageType.join('\\')})`;
  if (str(ds, Tag.BurnedInAnnotation)?.toUpperCase() === 'YES') return 'an image with burned-in annotation';
  return undefined;
}

export function instanceInfo(ds: DicomJson): InstanceInfo | undefined {
  const studyUid = str(ds, Tag.StudyInstanceUID);
  const seriesUid = str(ds, Tag.SeriesInstanceUID);
  const sopUid = str(ds, Tag.SOPInstanceUID);
  if (!studyUid || !seriesUid || !sopUid) return undefined;
  const { view, source } = classifyView(ds);
  const sopClassUid = str(ds, Tag.SOPClassUID);
  const intent = str(ds, Tag.PresentationIntentType)?.toUpperCase();
  const acquired = str(ds, Tag.AcquisitionDateTime)
    ?? [str(ds, Tag.AcquisitionDate), str(ds, Tag.AcquisitionTime)].filter(Boolean).join(' ');
  const secondary = secondaryKind(ds, sopClassUid);
  const laterality = str(ds, Tag.ImageLaterality)?.toUpperCase();
  return {
    studyUid,
    seriesUid,
    sopUid,
    sopClassUid,
    modality: str(ds, Tag.Modality)?.toUpperCase(),
    bodyPart: str(ds, Tag.BodyPartExamined)?.toUpperCase(),
    view,
    viewSource: source,
    descriptions: [Tag.StudyDescription, Tag.SeriesDescription, Tag.ProtocolName].flatMap((t) => strings(ds, t)),
    rows: num(ds, Tag.Rows),
    columns: num(ds, Tag.Columns),
    seriesNumber: num(ds, Tag.SeriesNumber),
    instanceNumber: num(ds, Tag.InstanceNumber),
    presentationIntent: intent === 'FOR PRESENTATION' || intent === 'FOR PROCESSING' ? intent : undefined,
    ...(secondary ? { secondary } : {}),
    ...(acquired ? { acquired } : {}),
    ...(laterality === 'L' || laterality === 'R' ? { oneSided: true } : {}),
  };
}

const RANK: Record<View, number> = { PA: 0, AP: 1, UNKNOWN: 2, LATERAL: 3, OTHER: 9 };
export const MAX_IMAGES = 4;

export function isFrontal(view: View): boolean {
  return view === 'PA' || view === 'AP' || view === 'UNKNOWN';
}

function byPreference(a: InstanceInfo, b: InstanceInfo): number {
  const processing = (i: InstanceInfo) => (i.presentationIntent === 'FOR PROCESSING' ? 1 : 0);
  // A frontal image of one side (ImageLaterality L or R) is taken only when no whole-chest one exists; for a
  // lateral view the side says which way it was taken, so it does not count against it.
  const oneSided = (i: InstanceInfo) => (i.oneSided && isFrontal(i.view) ? 1 : 0);
  return (
    RANK[a.view] - RANK[b.view] ||
    processing(a) - processing(b) ||
    oneSided(a) - oneSided(b) ||
    (a.seriesNumber ?? 0) - (b.seriesNumber ?? 0) ||
    (a.instanceNumber ?? 0) - (b.instanceNumber ?? 0) ||
    a.sopUid.localeCompare(b.sopUid)
  );
}

/** The same exposure stored twice: one view, one size, one acquisition time (when the files carry it). */
function sameExposure(a: InstanceInfo, b: InstanceInfo): boolean {
  return a.view === b.view && a.acquired !== undefined && a.acquired === b.acquired && a.rows === b.rows && a.columns === b.columns;
}

/**
 * Chooses the images to draft from, as a radiologist would look at them: frontal first (PA over AP over an image
 * without view information), then lateral, then other views before repeats of one, at most four. The processed
 * FOR PRESENTATION image is taken over its FOR PROCESSING original; duplicates, decubitus and oblique views, and — when a primary image exists — secondary
 * captures, localizers and images with burned-in text are left out. Every instance left out is listed with the
 * reason. Ties go to the earlier series and instance, so the choice is the same on every run.
 */
export function chooseViews(candidates: InstanceInfo[]): ViewChoice {
  const skipped: SkippedView[] = [];
  const skip = (c: InstanceInfo, reason: string) => skipped.push({ sopUid: c.sopUid, seriesUid: c.seriesUid, view: c.view, reason });
  const hasPrimary = candidates.some((c) => !c.secondary && c.view !== 'OTHER');
  const presentationViews = new Set(candidates.filter((c) => c.presentationIntent === 'FOR PRESENTATION').map((c) => c.view));
  const usable: InstanceInfo[] = [];
  for (const c of candidates) {
    if (c.view === 'OTHER') skip(c, `not a PA, AP or lateral view (${c.viewSource})`);
    else if (c.secondary && hasPrimary) skip(c, `${c.secondary}, and a primary image exists`);
    else if (c.presentationIntent === 'FOR PROCESSING' && presentationViews.has(c.view)) {
      skip(c, `FOR PROCESSING, and a FOR PRESENTATION image of the ${c.view.toLowerCase()} view exists`);
    } else usable.push(c);
  }
  const order = usable.sort(byPreference);
  const distinct: InstanceInfo[] = [];
  for (const c of order) {
    const twin = distinct.find((d) => sameExposure(d, c));
    if (twin) skip(c, `a duplicate of ${twin.sopUid} (same view, size and acquisition time)`);
    else distinct.push(c);
  }
  const frontal = distinct.find((c) => isFrontal(c.view));
  const lateral = distinct.find((c) => c.view === 'LATERAL');
  const picked: InstanceInfo[] = [frontal, lateral].filter((c): c is InstanceInfo => c !== undefined);
  // Then views not yet shown before further images of a view already picked.
  const shown = new Set(picked.map((c) => c.view));
  const rest = distinct.filter((c) => !picked.includes(c));
  rest.sort((a, b) => Number(shown.has(a.view)) - Number(shown.has(b.view)) || byPreference(a, b));
  for (const c of rest) {
    if (picked.length < MAX_IMAGES) picked.push(c);
    else skip(c, `beyond the ${MAX_IMAGES} images sent to the model`);
  }
  picked.sort(byPreference);
  const views = picked.map((c) => ({
    sopUid: c.sopUid,
    seriesUid: c.seriesUid,
    view: c.view,
    reason: c === frontal ? `best frontal view (${c.viewSource})` : c === lateral ? `best lateral view (${c.viewSource})` : `additional ${c.view.toLowerCase()} view (${c.viewSource})`,
  }));
  return { views, skipped };
}
