import { describe, expect, it } from '@jest/globals';
import { labelReport } from '../src/report/chexpert-labeler.js';

// One block per family of the CheXpert labeler's pattern files (stanfordmlgroup/chexpert-labeler: patterns/negation.txt,
// patterns/pre_negation_uncertainty.txt, patterns/post_negation_uncertainty.txt, phrases/). The sentences are our own;
// the expected label is what the pattern named in each case gives to the finding it reaches.

describe('labeler: negation (negation.txt)', () => {
  it('negates a finding after "no", "without", "no evidence of" and "negative for"', () => {
    expect(labelReport('There is no pneumothorax.')).toEqual({ Pneumothorax: 0, 'No Finding': 1 });
    expect(labelReport('No evidence of pulmonary edema.')).toEqual({ Edema: 0, 'No Finding': 1 });
    expect(labelReport('Negative for pneumonia.')).toEqual({ Pneumonia: 0, 'No Finding': 1 });
  });

  it('distributes a negation over every alternative of a coordination, however long the list', () => {
    expect(labelReport('The lungs are clear without pneumothorax or consolidation.')).toEqual({ Pneumothorax: 0, Consolidation: 0, 'No Finding': 1 });
    expect(labelReport('No focal airspace consolidation, large pleural effusion or pneumothorax.')).toEqual({ Consolidation: 0, 'Pleural Effusion': 0, Pneumothorax: 0, 'No Finding': 1 });
    expect(labelReport('No pneumothorax, no pleural effusion and no focal consolidation.')).toEqual({ Consolidation: 0, 'Pleural Effusion': 0, Pneumothorax: 0, 'No Finding': 1 });
  });

  it('stops a negation at a verb or a new clause', () => {
    expect(labelReport('No pneumothorax is seen with a small right effusion.')).toEqual({ Pneumothorax: 0, 'Pleural Effusion': 1 });
    expect(labelReport('No consolidation, however there is a small left pleural effusion.')).toEqual({ Consolidation: 0, 'Pleural Effusion': 1 });
  });

  it('negates a finding called normal, unremarkable or within normal limits', () => {
    expect(labelReport('Unremarkable cardiomediastinal silhouette.')).toEqual({ 'Enlarged Cardiomediastinum': 0, 'No Finding': 1 });
    expect(labelReport('Heart size is within normal limits.')).toEqual({ Cardiomegaly: 0, 'No Finding': 1 });
  });

  it('negates a finding that has resolved, was removed or is no longer seen', () => {
    expect(labelReport('The right pleural effusion has resolved.')).toEqual({ 'Pleural Effusion': 0, 'No Finding': 1 });
    expect(labelReport('Interval resolution of left lower lobe consolidation.')).toEqual({ Consolidation: 0, 'No Finding': 1 });
    expect(labelReport('The left chest tube has been removed.')).toEqual({ 'Support Devices': 0, 'No Finding': 1 });
    expect(labelReport('The previously noted pulmonary nodule is no longer seen.')).toEqual({ 'Lung Lesion': 0, 'No Finding': 1 });
  });

  it('negates "the heart is not enlarged" and "rather than"', () => {
    expect(labelReport('The heart is not enlarged.')).toEqual({ Cardiomegaly: 0, 'No Finding': 1 });
    expect(labelReport('Linear atelectasis rather than pneumonia.')).toEqual({ Atelectasis: 1, Pneumonia: 0 });
  });
});

describe('labeler: uncertainty matched before negation (pre_negation_uncertainty.txt)', () => {
  it('makes "cannot exclude", "cannot rule out" and "not excluded" uncertain, not negative', () => {
    expect(labelReport('Cannot exclude early pneumonia.')).toEqual({ Pneumonia: -1 });
    expect(labelReport('Cannot rule out a small left pleural effusion.')).toEqual({ 'Pleural Effusion': -1 });
    expect(labelReport('A small apical pneumothorax is not excluded.')).toEqual({ Pneumothorax: -1 });
  });

  it('makes "no new" uncertain', () => {
    expect(labelReport('No new consolidation.')).toEqual({ Consolidation: -1 });
  });
});

