import { describe, expect, it } from '@jest/globals';
import { safetySet } from '../fixtures/safety-set.js';
import { settings } from '../src/config/schema.js';
import { loadConfig } from '../src/config/load.js';
import { claimsOf } from '../src/model/claims.js';
import { consistencyFlags, supportScores } from '../src/model/consistency.js';
import { findContradictions } from '../src/model/contradictions.js';
import { checkClaims, flagText } from '../src/model/draft-checks.js';
import { Sampler, type SampleReply } from '../src/model/sampling.js';
import { DEFAULT_URGENT, URGENT_LABEL, URGENT_NAMES, urgentFindings } from '../src/model/urgent.js';

const NORMAL = 'The heart size is normal. The lungs are clear. No pleural effusion or pneumothorax.';
const report = (findings: string, impression: string) => `Findings: ${findings}\nImpression: ${impression}`;

describe('claims of a sentence', () => {
  it('reads each finding with its label and side', () => {
    expect(claimsOf('Small right pleural effusion and left basilar atelectasis.').map((c) => [c.key, c.label, c.side])).toEqual([
      ['Pleural Effusion', 1, 'right'], ['Atelectasis', 1, 'left'],
    ]);
    expect(claimsOf('There is a pneumothorax on the left.').map((c) => [c.key, c.label, c.side])).toEqual([['Pneumothorax', 1, 'left']]);
    expect(claimsOf('No pneumothorax.').map((c) => [c.key, c.label])).toEqual([['Pneumothorax', 0]]);
  });
});

describe('consistency with samples', () => {
  it('flags a claim that only one of five samples repeats, with the figure', () => {
    const draft = { findings: `${NORMAL} There is a 1 cm nodule in the right upper lobe.`, impression: 'Right upper lobe nodule.' };
    const samples = [
      report(`${NORMAL} There is a nodule in the right upper lobe.`, 'Right upper lobe nodule.'),
      ...Array.from({ length: 4 }, () => report(NORMAL, 'No acute cardiopulmonary process.')),
    ];
    const flags = consistencyFlags(supportScores(draft, samples));
    expect(flags).toEqual([
      { section: 'findings', sentence: 'There is a 1 cm nodule in the right upper lobe.', kind: 'unstable', why: 'asserted in 1 of 5 samples: the model does not say this consistently' },
      { section: 'impression', sentence: 'Right upper lobe nodule.', kind: 'unstable', why: 'asserted in 1 of 5 samples: the model does not say this consistently' },
    ]);
  });

  it('counts a sample that puts the finding on the other side as not supporting it', () => {
    const draft = { findings: 'Small right pleural effusion.', impression: 'Small right pleural effusion.' };
    const samples = [
      ...Array.from({ length: 3 }, () => report('Small left pleural effusion.', 'Small left pleural effusion.')),
      ...Array.from({ length: 2 }, () => report('Small right pleural effusion.', 'Small right effusion.')),
    ];
    expect(supportScores(draft, samples).map((s) => s.supported)).toEqual([2, 2]);
  });

  it('keeps a stable claim written in other words in every sample unflagged', () => {
    const draft = { findings: 'Mild cardiomegaly. The lungs are clear.', impression: 'Mild cardiomegaly.' };
    const samples = ['The heart is mildly enlarged.', 'Mild enlargement of the cardiac silhouette.', 'Mild cardiomegaly.'].map((f) => report(`${f} Both lungs are clear.`, 'Mild cardiomegaly without edema.'));
    expect(consistencyFlags(supportScores(draft, samples))).toEqual([]);
  });

  it('does not hold the omission of a normal statement against it', () => {
    const draft = { findings: 'No acute osseous abnormality. The lungs are clear.', impression: 'No acute cardiopulmonary process.' };
    const samples = Array.from({ length: 5 }, () => report('The lungs are clear.', 'No acute cardiopulmonary process.'));
    expect(consistencyFlags(supportScores(draft, samples))).toEqual([]);
  });
});

describe('contradictions between findings and impression', () => {
  it.each([
    ['Small right pleural effusion.', 'Small left pleural effusion.', /puts pleural effusion on the left, the findings on the right/],
    ['Moderate left pleural effusion.', 'No acute cardiopulmonary process.', /calls the study normal, but the findings assert pleural effusion/],
    ['The heart size is normal.', 'Cardiomegaly.', /asserts cardiomegaly, which the findings deny/],
    ['No pneumothorax. The lungs are clear.', 'Small left pneumothorax.', /asserts pneumothorax, which the findings deny/],
    ['No lines or tubes.', 'Endotracheal tube in standard position.', /names an endotracheal tube, which the findings say is not there/],
    ['Right internal jugular central venous catheter terminates in the superior vena cava.', 'Left internal jugular central venous catheter in satisfactory position.', /puts the central line on the left, the findings on the right/],
    ['The endotracheal tube terminates 4 cm above the carina, in satisfactory position.', 'The endotracheal tube is malpositioned; recommend withdrawal by 2 cm.', /calls the endotracheal tube malpositioned, the findings well placed/],
  ])('flags "%s" against the impression "%s"', (findings, impression, why) => {
    const flags = findContradictions(findings, impression);
    expect(flags).toHaveLength(1);
    expect(flags[0]).toMatchObject({ section: 'impression', kind: 'contradiction' });
    expect(flags[0]!.why).toMatch(why);
  });

  it.each([
    [NORMAL, 'No acute cardiopulmonary process.'],
    ['Small left pleural effusion. The heart size is normal.', 'Small left effusion.'],
    ['Bilateral pleural effusions, larger on the right.', 'Right pleural effusion.'],
    ['Mild degenerative changes of the thoracic spine. The lungs are clear.', 'No acute cardiopulmonary process.'],
    ['The endotracheal tube terminates 4 cm above the carina.', 'Endotracheal tube in standard position.'],
  ])('leaves the agreeing pair "%s" / "%s" alone', (findings, impression) => {
    expect(findContradictions(findings, impression)).toEqual([]);
  });
});

