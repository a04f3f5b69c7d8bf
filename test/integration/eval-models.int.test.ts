import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startLingshuStandIn, type LingshuStandIn } from '../../src/demo/lingshu-standin.js';
import type { EvalResult } from '../../src/eval/result.js';
import { FIXTURE_DIR } from '../harness/peers.js';
import { runCli, type CliProcess } from '../harness/serve-process.js';

jest.setTimeout(180_000);

const SET = path.join(FIXTURE_DIR, 'eval', 'iu-xray');
const OTHER_REPORT = 'Findings: Small left pleural effusion with adjacent atelectasis. Heart size is normal.\nImpression: Small left pleural effusion.';

async function exitOf(run: CliProcess, ms = 150_000): Promise<number | null> {
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

describe('raddraft eval --models: two models drafting the same set, side by side', () => {
  let first: LingshuStandIn;
  let second: LingshuStandIn;
  let work: string;

  beforeAll(async () => {
    first = await startLingshuStandIn({ model: 'lingshu-medical-mllm/Lingshu-7B' });
    second = await startLingshuStandIn({ model: 'site/other-vlm' });
    second.setDefault({ kind: 'report', text: OTHER_REPORT });
    work = await mkdtemp(path.join(tmpdir(), 'raddraft-eval-models-'));
  });
  afterAll(async () => {
    await first.stop();
    await second.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('drafts every study with each model and reports both with paired bootstrap intervals of their differences', async () => {
    const out = path.join(work, 'compare');
    const models = `${first.model}=${first.url},${second.model}=${second.url}`;
    const run = runCli(['eval', '--set', SET, '--models', models, '--out', out, '--resamples', '300'], { RADDRAFT_LOG_LEVEL: 'warn' });
    expect(await exitOf(run)).toBe(0);
    const result = JSON.parse(await readFile(path.join(out, 'results.json'), 'utf8')) as EvalResult;

    // The same usable studies went to both endpoints, each under its own model name.
    expect(first.requests.length).toBeGreaterThan(3);
    expect(second.requests).toHaveLength(first.requests.length);
    expect(new Set(second.requests.map((r) => r.model))).toEqual(new Set([second.model]));
    await access(path.join(out, 'drafts-lingshu-medical-mllm_Lingshu-7B.jsonl'));
    await access(path.join(out, 'drafts-site_other-vlm.jsonl'));

    expect(result.groups.map((g) => g.model)).toEqual([first.model, second.model]);
    const [a, b] = result.groups;
    expect(a!.n).toBe(first.requests.length);
    expect(b!.n).toBe(first.requests.length);
    expect(result.studies.filter((s) => s.model === second.model && s.draft?.text === OTHER_REPORT)).toHaveLength(b!.n);

    const [d] = result.differences!;
    expect(d).toMatchObject({ baseline: first.model, model: second.model, n: a!.n });
    for (const name of ['BLEU-1', 'BLEU-4', 'ROUGE-L', 'CIDEr', 'CIDEr-D']) {
      const e = d!.metrics[name]!;
      // On the same studies the mean of the differences is the difference of the means.
      expect(e.mean).toBeCloseTo(b!.summary[name]!.mean - a!.summary[name]!.mean, 12);
      expect(e.low).toBeLessThanOrEqual(e.mean);
      expect(e.high).toBeGreaterThanOrEqual(e.mean);
      expect(Number.isFinite(e.low) && Number.isFinite(e.high)).toBe(true);
    }
    expect(d!.microF1.mean).toBeCloseTo(b!.microF1 - a!.microF1, 12);
    // Different replies, different scores: the replies share few words with each other.
    expect(d!.metrics['ROUGE-L']!.mean).not.toBeCloseTo(0, 3);

    expect(run.output()).toContain(`${second.model} − ${first.model}, ${a!.n} studies both drafted`);
    expect(run.output()).toMatch(/ROUGE-L\s+[+-]\d\.\d{4}\s+\[[+-]\d\.\d{4}, [+-]\d\.\d{4}\]/);
    const html = await readFile(path.join(out, 'report.html'), 'utf8');
    expect(html).toContain('<h2>Models compared</h2>');
    expect(html).toContain(`<td>${second.model}</td>`);
  });

  it('refuses a model list it cannot use before drafting anything', async () => {
    const before = first.requests.length;
    const run = runCli(['eval', '--set', SET, '--models', `${first.model}=ftp://x`, '--out', path.join(work, 'bad')], { RADDRAFT_LOG_LEVEL: 'warn' });
    expect(await exitOf(run, 60_000)).toBe(1);
    expect(run.output()).toContain('--models item 1 (lingshu-medical-mllm/Lingshu-7B): "ftp://x" is not an http(s) URL');
    expect(first.requests.length).toBe(before);
  });
});
