import { chooseViews, instanceInfo, isFrontal, type ChosenView, type InstanceInfo, type SkippedView } from './views.js';
import type { DicomJson } from './tags.js';

export type Eligibility =
  | { eligible: true; views: ChosenView[]; skipped: SkippedView[]; instances: InstanceInfo[] }
  | { eligible: false; reason: string };

const PROJECTION_MODALITIES = new Set(['CR', 'DX']);
const CHEST_BODY_PARTS = new Set(['CHEST', 'THORAX', 'LUNG', 'CHEST_TO_PELVIS']);
const CHEST_WORDS = /\b(CHEST|THORAX|THORACIC|CXR|LUNGS?|T[OÓ]RAX|THORAKS|POITRINE|PULMON\w*)\b/i;

function isChest(i: InstanceInfo): boolean {
  if (i.bodyPart && CHEST_BODY_PARTS.has(i.bodyPart)) return true;
  return i.descriptions.some((d) => CHEST_WORDS.test(d));
}

/** Modality list as QIDO reports it, for studies rejected before their metadata is read. */
export function eligibleByModalities(modalities: string[]): { eligible: true } | { eligible: false; reason: string } {
  if (modalities.length === 0 || modalities.some((m) => PROJECTION_MODALITIES.has(m.toUpperCase()))) return { eligible: true };
  return { eligible: false, reason: `ModalitiesInStudy is ${modalities.join('\\')}: not CR or DX` };
}

/**
 * Is this study a chest radiograph, and which instances would be drafted from? Reasons name the DICOM attributes
 * that decided, never their free-text values (descriptions can carry patient details).
 */
export function assessStudy(metadata: DicomJson[]): Eligibility {
  const all = metadata.map(instanceInfo).filter((i): i is InstanceInfo => !!i);
  if (all.length === 0) return { eligible: false, reason: 'the study has no instances' };
  const projection = all.filter((i) => i.modality && PROJECTION_MODALITIES.has(i.modality) && i.rows && i.columns);
  if (projection.length === 0) {
    const modalities = [...new Set(all.map((i) => i.modality ?? '(none)'))].join('\\');
    return { eligible: false, reason: `no CR or DX image in the study (Modality ${modalities})` };
  }
  const chest = projection.filter(isChest);
  if (chest.length === 0) {
    const parts = [...new Set(projection.map((i) => i.bodyPart ?? '(empty)'))].join('\\');
    return {
      eligible: false,
      reason: `not a chest study: BodyPartExamined is ${parts} and no study/series description or protocol name mentions the chest`,
    };
  }
  if (!chest.some((i) => isFrontal(i.view))) {
    const views = [...new Set(chest.map((i) => i.view.toLowerCase()))].join(', ');
    return { eligible: false, reason: `no frontal (PA or AP) chest view; views present: ${views}` };
  }
  return { eligible: true, ...chooseViews(chest), instances: chest };
}
