import { describe, expect, it } from '@jest/globals';
import { bootstrapMean, quantile } from '../src/eval/bootstrap.js';
import { brevityPenalty, closestReferenceLength, modifiedPrecision, sentenceBleu, bleu1to4 } from '../src/eval/metrics/bleu.js';
import { labelReport } from '../src/report/chexpert-labeler.js';
import { ciderD } from '../src/eval/metrics/cider-d.js';
import { labelAgreement } from '../src/eval/metrics/label-agreement.js';
import { medEvalKitReference, medEvalKitTokens } from '../src/eval/metrics/medevalkit-text.js';
import { ptbTokens } from '../src/eval/metrics/ptb-tokens.js';
import { rougeL } from '../src/eval/metrics/rouge-l.js';
import { wordDiff } from '../src/eval/word-diff.js';

const words = (s: string) => s.split(' ');

// The examples of NLTK's nltk/translate/bleu_score.py docstrings (sentence_bleu, modified_precision, brevity_penalty).
const hypothesis1 = words('It is a guide to action which ensures that the military always obeys the commands of the party');
const hypothesis2 = words('It is to insure the troops forever hearing the activity guidebook that party direct');
const reference1 = words('It is a guide to action that ensures that the military will forever heed Party commands');
const reference2 = words('It is the guiding principle which guarantees the military forces always being under the command of the Party');
const reference3 = words('It is the practical guide for the army always to heed the directions of the party');
const refs = [reference1, reference2, reference3];

describe('BLEU (NLTK sentence_bleu, no smoothing)', () => {
  it('gives the values of NLTK\'s documented examples', () => {
    expect(sentenceBleu(refs, hypothesis1)).toBeCloseTo(0.5045666840058485, 14); // doctest: 0.5045...
    expect(sentenceBleu(refs, hypothesis1, [0.2, 0.2, 0.2, 0.2, 0.2])).toBeCloseTo(0.39202634084155785, 14); // doctest: 0.3920...
    expect(sentenceBleu(refs, hypothesis1, [0.5, 0.5])).toBeCloseTo(0.7453559924999299, 14); // doctest: 0.7453...
    expect(sentenceBleu(refs, hypothesis1, [1 / 3, 1 / 3, 1 / 3])).toBeCloseTo(0.6240726989348756, 14); // doctest: 0.6240...
    expect(sentenceBleu([reference1], hypothesis1)).toBeCloseTo(0.41180376356915777, 14); // doctest (method0): 0.4118
  });

  it('scores a hypothesis without 3- and 4-gram matches near 0 but not 0, as NLTK does (sys.float_info.min)', () => {
    const score = sentenceBleu(refs, hypothesis2);
    expect(score).toBeGreaterThan(0);
    expect(score).toBeCloseTo(5.92086005993801e-155, 168); // doctest: round(..., 4) == 0.0
    expect(sentenceBleu([words('a b c')], words('a b c'))).toBeCloseTo(1.2213386697554703e-77, 90);
  });

  it('returns 0 when no unigram matches (NLTK\'s early return)', () => {
    expect(sentenceBleu([words('John loves Mary')], words('Mary')) > 0).toBe(true);
    expect(sentenceBleu([words('John loves Mary')], words('Peter'), [1])).toBe(0);
  });

  it('computes modified precision and brevity penalty as NLTK documents', () => {
    const mp = modifiedPrecision([words('the cat is on the mat'), words('there is a cat on the mat')], words('the the the the the the the'), 1);
    expect(mp.numerator / mp.denominator).toBeCloseTo(0.2857, 4); // doctest: 0.2857...
    const h1 = modifiedPrecision(refs, hypothesis1, 2);
    expect([h1.numerator, h1.denominator]).toEqual([10, 17]); // 0.5882352941176471
    expect(brevityPenalty(12, 12)).toBe(1);
    expect(brevityPenalty(28, 12)).toBeCloseTo(0.2635971381157267, 15); // doctest: 0.2635971381157267
    // doctest: references of 11 and 8 words, hypothesis of 7 → closest length 8 → 0.8668...
    const lengths = [11, 8].map((n) => new Array<string>(n).fill('w'));
    expect(closestReferenceLength(lengths, 7)).toBe(8);
    expect(brevityPenalty(closestReferenceLength(lengths, 7), 7)).toBeCloseTo(0.8668778997501817, 12);
  });

  it('scores MedEvalKit-style texts as its cal_report_metrics.py does (values from NLTK on the same tokens)', () => {
    // Reference: the first sample of MedEvalKit's IU_XRAY test.json, built with its f-string (note the double stop).
    const reference = medEvalKitReference('Lung volumes are low. No focal infiltrates. Heart size normal.', 'Hypoinflation with no visible active cardiopulmonary disease.');
    expect(reference.endsWith('disease..')).toBe(true);
    const reply = 'Findings: The lungs are clear. Heart size is normal. No pneumothorax or pleural effusion.\nImpression: No acute cardiopulmonary disease.';
    const [b1, b2, b3, b4] = bleu1to4(medEvalKitTokens(reference), medEvalKitTokens(reply));
    expect(b1).toBeCloseTo(0.4980549361539613, 14);
    expect(b2).toBeCloseTo(0.3604656983681362, 14);
    expect(b3).toBeCloseTo(0.2280773668579171, 14);
    expect(b4).toBeCloseTo(3.9402830597109596e-78, 90);
    expect(medEvalKitTokens('Heart: normal.\nLungs')).toEqual(['heart:', 'normal', '.\nlungs']);
  });
});

