import { OBSERVATIONS, type Labels, type Observation } from '../../report/chexpert-labeler.js';

/** Agreement on one observation, a study counted positive only when labelled 1 (uncertain counts as not positive). */
export interface LabelCounts {
  observation: Observation;
  tp: number;
  fp: number;
  fn: number;
  tn: number;
  precision: number | undefined;
  recall: number | undefined;
  f1: number | undefined;
}

export interface LabelAgreement {
  perObservation: LabelCounts[];
  /** TP, FP and FN pooled over all observations and studies. */
  microF1: number;
  /** Mean F1 over the observations positive in some reference or draft; undefined when none is. */
  macroF1: number | undefined;
}

const f1 = (tp: number, fp: number, fn: number): number => (tp + fp + fn === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn));

/**
 * Micro and macro F1 of positive findings between draft and reference labels, as report-generation papers compute
 * "CheXpert F1" over the 14 observations (R2Gen's compute_ce.py: uncertain and blank are not positive; sklearn's
 * micro and macro averages). Observations positive in no reference and no draft are left out of the macro mean,
 * where sklearn would count them as 0, so that a small local set is not penalised for the findings it lacks.
 */
export function labelAgreement(pairs: readonly { reference: Labels; draft: Labels }[]): LabelAgreement {
  let TP = 0;
  let FP = 0;
  let FN = 0;
  const perObservation = OBSERVATIONS.map((observation): LabelCounts => {
    let tp = 0;
    let fp = 0;
    let fn = 0;
    let tn = 0;
    for (const { reference, draft } of pairs) {
      const r = reference[observation] === 1;
      const d = draft[observation] === 1;
      if (r && d) tp++;
      else if (d) fp++;
      else if (r) fn++;
      else tn++;
    }
    TP += tp;
    FP += fp;
    FN += fn;
    return {
      observation, tp, fp, fn, tn,
      precision: tp + fp ? tp / (tp + fp) : undefined,
      recall: tp + fn ? tp / (tp + fn) : undefined,
      f1: tp + fp + fn ? f1(tp, fp, fn) : undefined,
    };
  });
  const present = perObservation.filter((c) => c.f1 !== undefined);
  return {
    perObservation,
    microF1: f1(TP, FP, FN),
    macroF1: present.length ? present.reduce((s, c) => s + c.f1!, 0) / present.length : undefined,
  };
}