describe('urgent findings', () => {
  it.each([
    ['Moderate right pneumothorax.', 'pneumothorax'],
    ['There is free air beneath the right hemidiaphragm.', 'free subdiaphragmatic air'],
    ['The endotracheal tube terminates in the right main bronchus.', 'a malpositioned tube or line'],
    ['The enteric tube is coiled in the esophagus.', 'a malpositioned tube or line'],
    ['Large left pleural effusion.', 'a large pleural effusion'],
  ])('raises "%s" as %s, labelled an unverified AI suspicion', (sentence, finding) => {
    const r = urgentFindings({ findings: `${sentence} The heart size is normal.`, impression: 'See findings.' }, DEFAULT_URGENT);
    expect(r.findings).toEqual([finding]);
    expect(r.flags).toEqual([{ section: 'findings', sentence, kind: 'urgent', why: expect.stringContaining(URGENT_LABEL) }]);
  });

  it.each([
    'No pneumothorax.',
    'No evidence of free air under the diaphragm.',
    'Small left pleural effusion.',
    'The endotracheal tube terminates 4 cm above the carina.',
    'Possible small apical pneumothorax.',
    'No malpositioned lines or tubes.',
  ])('does not raise "%s"', (sentence) => {
    expect(urgentFindings({ findings: sentence, impression: '' }, DEFAULT_URGENT).findings).toEqual([]);
  });

  it('raises only the findings the site listed', () => {
    expect(urgentFindings({ findings: 'Moderate right pneumothorax.', impression: '' }, ['free-air']).findings).toEqual([]);
    expect(urgentFindings({ findings: 'Pneumomediastinum.', impression: '' }, ['pneumomediastinum']).findings).toEqual(['pneumomediastinum']);
  });

  it('accepts in RADDRAFT_URGENT_FINDINGS exactly the names the catalogue has', () => {
    const pattern = new RegExp(settings.RADDRAFT_URGENT_FINDINGS.pattern);
    for (const name of URGENT_NAMES) expect(pattern.test(name)).toBe(true);
    expect(pattern.test(URGENT_NAMES.join(','))).toBe(true);
    const env = { RADDRAFT_DICOMWEB_URL: 'http://p/dicom-web', RADDRAFT_FHIR_URL: 'http://f/R4', RADDRAFT_LINGSHU_URL: 'http://m/v1' };
    expect(() => loadConfig({ ...env, RADDRAFT_URGENT_FINDINGS: 'pneumothorax,aortic-dissection' })).toThrow(/RADDRAFT_URGENT_FINDINGS="pneumothorax,aortic-dissection" is not none or a comma list/);
    expect(loadConfig({ ...env, RADDRAFT_URGENT_FINDINGS: 'none' }).lingshu.urgentFindings).toEqual([]);
    expect(loadConfig(env).lingshu.urgentFindings).toEqual([...DEFAULT_URGENT]);
  });
});

describe('all checks on one draft', () => {
  it('gives every flag a line of text naming its section and sentence, and the urgent findings apart', () => {
    const r = checkClaims({ findings: 'Small right pneumothorax.', impression: 'Small left pneumothorax.' }, { urgent: DEFAULT_URGENT });
    expect(r.urgent).toEqual({ findings: ['pneumothorax'] });
    expect(r.sentenceFlags.map((f) => f.kind).sort()).toEqual(['contradiction', 'urgent', 'urgent']);
    expect(r.sentenceFlags.map(flagText)).toContain(`impression "Small left pneumothorax.": ${r.sentenceFlags.find((f) => f.kind === 'contradiction')!.why}`);
    expect(r.support).toBeUndefined();
  });

  it('leaves a clean draft without flags, urgency or support figures', () => {
    expect(checkClaims({ findings: NORMAL, impression: 'No acute cardiopulmonary process.' }, { urgent: DEFAULT_URGENT })).toEqual({ sentenceFlags: [], urgent: undefined, support: undefined });
  });
});

describe('asking for samples', () => {
  it('says how many samples came back when some requests fail, and never throws', async () => {
    const sampler = new Sampler(4, 0.7);
    let calls = 0;
    const send = (extra: { n?: number }): Promise<SampleReply> => {
      calls += 1;
      if (extra.n) return Promise.resolve({ texts: ['one'] });
      return Promise.resolve(calls % 2 ? { texts: [], failed: { status: 503, reason: 'HTTP 503' } } : { texts: ['again'] });
    };
    const result = await sampler.sample(send);
    expect(sampler.usesN).toBe(false);
    expect(result.texts.length).toBeLessThan(4);
    expect(result.shortfall).toMatch(/^\d of 4 consistency samples came back \(HTTP 503\)$/);
  });

  it('asks nothing when sampling is off', async () => {
    const result = await new Sampler(0, 0.7).sample(() => Promise.reject(new Error('no request expected')));
    expect(result).toEqual({ texts: [], shortfall: undefined });
  });
});

describe('the labelled set', () => {
  it('has at least 60 drafts with planted unstable claims, contradictions, critical findings and clean drafts, the same on every run', () => {
    const set = safetySet();
    expect(set.length).toBeGreaterThanOrEqual(60);
    for (const kind of ['clean', 'unstable', 'contradiction', 'critical'] as const) expect(set.filter((c) => c.kind === kind).length).toBeGreaterThanOrEqual(10);
    expect(set.every((c) => c.samples.length === 5)).toBe(true);
    expect(safetySet()).toEqual(set);
  });
});