describe('ROUGE-L (rouge 1.0.1, as MedEvalKit calls it)', () => {
  it('gives the rouge package README\'s ROUGE-L for its example', () => {
    // pltrdy/rouge README, "Score 1 sentence": rouge-l f 0.44705881864636676, p 0.5277777777777778, r 0.3877551020408163.
    const hyp = "the #### transcript is a written version of each day 's cnn student news program use this transcript to he    lp students with reading comprehension and vocabulary use the weekly newsquiz to test your knowledge of storie s you     saw on cnn student news";
    const ref = "this page includes the show transcript use the transcript to help students with reading comprehension and     vocabulary at the bottom of the page , comment for a chance to be mentioned on cnn student news . you must be a teac    her or a student age # # or older to request a mention on the cnn student news roll call . the weekly newsquiz tests     students ' knowledge of even ts in the news";
    const s = rougeL(hyp, ref);
    expect(s.f).toBeCloseTo(0.44705881864636676, 14);
    expect(s.p).toBeCloseTo(0.5277777777777778, 14);
    expect(s.r).toBeCloseTo(0.3877551020408163, 14);
  });

  it('scores an identical text 1 − 5e-9 (the package\'s 1e-8 in the denominator) and an empty draft 0', () => {
    expect(rougeL('findings: clear lungs. impression: normal.', 'findings: clear lungs. impression: normal.').f).toBeCloseTo(0.999999995, 12);
    expect(rougeL('', 'findings: clear lungs.').f).toBe(0);
  });

  it('counts distinct words of the union LCS over sentences (hand-computed case)', () => {
    // ref sentences "a b c", "d e"; hyp "a c d", "e": LCS words {a, c}, {d}? no: pairs give {a,c},{}, {d},{e} → union {a,c,d,e}
    // m = 5 distinct reference words, n = 4 distinct hypothesis words: R = 4/5, P = 4/4.
    const s = rougeL('a c d. e', 'a b c. d e');
    expect(s.r).toBeCloseTo(0.8, 12);
    expect(s.p).toBeCloseTo(1, 12);
  });
});

describe('CIDEr-D (pycocoevalcap cider_scorer.py)', () => {
  it('gives SummEval\'s expected CIDEr for its three examples (Yale-LILY/SummEval evaluation/tests/test_cider.py)', () => {
    const cands = [
      '28-year-old chef found dead in San Francisco mall',
      'A 28-year-old chef who recently moved to San Francisco was found dead in the staircase of a local shopping center.',
      'The victim\'s brother said he cannot imagine anyone who would want to harm him,"Finally, it went uphill again at him."',
    ];
    const refsText = [
      '28-Year-Old Chef Found Dead at San Francisco Mall',
      'A 28-year-old chef who had recently moved to San Francisco was found dead in the stairwell of a local mall this week.',
      'But the victim\'s brother says he can\'t think of anyone who would want to hurt him, saying, "Things were finally going well for him."',
    ];
    // The test runs CiderMetric(tokenize=False): whitespace tokens, case kept. Expected 2.5759014911864084.
    const { score } = ciderD(cands.map((c) => c.split(/\s+/)), refsText.map((r) => [r.split(/\s+/)]));
    expect(score).toBeCloseTo(2.5759014911864084, 12);
  });

  it('scores a hypothesis equal to its only reference 10 when n-grams are unique to it (hand-computed)', () => {
    const { scores } = ciderD([words('a b c d'), words('e f g h')], [[words('a b c d')], [words('e f g h')]]);
    expect(scores[0]).toBeCloseTo(10, 12);
    expect(scores[1]).toBeCloseTo(10, 12);
  });

  it('scores 0 for a set of one study (log of one image is 0, as in pycocoevalcap)', () => {
    expect(ciderD([words('a b')], [[words('a b')]]).score).toBe(0);
  });

  it('tokenizes as PTBTokenizer -lowerCase followed by pycocoevalcap\'s punctuation removal', () => {
    expect(ptbTokens('Heart size is normal. No effusion, no pneumothorax; (stable).')).toEqual(['heart', 'size', 'is', 'normal', 'no', 'effusion', 'no', 'pneumothorax', '-lrb-', 'stable', '-rrb-']);
    expect(ptbTokens("Can't exclude a 1.5 cm nodule -- see CT.")).toEqual(['ca', "n't", 'exclude', 'a', '1.5', 'cm', 'nodule', 'see', 'ct']);
  });
});

