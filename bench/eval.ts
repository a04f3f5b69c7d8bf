/**
 * raddraft eval figures: the time per 1,000 studies spent outside the model (image preparation, prompt, client,
 * drafts file, scoring and report), with the Lingshu stand-in answering at once, and the time to score 3,000 report
 * pairs. The stand-in runs in this process, so its own request checks (decoding each PNG) are counted too.
 */
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config/load.js';
import { startLingshuStandIn } from '../src/demo/lingshu-standin.js';
import { runEval } from '../src/eval/run-eval.js';
import { scorePairs } from '../src/eval/score.js';
import { medEvalKitReference } from '../src/eval/metrics/medevalkit-text.js';
import { createLogger } from '../src/log.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SET = path.join(ROOT, 'fixtures', 'generated', 'eval', 'iu-xray');
const STUDIES = Number(process.env.BENCH_STUDIES ?? 1000);
const PAIRS = Number(process.env.BENCH_PAIRS ?? 3000);

interface Sample { id: string; image: string[]; findings: string; impression: string }
const base = (JSON.parse(await readFile(path.join(SET, 'test.json'), 'utf8')) as Sample[]).filter((s) => s.findings.trim() && s.id !== 'open_i_2001');

const work = await mkdtemp(path.join(tmpdir(), 'raddraft-bench-eval-'));
const model = await startLingshuStandIn();
try {
  await symlink(path.join(SET, 'images'), path.join(work, 'images'));
  const samples = Array.from({ length: STUDIES }, (_, i) => ({ ...base[i % base.length]!, id: `bench_${i}` }));
  await writeFile(path.join(work, 'test.json'), JSON.stringify(samples));
  const config = loadConfig({ RADDRAFT_LINGSHU_URL: model.url, RADDRAFT_LINGSHU_MODEL: model.model, RADDRAFT_MAX_IN_FLIGHT: '16' }, undefined, { required: ['RADDRAFT_LINGSHU_URL'] });
  const log = createLogger({ level: 'error', destination: 'stderr' });
  const started = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const outcome = await runEval(config, log, { input: { kind: 'medevalkit', set: work }, out: path.join(work, 'out') });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const r = outcome.result!;
  console.log(`eval of ${STUDIES} studies (2 PNG images each, stand-in at zero latency, max in flight 16): ${seconds.toFixed(1)} s wall = ${((seconds * 1000) / STUDIES).toFixed(1)} s per 1,000 studies`);
  console.log(`  drafting ${r.seconds.drafting.toFixed(1)} s, scoring + report ${r.seconds.scoring.toFixed(1)} s; CPU ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s; model requests ${model.requests.length}; peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);

  const texts = base.map((s) => medEvalKitReference(s.findings, s.impression));
  const pairs = Array.from({ length: PAIRS }, (_, i) => ({ id: `p${i}`, hypothesis: texts[i % texts.length]!, reference: texts[(i * 7 + 3) % texts.length]! }));
  const t0 = process.hrtime.bigint();
  const scored = await scorePairs(pairs);
  const scoreSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`scoring ${PAIRS} pairs (BLEU-1..4, ROUGE-L, CIDEr-D, labels, 1,000-resample bootstrap intervals): ${scoreSeconds.toFixed(2)} s; ROUGE-L mean ${scored.summary['ROUGE-L']!.mean.toFixed(3)}`);
} finally {
  await model.stop();
  await rm(work, { recursive: true, force: true });
}
