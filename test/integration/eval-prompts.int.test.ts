import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startLingshuStandIn, type LingshuStandIn } from '../../src/demo/lingshu-standin.js';
import type { VariantSummary } from '../../src/eval/prompt-variants.js';
import type { EvalResult } from '../../src/eval/result.js';
import { fixture } from '../harness/peers.js';
import { runCli } from '../harness/serve-process.js';

jest.setTimeout(180_000);

const REPLY = 'Findings: Unchanged small left pleural effusion. The heart size is normal.\nImpression: Small left effusion.';

describe('raddraft eval --prompts: each prompt variant side by side, with comparison wording with and without a prior', () => {
  let model: LingshuStandIn;
  let work: string;
  const env = () => ({ RADDRAFT_LINGSHU_URL: model.url, RADDRAFT_LINGSHU_MODEL: model.model, RADDRAFT_LOG_LEVEL: 'warn' });
  const withPrior = fixture('chest-pa-lat');
  const withoutPrior = fixture('chest-ap-mono1');

  beforeAll(async () => {
    model = await startLingshuStandIn();
    model.setDefault({ kind: 'report', text: REPLY });
    work = await mkdtemp(path.join(tmpdir(), 'raddraft-eval-prompts-'));
  });
  afterAll(async () => {
    await model.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('drafts the set once per variant, quotes the prior where the references give one, and reports the wording rates', async () => {
    const folder = path.join(work, 'dicom');
    await mkdir(folder, { recursive: true });
    for (const s of [withPrior, withoutPrior]) for (const [i, f] of s.files.entries()) await copyFile(f, path.join(folder, `${s.studyUid}-${i}.dcm`));
    const refs = path.join(work, 'refs.csv');
    await writeFile(refs, [
      'study_uid,findings,impression,prior_date,prior_findings,prior_impression',
      `${withPrior.studyUid},"Small left pleural effusion, unchanged.",Small left effusion.,2026-10-01,"Small left pleural effusion.",Small left effusion.`,
      `${withoutPrior.studyUid},"Small left pleural effusion.",Small left effusion.,,,`,
    ].join('\n'));
    const out = path.join(work, 'out');
    const run = runCli(['eval', '--dicom', folder, '--references', refs, '--out', out, '--prompts', 'medevalkit,prior-report', '--resamples', '50'], env());
    expect(await run.exited).toBe(0);
    const { variants } = JSON.parse(await readFile(path.join(out, 'prompts.json'), 'utf8')) as { variants: VariantSummary[] };
    expect(variants.map((v) => [v.variant, v.promptVersion, v.scored])).toEqual([['medevalkit', 'medevalkit-report-1', 2], ['prior-report', 'prior-report-1', 2]]);
    expect(variants[0]!.comparisonWording).toEqual({ withPrior: { drafts: 0, withWording: 0 }, withoutPrior: { drafts: 2, withWording: 2, rate: 1 } });
    expect(variants[1]!.comparisonWording).toEqual({ withPrior: { drafts: 1, withWording: 1, rate: 1 }, withoutPrior: { drafts: 1, withWording: 1, rate: 1 } });
    const priorRequests = model.requests.filter((r) => r.texts.some((t) => t.includes('<prior_report>')));
    expect(priorRequests).toHaveLength(1);
    expect(priorRequests[0]!.texts.join('\n')).toContain('"date":"2026-10-01"');
    const result = JSON.parse(await readFile(path.join(out, 'prior-report', 'results.json'), 'utf8')) as EvalResult;
    expect(result.studies.find((s) => s.id === withPrior.studyUid)!.priorGiven).toBe(true);
    expect(run.output()).toMatch(/prior-report-1\s+2 .*\n\s+comparison wording: with a prior report 100\.0 % \(1 of 1\), without 100\.0 % \(1 of 1\)/);
  });

  it('refuses an unknown variant and --prompts with --models, before drafting anything', async () => {
    model.reset();
    const bad = runCli(['eval', '--set', work, '--prompts', 'medevalkit,freestyle', '--out', path.join(work, 'x')], env());
    expect(await bad.exited).toBe(1);
    expect(bad.output()).toContain('--prompts: "freestyle" is not a prompt variant (medevalkit, clinical-context, prior-report)');
    const both = runCli(['eval', '--set', work, '--prompts', 'medevalkit,prior-report', '--models', 'a,b', '--out', path.join(work, 'y')], env());
    expect(await both.exited).toBe(1);
    expect(both.output()).toContain('--prompts and --models cannot be combined');
    expect(model.requests).toHaveLength(0);
  });
});
