import { classify, preparedSentences } from '../report/chexpert-labeler.js';
import type { Side } from './claims.js';

/**
 * Tubes, lines and other devices a chest X-ray report names, and what it says of their position. The labeler knows
 * only "Support Devices"; the checks need the kind (an endotracheal tube is not a chest tube) and whether the report
 * calls its position right or wrong.
 */
export const DEVICE_KINDS = {
  'endotracheal tube': /\b(endotracheal tube|endotracheal|et tube|ett|tracheostomy tube)\b/,
  'enteric tube': /\b(?:nasogastric|orogastric)(?: tube)?\b|\b(?:enteric|feeding|ng|og|dobhoff) tube\b/,
  'chest tube': /\b(chest tube|pleural drain|pigtail catheter|thoracostomy tube)\b/,
  'central line': /\b(central venous catheter|central line|picc|ij (?:line|catheter)|internal jugular (?:line|catheter|central)|subclavian (?:line|catheter)|port-?a-?cath|mediport|dialysis catheter)\b/,
  pacemaker: /\b(pacemaker|pacer|icd|defibrillator|pacing leads?)\b/,
} as const satisfies Record<string, RegExp>;
export type DeviceKind = keyof typeof DEVICE_KINDS;

/** Words that put a device where it should not be; each a phrase the labeler's negation rules can reach. */
const MALPOSITION = /\b(malposition\w*|misplac\w*|too (?:low|high|deep|distal|proximal|far)|(?:in|into|within) the right (?:main ?stem|main|mainstem) bronchus|right main ?stem|right mainstem|coiled|kinked|(?:in|within) the (?:esophagus|oesophagus)|should be (?:withdrawn|retracted|advanced)|recommend (?:withdrawal|retraction|advancement|repositioning)|(?:withdraw|retract|advance|reposition)(?:al|ed)? by)\b/;
const WELL_PLACED = /\b(satisfactory|standard|appropriate|good|expected|adequate|acceptable|unchanged|stable) position|(?:appropriately|well|satisfactorily|correctly) (?:positioned|placed|sited)|in (?:good|satisfactory|standard|appropriate) position|terminates? (?:in|at) the (?:svc|superior vena cava|cavoatrial junction|stomach|right atrium)\b/;

export interface DeviceClaim {
  kind: DeviceKind;
  /** 1 asserted, 0 denied ("no chest tube"), -1 hedged. */
  label: 1 | 0 | -1;
  /** What the sentence says of its position: `wrong` when malpositioned, `right` when placed as expected. */
  position: 'wrong' | 'right' | undefined;
  side: Side | undefined;
}

function sideNear(text: string): Side | undefined {
  const m = /\b(left|right)\b(?! (?:main ?stem|main|mainstem) bronchus)/.exec(text);
  return m ? (m[1] as Side) : undefined;
}

/** The devices one sentence (or section) names, with what it says of each. */
export function devicesOf(text: string): DeviceClaim[] {
  const out: DeviceClaim[] = [];
  for (const sentence of preparedSentences(text)) {
    for (const [kind, re] of Object.entries(DEVICE_KINDS) as [DeviceKind, RegExp][]) {
      const m = re.exec(sentence);
      if (!m) continue;
      const label = classify(sentence, m[0], m.index);
      const wrong = MALPOSITION.exec(sentence);
      const wrongAsserted = wrong ? classify(sentence, wrong[0], wrong.index) === 1 : false;
      const position = wrongAsserted ? 'wrong' : WELL_PLACED.test(sentence) ? 'right' : undefined;
      const before = sentence.slice(Math.max(0, m.index - 30), m.index);
      out.push({ kind, label, position, side: sideNear(before) });
    }
  }
  return out;
}

/** A sentence saying there are no devices at all ("no lines or tubes", "no support devices"). */
export function deniesAllDevices(text: string): boolean {
  return /\b(no (?:support )?devices?|no (?:lines?|tubes?)(?:,? (?:or|and) (?:lines?|tubes?))*|no (?:lines?, )?tubes? or (?:lines?|catheters?))\b/i.test(text);
}
