import { describe, expect, it } from '@jest/globals';
import { parseReport, ReplyFormatError } from '../src/report/sections.js';

describe('parseReport', () => {
  it('reads the MedEvalKit one-line form', () => {
    expect(parseReport('Findings: Lungs are clear. Heart size normal. Impression: No acute disease.')).toEqual({
      findings: 'Lungs are clear. Heart size normal.',
      impression: 'No acute disease.',
      missing: [],
      repetitionCut: false,
    });
  });

  it('reads markdown headings, bold labels, plural and upper-case labels, and ignores a preamble', () => {
    const reply = 'Here is the report for the given images.\n\n## FINDINGS\n- Lungs are clear.\n- No effusion.\n\n**Impressions:** Normal chest.';
    expect(parseReport(reply)).toEqual({ findings: '- Lungs are clear.\n- No effusion.', impression: 'Normal chest.', missing: [], repetitionCut: false });
  });

  it('takes "Conclusion" as the impression', () => {
    expect(parseReport('Findings: Small left effusion.\nConclusion: Left pleural effusion.').impression).toBe('Left pleural effusion.');
  });

  it('does not cut a section at the word "findings" inside a sentence', () => {
    const r = parseReport('Findings: No acute findings\nare seen in the chest. Impression: Normal.');
    expect(r.findings).toBe('No acute findings\nare seen in the chest.');
    expect(r.impression).toBe('Normal.');
  });

  it('keeps a reply with one section and says which is missing', () => {
    expect(parseReport('Impression: No acute cardiopulmonary process.')).toEqual({
      findings: '',
      impression: 'No acute cardiopulmonary process.',
      missing: ['findings'],
      repetitionCut: false,
    });
  });

  it('cuts a repetition loop at the first repeat', () => {
    const r = parseReport('Findings: Heart is normal. Lungs are clear. Lungs are clear. Lungs are clear. Lungs are clear.\nImpression: Normal.');
    expect(r).toMatchObject({ findings: 'Heart is normal. Lungs are clear.', repetitionCut: true });
  });

  it('keeps a repeated phrase that is not a loop', () => {
    const r = parseReport('Findings: No effusion. No pneumothorax. Heart normal. No effusion on the left.\nImpression: Normal.');
    expect(r).toMatchObject({ findings: 'No effusion. No pneumothorax. Heart normal. No effusion on the left.', repetitionCut: false });
  });

  it('reads bulleted sections with a bold heading and a colon outside the bold', () => {
    const r = parseReport('**Findings**:\n* Heart size normal.\n* No consolidation.\n\n**Impression**:\n1. No acute disease.');
    expect(r).toMatchObject({ findings: '* Heart size normal.\n* No consolidation.', impression: '1. No acute disease.' });
  });

  it.each([
    ['a refusal', 'I am unable to comment on this image.'],
    ['the template echoed back', 'Findings: {} Impression: {}.'],
    ['empty labels', 'Findings:\nImpression:'],
    ['nothing', ''],
  ])('rejects %s as having neither section', (_what, reply) => {
    expect(() => parseReport(reply)).toThrow(new ReplyFormatError('the model reply has neither a Findings nor an Impression section with text'));
  });
});
