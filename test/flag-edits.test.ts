import { describe, expect, it } from '@jest/globals';
import { flagEdits, flagEditsText } from '../src/eval/flag-edits.js';

describe('edits of flagged sentences (eval --production)', () => {
  const draft = { findings: 'The heart size is normal. Small right pneumothorax. There is a 1 cm nodule in the right upper lobe.', impression: 'Right pneumothorax.' };
  const sentenceFlags = [
    { section: 'findings' as const, sentence: 'Small right pneumothorax.', kind: 'urgent' as const, why: 'x' },
    { section: 'findings' as const, sentence: 'There is a 1 cm nodule in the right upper lobe.', kind: 'unstable' as const, why: 'asserted in 1 of 5 samples' },
    { section: 'impression' as const, sentence: 'Right pneumothorax.', kind: 'urgent' as const, why: 'x' },
  ];

  it('counts a flagged sentence the radiologist removed or changed as edited, and one kept as is (any case or spacing) as not', () => {
    const final = { findings: 'The heart size is normal.  small right  pneumothorax.', impression: 'Small right pneumothorax.' };
    const r = flagEdits([{ draft, final, sentenceFlags }]);
    expect(r.drafts).toBe(1);
    expect(r.flagged).toEqual({ sentences: 3, edited: 2, rate: 2 / 3 });
    expect(r.byKind).toEqual({ urgent: { sentences: 2, edited: 1, rate: 0.5 }, unstable: { sentences: 1, edited: 1, rate: 1 } });
    expect(r.unflagged).toEqual({ sentences: 1, edited: 0, rate: 0 });
    expect(flagEditsText(r)).toBe('flagged sentences edited before signing: 66.7 % (2 of 3; urgent 50.0 % of 2, unstable 100.0 % of 1); unflagged: 0.0 % (0 of 1), over 1 draft(s) with recorded flags');
  });

  it('leaves out drafts whose flags were not recorded with them', () => {
    expect(flagEdits([{ draft, final: draft }]).drafts).toBe(0);
    expect(flagEdits([{ draft, final: draft, sentenceFlags: [] }]).unflagged).toEqual({ sentences: 4, edited: 0, rate: 0 });
  });
});
