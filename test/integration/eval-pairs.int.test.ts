import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { EvalResult } from '../../src/eval/result.js';
import { runCli, type CliProcess } from '../harness/serve-process.js';

jest.setTimeout(120_000);

const ORACLE_DIR = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'eval-oracle');
const PAIRS = path.join(ORACLE_DIR, 'pairs-320.jsonl');
const TEXT_METRICS = ['BLEU-1', 'BLEU-2', 'BLEU-3', 'BLEU-4', 'ROUGE-L', 'CIDEr', 'CIDEr-D'] as const;

interface OracleFigures {
  source: string;
  means: Record<(typeof TEXT_METRICS)[number], number>;
  pairs: ({ id: string } & Record<(typeof TEXT_METRICS)[number], number>)[];
}

/** The CLI's exit code, or a failure naming the command if it has not exited within the limit. */
async function exitOf(run: CliProcess, ms = 90_000): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      run.child.kill('SIGKILL');
      reject(new Error(`raddraft eval did not exit within ${ms} ms:\n${run.output().slice(-2000)}`));
    }, ms);
  });
  try {
    return await Promise.race([run.exited, limit]);
  } finally {
    clearTimeout(timer);
  }
}

describe('raddraft eval --pairs: given drafts scored without a model', () => {
  let work: string;
  const env = { RADDRAFT_LOG_LEVEL: 'warn' };
  const readResult = async (out: string) => JSON.parse(await readFile(path.join(out, 'results.json'), 'utf8')) as EvalResult;

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'raddraft-eval-pairs-'));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('scores 320 generated pairs as NLTK, rouge 1.0.1 and cidereval score them, to within 1e-9 per pair', async () => {
    // test/eval-oracle/oracle-figures.json holds the figures of the reference implementations run on these pairs
    // during development ("source" in that file names each): NLTK 3.8 sentence_bleu on MedEvalKit's prep_reports
    // tokens, rouge 1.0.1 Rouge().get_scores(hyp.lower(), ref.lower()), cidereval's Cider and CiderD scorers with
    // df_mode="corpus" on the same PTB tokens.
    const oracle = JSON.parse(await readFile(path.join(ORACLE_DIR, 'oracle-figures.json'), 'utf8')) as OracleFigures;
    const out = path.join(work, 'run320');
    const run = runCli(['eval', '--pairs', PAIRS, '--out', out, '--resamples', '200'], env);
    expect(await exitOf(run)).toBe(0);
    const result = await readResult(out);
    expect(result.kind).toBe('pairs');
    expect(result.counts).toMatchObject({ studies: 320, scored: 320, failed: 0 });
    expect(result.warnings).toEqual([]);
    expect(oracle.pairs).toHaveLength(320);
    for (const want of oracle.pairs) {
      const got = result.studies.find((s) => s.id === want.id)!;
      for (const name of TEXT_METRICS) expect(Math.abs(got.metrics[name]! - want[name])).toBeLessThan(1e-9);
      expect(got.labels?.reference).toBeDefined();
      expect(got.labels?.draft).toBeDefined();
    }
    for (const name of TEXT_METRICS) expect(Math.abs(result.summary[name]!.mean - oracle.means[name])).toBeLessThan(1e-9);
    // Plain CIDEr is not CIDEr-D: they are reported apart, each under its own name.
    expect(result.summary.CIDEr!.mean).not.toBeCloseTo(result.summary['CIDEr-D']!.mean, 3);
    expect(result.metrics.map((m) => m.name)).toEqual(expect.arrayContaining(['CIDEr', 'CIDEr-D']));
    // One summary per model and prompt the lines name, and one for lines that name none.
    expect(result.groups.map((g) => `${g.model}/${g.promptVersion}`).sort()).toEqual(expect.arrayContaining(['not given/not given', 'vendor-a/not given', 'research-b/site-prompt-2']));
    expect(result.groups.reduce((s, g) => s + g.n, 0)).toBe(320);
    const html = await readFile(path.join(out, 'report.html'), 'utf8');
    expect(html).toContain('<td>CIDEr</td>');
    expect(html).toContain('id="s-pair-000"');
    expect(run.output()).toMatch(/320 of 320 studies scored/);
    expect(run.output()).toMatch(/CIDEr\s+\d\.\d{4}\s+\[\d\.\d{4}, \d\.\d{4}\]/);
  });

  it('warns that CIDEr says little on a tiny set and prints n/a for an interval no resample can give', async () => {
    const file = path.join(work, 'two.jsonl');
    await writeFile(file, [
      JSON.stringify({ id: 'a', draft: 'Small left pleural effusion.', reference: 'Small left pleural effusion.' }),
      JSON.stringify({ id: 'b', draft: 'Emphysema.', reference: 'Emphysema.' }),
    ].join('\n'));
    const out = path.join(work, 'two');
    const run = runCli(['eval', '--pairs', file, '--out', out, '--resamples', '200'], env);
    expect(await exitOf(run)).toBe(0);
    // A resample holding only "b" has no positive finding, so its macro F1 is undefined.
    expect(run.output()).toMatch(/F1 macro\s+1\.0000\s+n\/a/);
    expect(run.output()).not.toContain('NaN');
    expect(run.output()).toMatch(/warning: CIDEr and CIDEr-D take their document frequencies from this set's 2 references/);
    expect((await readResult(out)).warnings).toHaveLength(1);
  });

  it('names the line and the field of a bad pair, and scores nothing', async () => {
    const file = path.join(work, 'bad.jsonl');
    await writeFile(file, `${JSON.stringify({ id: 'a', draft: 'x', reference: 'y' })}\n${JSON.stringify({ id: 'b', draft: 'x' })}\n`);
    const run = runCli(['eval', '--pairs', file, '--out', path.join(work, 'bad')], env);
    expect(await exitOf(run)).toBe(1);
    expect(run.output()).toContain(`${file} line 2 (id "b"): "reference" is missing`);
    await writeFile(file, `${JSON.stringify({ id: 'a', draft: 'x', reference: 'y' })}\n${JSON.stringify({ id: 'a', draft: ['x'], reference: 'y' })}\n`);
    const again = runCli(['eval', '--pairs', file, '--out', path.join(work, 'bad')], env);
    expect(await exitOf(again)).toBe(1);
    expect(again.output()).toContain(`${file} line 2 (id "a"): "draft" must be text, not a list`);
  });
});