describe('CheXpert-style labeler', () => {
  // stanfordmlgroup/chexpert-labeler: sample_reports.csv and the labels in its labeled_reports.csv.
  it('labels the CheXpert labeler\'s own sample reports as it does', () => {
    expect(labelReport('Heart size normal and lungs are clear. No edema or pneumonia. No effusion')).toEqual({
      'No Finding': 1, Cardiomegaly: 0, Edema: 0, Pneumonia: 0, 'Pleural Effusion': 0,
    });
    expect(labelReport('1. Left pleural effusion with adjacent atelectasis. Right effusion is also present. 2. Cardiomegaly without overt edema.')).toEqual({
      Cardiomegaly: 1, Edema: 0, Atelectasis: 1, 'Pleural Effusion': 1,
    });
    expect(labelReport('Minimal patchy airspace disease within the lingula, may reflect atelectasis or consolidation.')).toEqual({
      'Lung Opacity': 1, Consolidation: -1, Atelectasis: -1,
    });
    expect(labelReport('1. Stable mild cardiomegaly. 2. Hyperexpanded but clear lungs.')).toEqual({ Cardiomegaly: 1 });
  });

  it('applies negation, uncertainty and the No Finding rule', () => {
    expect(labelReport('Small left pleural effusion cannot be excluded.')).toEqual({ 'Pleural Effusion': -1 });
    expect(labelReport('The cardiomediastinal silhouette is stable. Endotracheal tube in place.')).toEqual({ 'Enlarged Cardiomediastinum': -1, 'Support Devices': 1 });
    expect(labelReport('No pneumothorax. Mild pulmonary edema.')).toEqual({ Pneumothorax: 0, Edema: 1 });
    expect(labelReport('Findings: no pneumothorax, effusion or consolidation.')['No Finding']).toBe(1);
    // "emphysema" is none of the 14 but is a finding: No Finding is not positive.
    expect(labelReport('Emphysema. No effusion.')).toEqual({ 'Pleural Effusion': 0 });
    // "chf" is Edema and makes Cardiomegaly uncertain (aggregate.py).
    expect(labelReport('Findings compatible with chf.')).toEqual({ Edema: 1, Cardiomegaly: -1 });
  });

  it('computes micro and macro F1 of positive findings (hand-computed)', () => {
    const a = labelAgreement([
      { reference: { Edema: 1, Cardiomegaly: 1 }, draft: { Edema: 1 } },
      { reference: { 'Pleural Effusion': 1 }, draft: { 'Pleural Effusion': -1, Pneumothorax: 1 } },
      { reference: { 'No Finding': 1 }, draft: { 'No Finding': 1 } },
    ]);
    // TP: Edema, No Finding = 2; FP: Pneumothorax = 1; FN: Cardiomegaly, Pleural Effusion (uncertain is not positive) = 2.
    expect(a.microF1).toBeCloseTo((2 * 2) / (2 * 2 + 1 + 2), 12);
    // Per observation F1: Edema 1, No Finding 1, Cardiomegaly 0, Pleural Effusion 0, Pneumothorax 0 → 2/5.
    expect(a.macroF1).toBeCloseTo(0.4, 12);
    expect(a.perObservation.find((c) => c.observation === 'Edema')).toMatchObject({ tp: 1, fp: 0, fn: 0, tn: 2 });
  });
});

describe('bootstrap intervals and word diff', () => {
  it('interpolates quantiles as numpy does and brackets the mean', () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([0, 10], 0.025)).toBeCloseTo(0.25, 12);
    const values = Array.from({ length: 200 }, (_, i) => (i % 10) / 10);
    const e = bootstrapMean(values, { seed: 7 });
    expect(e.mean).toBeCloseTo(0.45, 12);
    expect(e.low).toBeLessThan(e.mean);
    expect(e.high).toBeGreaterThan(e.mean);
    expect(e.high - e.low).toBeLessThan(0.2);
    expect(bootstrapMean([0.3, 0.3, 0.3])).toMatchObject({ mean: 0.3, low: 0.3, high: 0.3 });
    expect(bootstrapMean(values, { seed: 7 })).toEqual(e);
  });

  it('marks words only in the draft or only in the reference', () => {
    expect(wordDiff('no large effusion seen', 'no effusion or pneumothorax seen')).toEqual([
      { op: 'same', text: 'no' }, { op: 'draft', text: 'large' }, { op: 'same', text: 'effusion' },
      { op: 'reference', text: 'or pneumothorax' }, { op: 'same', text: 'seen' },
    ]);
  });
});

describe('CheXpert-style labeler, lists and clauses', () => {
  it('negates every item of a negated list and stops at a new clause', () => {
    expect(labelReport('The lungs are clear without focal consolidation, pleural effusion or pneumothorax.')).toEqual({ Consolidation: 0, 'Pleural Effusion': 0, Pneumothorax: 0, 'No Finding': 1 });
    expect(labelReport('No pneumothorax but there is a small left effusion.')).toEqual({ Pneumothorax: 0, 'Pleural Effusion': 1 });
    expect(labelReport('Normal heart size, small left pleural effusion.')).toEqual({ Cardiomegaly: 0, 'Pleural Effusion': 1 });
  });
});