describe('labeler: uncertainty after negation (post_negation_uncertainty.txt)', () => {
  it('makes a stable, unchanged or borderline heart or mediastinal outline uncertain', () => {
    expect(labelReport('Stable cardiomediastinal silhouette.')).toEqual({ 'Enlarged Cardiomediastinum': -1 });
    expect(labelReport('Heart size is unchanged.')).toEqual({ Cardiomegaly: -1 });
    expect(labelReport('Borderline heart size.')).toEqual({ Cardiomegaly: -1 });
  });

  it('leaves any other finding called stable, unchanged or borderline positive', () => {
    expect(labelReport('Stable small left pleural effusion.')).toEqual({ 'Pleural Effusion': 1 });
    expect(labelReport('Unchanged left lower lobe atelectasis.')).toEqual({ Atelectasis: 1 });
    expect(labelReport('The right PICC line is unchanged in position.')).toEqual({ 'Support Devices': 1, 'No Finding': 1 });
    expect(labelReport('Borderline cardiomegaly.')).toEqual({ Cardiomegaly: 1 });
  });

  it('makes possible, probable, questionable and suspicious findings uncertain', () => {
    expect(labelReport('Possible right lower lobe pneumonia.')).toEqual({ Pneumonia: -1 });
    expect(labelReport('Probable small left effusion.')).toEqual({ 'Pleural Effusion': -1 });
    expect(labelReport('Questionable nodule in the right upper lobe.')).toEqual({ 'Lung Lesion': -1 });
  });

  it('leaves hedge words the patterns do not have positive: likely, probably, suggestive of', () => {
    expect(labelReport('Likely right lower lobe pneumonia.')).toEqual({ Pneumonia: 1 });
    expect(labelReport('Appearance suggestive of pulmonary edema.')).toEqual({ Edema: 1 });
    expect(labelReport('Probably atelectasis at the left base.')).toEqual({ Atelectasis: 1 });
  });

  it('makes only what "may represent", "may be", "concerning for" or "correlate clinically for" governs uncertain, not the finding before it', () => {
    expect(labelReport('Left basilar opacity may represent atelectasis.')).toEqual({ 'Lung Opacity': 1, Atelectasis: -1 });
    expect(labelReport('Opacity at the right base may be atelectasis.')).toEqual({ 'Lung Opacity': 1, Atelectasis: -1 });
    expect(labelReport('Right upper lobe opacity concerning for pneumonia.')).toEqual({ 'Lung Opacity': 1, Pneumonia: -1 });
    expect(labelReport('Mild interstitial edema, correlate clinically for infection.')).toEqual({ Edema: 1, Pneumonia: -1 });
  });

  it('makes a finding that is its subject uncertain: "may be present", "is possible", "is suspected"', () => {
    expect(labelReport('A small left effusion may be present.')).toEqual({ 'Pleural Effusion': -1 });
    expect(labelReport('Early pneumonia is suspected.')).toEqual({ Pneumonia: -1 });
  });

  it('makes only the alternatives joined by "or" or "versus" uncertain', () => {
    expect(labelReport('Atelectasis or pneumonia in the right lower lobe.')).toEqual({ Atelectasis: -1, Pneumonia: -1 });
    expect(labelReport('Atelectasis versus consolidation at the left base.')).toEqual({ Atelectasis: -1, Consolidation: -1 });
    expect(labelReport('Enteric tube in the stomach or distal esophagus.')).toEqual({ 'Support Devices': 1, 'No Finding': 1 });
    expect(labelReport('Small right pleural effusion with adjacent atelectasis or scarring.')).toEqual({ 'Pleural Effusion': 1, Atelectasis: -1, 'Lung Opacity': -1 });
  });

  it('makes a finding that is poorly evaluated or not well visualized uncertain', () => {
    expect(labelReport('Pneumothorax is not well evaluated on this supine film.')).toEqual({ Pneumothorax: -1 });
    expect(labelReport('A left effusion is poorly evaluated.')).toEqual({ 'Pleural Effusion': -1 });
  });

  it('always makes vascular congestion uncertain', () => {
    expect(labelReport('Mild pulmonary vascular congestion.')).toEqual({ Edema: -1 });
  });
});

describe('labeler: mention and unmention phrases (phrases/)', () => {
  it('does not take a calcified nodule for a lung lesion nor a pericardial effusion for a pleural one', () => {
    expect(labelReport('Calcified nodule in the left upper lobe.')).toEqual({});
    expect(labelReport('Small pericardial effusion.')).toEqual({ 'No Finding': 1 });
  });

  it('keeps No Finding positive when only support devices are', () => {
    expect(labelReport('Endotracheal tube in good position. Lungs are clear.')).toEqual({ 'Support Devices': 1, 'No Finding': 1 });
  });
});
