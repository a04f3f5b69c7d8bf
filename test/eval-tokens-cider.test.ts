import { describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readDocumentFrequencies } from '../src/eval/cider-df.js';
import { cider, ciderD } from '../src/eval/metrics/cider-d.js';
import { ptbTokens } from '../src/eval/metrics/ptb-tokens.js';
import { pythonSplit } from '../src/eval/metrics/python-split.js';
import { rougeL } from '../src/eval/metrics/rouge-l.js';
import { CIDER_MIN_STUDIES, ciderWarning } from '../src/eval/score.js';
import { intervalText } from '../src/eval/summary-text.js';

const words = (s: string) => s.split(' ');

describe('whitespace as Python\'s str.split() sees it', () => {
  it('splits at U+0085 and U+001C–U+001F but not at U+FEFF', () => {
    expect(pythonSplit('a\u0085b\u001cc\u001dd\u001ee\u001ff')).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    expect(pythonSplit(' heart\ufeffsize \u3000normal\t')).toEqual(['heart\ufeffsize', 'normal']);
  });

  it('gives ROUGE-L the rouge 1.0.1 package gives for texts with those characters', () => {
    // rouge 1.0.1, Rouge().get_scores(hyp, ref)[0]['rouge-l'], run on these strings during development.
    expect(rougeL('pleural\u0085effusion. no\u001cpneumothorax', 'pleural effusion. no pneumothorax').f).toBeCloseTo(0.999999995, 15);
    const bom = rougeL('heart\ufeffsize normal', 'heart size normal');
    expect(bom.r).toBeCloseTo(1 / 3, 15);
    expect(bom.p).toBeCloseTo(0.5, 15);
    expect(bom.f).toBeCloseTo(0.39999999520000007, 15);
  });
});

// No Stanford CoreNLP jar can be had on this machine, so these cases are the lexer's documented rules (PTBLexer's
// abbreviation, number, currency, quote, ptb3Dashes and ptb3Ellipsis rules) worked by hand, not an oracle's output.
describe('PTB tokens (Stanford PTBTokenizer -lowerCase, then pycocoevalcap\'s punctuation removal)', () => {
  it('keeps acronyms and known abbreviations whole with their stop', () => {
    expect(ptbTokens('See e.g. the CT.')).toEqual(['see', 'e.g.', 'the', 'ct']);
    expect(ptbTokens('Discussed with Dr. Lee at 9 a.m. today.')).toEqual(['discussed', 'with', 'dr.', 'lee', 'at', '9', 'a.m.', 'today']);
    expect(ptbTokens('Atelectasis vs. pneumonia.')).toEqual(['atelectasis', 'vs.', 'pneumonia']);
  });

  it('keeps numbers with a thousands comma, a clock colon or a decimal point whole', () => {
    expect(ptbTokens('1,000 mL drained at 10:30, then 1.5 L.')).toEqual(['1,000', 'ml', 'drained', 'at', '10:30', 'then', '1.5', 'l']);
    expect(ptbTokens('Lungs: clear, heart: normal')).toEqual(['lungs', 'clear', 'heart', 'normal']);
  });

  it('splits %, $ and # off as tokens of their own', () => {
    expect(ptbTokens('Up 20% ($5, #3).')).toEqual(['up', '20', '%', '-lrb-', '$', '5', '#', '3', '-rrb-']);
  });

  it('drops straight and curly quotes and keeps clitics split off', () => {
    expect(ptbTokens('Called "clear" and \'stable\'; the patient\'s film.')).toEqual(['called', 'clear', 'and', 'stable', 'the', 'patient', "'s", 'film']);
    expect(ptbTokens('\u201cNo change\u201d, it doesn\u2019t')).toEqual(['no', 'change', 'it', 'does', "n't"]);
  });

  it('turns en and em dashes into -- and … into ..., both then dropped', () => {
    expect(ptbTokens('Effusion \u2013 small \u2014 stable\u2026 see CT')).toEqual(['effusion', 'small', 'stable', 'see', 'ct']);
    expect(ptbTokens('T4-T5 well-defined - x')).toEqual(['t4-t5', 'well-defined', 'x']);
  });
});

