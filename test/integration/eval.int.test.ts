import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startLingshuStandIn, STANDIN_REPORT, type LingshuStandIn } from '../../src/demo/lingshu-standin.js';
import { waitFor } from '../../src/demo/ports.js';
import type { EvalResult } from '../../src/eval/result.js';
import { medEvalKitReference } from '../../src/eval/metrics/medevalkit-text.js';
import { scorePairs } from '../../src/eval/score.js';
import { MEDEVALKIT_REPORT_PROMPT } from '../../src/model/prompt.js';
import { launchChromium, screenshot } from '../harness/browser.js';
import { FIXTURE_DIR, fixture } from '../harness/peers.js';
import { runCli } from '../harness/serve-process.js';

jest.setTimeout(180_000);

const SET = path.join(FIXTURE_DIR, 'eval', 'iu-xray');

interface RawSample { id: string; findings: string; impression: string; image: string[] }

describe('raddraft eval on a MedEvalKit-style set, with the Lingshu stand-in', () => {
  let model: LingshuStandIn;
  let work: string;
  let samples: RawSample[];
  const env = () => ({ RADDRAFT_LINGSHU_URL: model.url, RADDRAFT_LINGSHU_MODEL: model.model, RADDRAFT_LOG_LEVEL: 'warn' });
  const readResult = async (out: string) => JSON.parse(await readFile(path.join(out, 'results.json'), 'utf8')) as EvalResult;

  beforeAll(async () => {
    model = await startLingshuStandIn();
    work = await mkdtemp(path.join(tmpdir(), 'raddraft-eval-'));
    samples = JSON.parse(await readFile(path.join(SET, 'test.json'), 'utf8')) as RawSample[];
  });
  afterAll(async () => {
    await model.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('drafts every usable sample once with MedEvalKit\'s prompt, scores it and writes results.json', async () => {
    model.reset();
    const out = path.join(work, 'run1');
    const run = runCli(['eval', '--set', SET, '--out', out], env());
    expect(await run.exited).toBe(0);
    const usable = samples.filter((s) => (s.findings + s.impression).trim() && s.id !== 'open_i_2001');
    expect(model.requests).toHaveLength(usable.length);
    for (const r of model.requests) {
      expect(r.images).toHaveLength(2);
      expect(r.images.every((i) => i.width % 28 === 0 && i.height % 28 === 0)).toBe(true);
      expect(r.texts.at(-1)).toBe(MEDEVALKIT_REPORT_PROMPT);
      expect(r.temperature).toBe(0);
    }
    const result = await readResult(out);
    expect(result.kind).toBe('medevalkit');
    expect(result.counts).toMatchObject({ scored: usable.length, failed: 1, leftOut: 1, resumed: 0 });
    expect(result.failures).toEqual([{ id: 'open_i_2001', reason: expect.stringContaining('CXR2001_IM-0001-1001.png is not in') as unknown as string }]);
    expect(result.promptVersion).toBe('medevalkit-report-1');

    // The scores are those of the metric modules on MedEvalKit's texts: the reply against "Findings: … Impression: …."
    const expected = await scorePairs(usable.map((s) => ({ id: s.id, hypothesis: STANDIN_REPORT, reference: medEvalKitReference(s.findings, s.impression) })));
    for (const row of expected.perPair) {
      const got = result.studies.find((s) => s.id === row.id)!;
      for (const [name, value] of Object.entries(row.metrics)) expect(got.metrics[name]).toBeCloseTo(value, 12);
      expect(got.labels).toEqual(row.labels);
    }
    for (const name of ['BLEU-1', 'BLEU-2', 'BLEU-3', 'BLEU-4', 'ROUGE-L', 'CIDEr-D', 'CIDEr']) {
      const e = result.summary[name]!;
      expect(e.n).toBe(usable.length);
      expect(e.mean).toBeCloseTo(expected.summary[name]!.mean, 12);
      expect(e.low).toBeLessThanOrEqual(e.mean);
      expect(e.high).toBeGreaterThanOrEqual(e.mean);
    }
    // The first sample's reference is the stand-in's own report: a near-perfect ROUGE-L.
    expect(result.studies.find((s) => s.id === 'open_i_1000')!.metrics['ROUGE-L']).toBeGreaterThan(0.99);
    expect(result.labels.perObservation).toHaveLength(14);
    expect(run.output()).toMatch(/ROUGE-L\s+0\.\d{4}\s+\[0\.\d{4}, [01]\.\d{4}\]/);
    // Why a study was not scored is in the terminal summary, not only in results.json.
    expect(run.output()).toContain('open_i_2001: image CXR2001_IM-0001-1001.png is not in');
    expect(run.output()).toMatch(/1 left out of the set with empty findings and impression/);
  });

  it('writes an HTML report that Chromium shows with the summary, plots, diffs and label table', async () => {
    const out = path.join(work, 'run1');
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      const requests: string[] = [];
      page.on('request', (r) => requests.push(r.url()));
      await page.goto(`file://${path.join(out, 'report.html')}`);
      const summary = await page.locator('#summary').innerText();
      expect(summary).toContain('ROUGE-L');
      expect(summary).toContain('CIDEr-D');
      expect(summary).toContain('CheXpert-style F1 (micro');
      expect(await page.locator('svg.hist').count()).toBe(7); // one per metric, plain CIDEr beside CIDEr-D
      expect(await page.locator('#studies tr').count()).toBe(samples.length - 1 + 1); // usable + failed + header
      expect(await page.locator('#studies del, #studies ins').count()).toBeGreaterThan(0);
      expect(await page.locator('#confusion tr').count()).toBe(15);
      expect(await page.locator('body').innerText()).toContain('Lingshu-7B');
      // Self-contained: nothing but the file itself is loaded.
      expect(requests.filter((u) => !u.startsWith('file://'))).toEqual([]);
      const shot = await screenshot(page, 'eval-report');
      expect((await readFile(shot)).subarray(1, 4).toString()).toBe('PNG');
    } finally {
      await browser.close();
    }
  });

  it('resumes after being killed: drafted studies are not drafted again', async () => {
    model.reset();
    model.setDefault({ kind: 'report', delayMs: 400 });
    const out = path.join(work, 'resume');
    const first = runCli(['eval', '--set', SET, '--out', out], { ...env(), RADDRAFT_MAX_IN_FLIGHT: '1' });
    const draftsFile = path.join(out, 'drafts.jsonl');
    await waitFor('three drafts on disk', async () => ((await readFile(draftsFile, 'utf8').catch(() => '')).match(/"ok":true/g)?.length ?? 0) >= 3, 60_000, 50);
    first.child.kill('SIGKILL');
    await first.exited;
    const kept = (await readFile(draftsFile, 'utf8')).split('\n').filter((l) => l.includes('"ok":true')).length;
    expect(kept).toBeGreaterThanOrEqual(3);
    expect(kept).toBeLessThan(10);

    model.setDefault({ kind: 'report' });
    model.reset();
    const second = runCli(['eval', '--set', SET, '--out', out], env());
    expect(await second.exited).toBe(0);
    // Only the studies without a recorded draft go to the model again (and the one whose image is missing).
    const result = await readResult(out);
    expect(result.counts.resumed).toBe(kept);
    expect(result.counts.scored).toBe(10);
    expect(model.requests).toHaveLength(10 - kept);
  });

  it('merges a site scorer\'s figures and names a scorer that fails', async () => {
    const out = path.join(work, 'scorer');
    await mkdir(out, { recursive: true });
    const script = path.join(work, 'scorer.mjs');
    // A stand-in for a neural scorer: the share of reference words the draft repeats; it refuses one sample.
    await writeFile(script, `let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const p=JSON.parse(s);if(p.id==='open_i_1003'){console.error('model not loaded');process.exit(3)}const r=new Set(p.reference.toLowerCase().split(/\\W+/));const h=p.hypothesis.toLowerCase().split(/\\W+/);console.log(JSON.stringify({SembScore:h.filter(w=>r.has(w)).length/h.length}))});`);
    await copyFile(path.join(work, 'run1', 'drafts.jsonl'), path.join(out, 'drafts.jsonl'));
    model.reset();
    const run = runCli(['eval', '--set', SET, '--out', out, '--scorer-command', `node ${script}`], env());
    expect(await run.exited).toBe(0);
    expect(model.requests).toHaveLength(0);
    const result = await readResult(out);
    expect(result.summary.SembScore!.n).toBe(9);
    expect(result.metrics.map((m) => m.name)).toContain('SembScore');
    expect(result.neuralMetrics.map((m) => m.name)).not.toContain('SembScore');
    expect(result.studies.find((s) => s.id === 'open_i_1003')!.scorerError).toMatch(/exited with code 3: model not loaded/);
  });

  it('drafts DICOM studies from a folder as raddraft serve would, recording the ones it cannot', async () => {
    const folder = path.join(work, 'dicom');
    await mkdir(folder, { recursive: true });
    const keys = ['chest-pa-lat', 'chest-ap-mono1', 'ct-chest'];
    for (const k of keys) for (const [i, f] of fixture(k).files.entries()) await copyFile(f, path.join(folder, `${k}-${i}`));
    await writeFile(path.join(folder, 'README.txt'), 'not DICOM');
    const refs = path.join(work, 'refs.csv');
    await writeFile(refs, [
      'study_uid,findings,impression',
      ...keys.map((k) => `${fixture(k).studyUid},"Heart size is normal, lungs are clear.",No acute disease.`),
      '1.2.3.4.5.6.7.8.9,"Normal.",Normal.',
    ].join('\n'));
    model.reset();
    const out = path.join(work, 'dicom-out');
    const run = runCli(['eval', '--dicom', folder, '--references', refs, '--out', out], env());
    expect(await run.exited).toBe(0);
    const result = await readResult(out);
    expect(result.kind).toBe('dicom-folder');
    expect(result.counts.scored).toBe(2);
    expect(model.requests.map((r) => r.images.length).sort()).toEqual([1, 2]);
    expect(result.failures).toEqual(expect.arrayContaining([
      { id: '1.2.3.4.5.6.7.8.9', reason: expect.stringContaining('no DICOM file of this study') as unknown as string },
      { id: fixture('ct-chest').studyUid, reason: expect.stringContaining('no CR or DX image') as unknown as string },
    ]));
    const pa = result.studies.find((s) => s.id === fixture('chest-pa-lat').studyUid)!;
    expect(pa.draft?.text).toBe(STANDIN_REPORT);
  });

  it('names a bad reference file by line and a set that is not MedEvalKit\'s layout', async () => {
    const bad = path.join(work, 'bad.jsonl');
    await writeFile(bad, '{"study_uid":"1.2.3","findings":"ok","impression":"ok"}\n{"study_uid":"not-a-uid","report":"x"}\n');
    const run = runCli(['eval', '--dicom', work, '--references', bad, '--out', path.join(work, 'bad-out')], env());
    expect(await run.exited).toBe(1);
    expect(run.output()).toContain(`${bad} line 2: study_uid "not-a-uid" is not a DICOM UID`);
    const notList = path.join(work, 'not-list.json');
    await writeFile(notList, '{"id": 1}');
    const run2 = runCli(['eval', '--set', notList, '--out', path.join(work, 'bad-out2')], env());
    expect(await run2.exited).toBe(1);
    expect(run2.output()).toContain('is not a JSON list of samples');
    const none = runCli(['eval', '--out', path.join(work, 'x')], env());
    expect(await none.exited).toBe(1);
    expect(none.output()).toContain('choose one input');
    // A header without the study column is named as the header, not as the first row under it.
    const headerless = path.join(work, 'no-uid.csv');
    await writeFile(headerless, 'accession_uid,findings,impression\n1.2.3,clear,normal\n');
    const run3 = runCli(['eval', '--dicom', work, '--references', headerless, '--out', path.join(work, 'bad-out3')], env());
    expect(await run3.exited).toBe(1);
    expect(run3.output()).toContain(`${headerless}: the header (row 1) has no study_uid column (its columns: "accession_uid", "findings", "impression")`);
    expect(run3.output()).not.toContain('row 2');
    // A set whose every sample is left out says so, rather than "0 of 0 studies scored".
    const empty = path.join(work, 'empty-set.json');
    await writeFile(empty, JSON.stringify([{ id: 'e1', image: ['a.png'], findings: '', impression: '' }, { id: 'e2', image: ['b.png'], findings: ' ', impression: '' }]));
    const run4 = runCli(['eval', '--set', empty, '--out', path.join(work, 'empty-out')], env());
    expect(await run4.exited).toBe(1);
    expect(run4.output()).toContain('no study was scored: 2 samples were left out because their findings and impression are both empty');
    expect(run4.output()).not.toMatch(/0 of 0/);
  });
});