describe('plain CIDEr (cidereval) beside CIDEr-D', () => {
  const cands = [
    '28-year-old chef found dead in San Francisco mall',
    'A 28-year-old chef who recently moved to San Francisco was found dead in the staircase of a local shopping center.',
    'The victim\'s brother said he cannot imagine anyone who would want to harm him,"Finally, it went uphill again at him."',
  ];
  const refs = [
    '28-Year-Old Chef Found Dead at San Francisco Mall',
    'A 28-year-old chef who had recently moved to San Francisco was found dead in the stairwell of a local mall this week.',
    'But the victim\'s brother says he can\'t think of anyone who would want to hurt him, saying, "Things were finally going well for him."',
  ];

  it('gives cidereval\'s plain CIDEr: no clipping, no length penalty', () => {
    // cidereval (michelecafagna26/cider) CiderScorer(df_mode="corpus") on the whitespace tokens, run during
    // development: mean 2.8313782625942543, per item 0.16407616438370767, 6.15222483470232, 2.1778337886967343.
    const r = cider(cands.map((c) => c.split(/\s+/)), refs.map((x) => [x.split(/\s+/)]));
    expect(r.score).toBeCloseTo(2.8313782625942543, 12);
    expect(r.scores[0]).toBeCloseTo(0.16407616438370767, 12);
    expect(r.scores[1]).toBeCloseTo(6.15222483470232, 12);
    expect(r.scores[2]).toBeCloseTo(2.1778337886967343, 12);
    // The same set under CIDEr-D (SummEval's expected value) is lower: the clipping and the length penalty.
    expect(ciderD(cands.map((c) => c.split(/\s+/)), refs.map((x) => [x.split(/\s+/)])).score).toBeCloseTo(2.5759014911864084, 12);
  });

  it('uses document frequencies from a file as cidereval uses a df pickle', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'raddraft-df-'));
    try {
      // The same frequencies pickled for cidereval (a defaultdict, ref_len = ln 100) gave, run during development:
      // plain [1.582231743109039, 1.5009508582224762], CIDEr-D [1.4967270993988522, 1.4802484182618953].
      const file = path.join(dir, 'df.json');
      await writeFile(file, JSON.stringify({ ref_len: Math.log(100), df: { small: 3, effusion: 5, 'small effusion': 2, left: 7, no: 40, pneumothorax: 30, 'no pneumothorax': 25 } }));
      const documentFrequencies = await readDocumentFrequencies(file);
      const hyps = [words('small left effusion'), words('no pneumothorax')];
      const references = [[words('small effusion on the left')], [words('no pneumothorax seen')]];
      const plain = cider(hyps, references, { documentFrequencies });
      expect(plain.scores[0]).toBeCloseTo(1.582231743109039, 12);
      expect(plain.scores[1]).toBeCloseTo(1.5009508582224762, 12);
      const d = ciderD(hyps, references, { documentFrequencies });
      expect(d.scores[0]).toBeCloseTo(1.4967270993988522, 12);
      expect(d.scores[1]).toBeCloseTo(1.4802484182618953, 12);
      // With one study, set-derived frequencies make every n-gram weightless; a file's do not.
      expect(cider([words('no pneumothorax')], [[words('no pneumothorax seen')]]).score).toBe(0);
      expect(cider([words('no pneumothorax')], [[words('no pneumothorax seen')]], { documentFrequencies }).score).toBeGreaterThan(0);

      await writeFile(file, JSON.stringify({ ref_len: -1, df: {} }));
      await expect(readDocumentFrequencies(file)).rejects.toThrow(`--cider-df ${file}: "ref_len" must be a positive number`);
      await writeFile(file, JSON.stringify({ ref_len: 3, df: { small: 'many' } }));
      await expect(readDocumentFrequencies(file)).rejects.toThrow('"df" of "small" must be a count, got "many"');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('warns on a set too small for its own document frequencies, and not on a larger one', () => {
    expect(ciderWarning(1, false)).toContain('with one study every n-gram is in every reference, so both are 0');
    expect(ciderWarning(CIDER_MIN_STUDIES - 1, false)).toContain(`this set's ${CIDER_MIN_STUDIES - 1} references`);
    expect(ciderWarning(CIDER_MIN_STUDIES, false)).toBeUndefined();
    expect(ciderWarning(1, true)).toBeUndefined();
  });
});

describe('terminal figures', () => {
  it('prints n/a for an interval that cannot be computed', () => {
    expect(intervalText({ low: Number.NaN, high: Number.NaN })).toBe('n/a');
    expect(intervalText({ low: 0.25, high: Number.NaN })).toBe('n/a');
    expect(intervalText({ low: 0.25, high: 0.5 })).toBe('[0.2500, 0.5000]');
  });
});
