/**
 * npm run bench:model — the Lingshu client against the stand-in in its vLLM-like mode (continuous batching:
 * latency = base + per-request × in flight; 429 above the server's concurrency). Prints achieved drafts per second
 * as a fraction of the server's maximum throughput, with and without a burst of 429s (the server's limit halves for
 * a while, as when another tenant shares the GPU), the queueing delay raddraft adds, requests sent beyond the
 * server's limit after adaptation, and drafts lost. Then the cost of consistency samples (RADDRAFT_CONSISTENCY_SAMPLES
 * = 3 and 5): model time added per study, as the time a study waits for its draft and as server time per study
 * (the inverse of throughput), with `n` in one request (vLLM) and as separate requests (a server without `n`).
 */
import sharp from 'sharp';
import { loadConfig } from '../src/config/load.js';
import { startLingshuStandIn, type BatchingModel, type LingshuStandIn } from '../src/demo/lingshu-standin.js';
import { createLogger } from '../src/log.js';
import { LingshuClient } from '../src/model/lingshu.js';

const SERVER: BatchingModel = { maxConcurrent: 8, baseMs: 100, perRequestMs: 25, retryAfterSeconds: 0 };
const DRAFTS = Number(process.env.BENCH_DRAFTS ?? 800);
const CALLERS = 32;

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
};
const maxThroughput = (m: BatchingModel) => m.maxConcurrent / ((m.baseMs + m.perRequestMs * m.maxConcurrent) / 1000);

async function run(standIn: LingshuStandIn, burst: boolean, callers = CALLERS): Promise<void> {
  standIn.reset();
  standIn.batching({ ...SERVER });
  const config = loadConfig({
    RADDRAFT_DICOMWEB_URL: 'http://pacs/dicom-web', RADDRAFT_FHIR_URL: 'http://fhir/R4', RADDRAFT_LINGSHU_URL: standIn.url,
    RADDRAFT_MAX_IN_FLIGHT: '16', RADDRAFT_LOG_LEVEL: 'silent',
  });
  const client = new LingshuClient(config.lingshu, createLogger({ level: 'silent' }), { retryBaseMs: 100 });
  const waits: number[] = [];
  client.limiter.onWait = (ms) => waits.push(ms);
  const png = await sharp(Buffer.alloc(896 * 1092, 100), { raw: { width: 896, height: 1092, channels: 1 } }).png().toBuffer();
  let next = 0;
  let done = 0;
  const started = Date.now();
  let burstWindow: [number, number] | undefined;
  if (burst) {
    // A third of the way in, the server's limit halves for five seconds.
    const expected = DRAFTS / maxThroughput(SERVER) * 1000;
    setTimeout(() => {
      burstWindow = [Date.now(), Date.now() + 5000];
      standIn.batching({ ...SERVER, maxConcurrent: SERVER.maxConcurrent / 2 });
      setTimeout(() => standIn.batching({ ...SERVER }), 5000);
    }, expected / 3);
  }
  await Promise.all(Array.from({ length: callers }, async () => {
    while (next < DRAFTS) {
      next += 1;
      await client.draft({ images: [{ png }], views: ['PA'] });
      done += 1;
    }
  }));
  const seconds = (Date.now() - started) / 1000;
  // Ideal time: the burst's five seconds run at the throughput of the halved server (more than half the
  // throughput: each request is quicker with fewer in flight).
  const squeezed = maxThroughput({ ...SERVER, maxConcurrent: SERVER.maxConcurrent / 2 });
  const idealSeconds = burst ? (DRAFTS - squeezed * 5) / maxThroughput(SERVER) + 5 : DRAFTS / maxThroughput(SERVER);
  const rate = done / seconds;
  const overloaded = standIn.requests.filter((r) => r.answered === 'overloaded');
  // After adaptation: more than two seconds after the start, or after the limit last changed.
  const settled = (at: number) => at > started + 2000 && !(burstWindow && at >= burstWindow[0] && at < burstWindow[0] + 2000) && !(burstWindow && at >= burstWindow[1] && at < burstWindow[1] + 2000);
  const lateOverloads = overloaded.filter((r) => settled(r.at)).length;
  console.log(`${burst ? 'with a 429 burst' : 'steady server   '}, ${String(callers).padStart(2)} callers: ${done}/${DRAFTS} drafts in ${seconds.toFixed(1)} s = ${rate.toFixed(1)} drafts/s; ` +
    `${(100 * (DRAFTS / idealSeconds > 0 ? rate / (DRAFTS / idealSeconds) : 0)).toFixed(1)} % of the server's maximum (${(DRAFTS / idealSeconds).toFixed(1)}/s); ` +
    `queueing delay p50 ${percentile(waits, 50)} ms, p95 ${percentile(waits, 95)} ms; 429s: ${overloaded.length} (${lateOverloads} after adaptation); ` +
    `server saw at most ${standIn.maxInFlightSeen} in flight; lost ${DRAFTS - done}`);
}

/** Drafts `drafts` studies with `callers` at once and N samples each; seconds per study waited and of server time. */
async function sampling(standIn: LingshuStandIn, samples: number, n: 'honour' | 'ignore', drafts: number, callers: number) {
  standIn.reset();
  standIn.batching({ ...SERVER });
  standIn.nSupport(n);
  const config = loadConfig({
    RADDRAFT_DICOMWEB_URL: 'http://pacs/dicom-web', RADDRAFT_FHIR_URL: 'http://fhir/R4', RADDRAFT_LINGSHU_URL: standIn.url,
    RADDRAFT_MAX_IN_FLIGHT: '16', RADDRAFT_LOG_LEVEL: 'silent', RADDRAFT_CONSISTENCY_SAMPLES: String(samples),
  });
  const client = new LingshuClient(config.lingshu, createLogger({ level: 'silent' }), { retryBaseMs: 100 });
  const png = await sharp(Buffer.alloc(896 * 1092, 100), { raw: { width: 896, height: 1092, channels: 1 } }).png().toBuffer();
  const latencies: number[] = [];
  let next = 0;
  const started = Date.now();
  await Promise.all(Array.from({ length: callers }, async () => {
    while (next < drafts) {
      next += 1;
      const t = Date.now();
      await client.draft({ images: [{ png }], views: ['PA'] });
      latencies.push(Date.now() - t);
    }
  }));
  const seconds = (Date.now() - started) / 1000;
  return { waitMs: latencies.reduce((a, b) => a + b, 0) / latencies.length, serverMs: (1000 * seconds) / drafts, requests: standIn.requests.length / drafts };
}

async function samplingCost(standIn: LingshuStandIn): Promise<void> {
  const drafts = Number(process.env.BENCH_SAMPLING_DRAFTS ?? 120);
  console.log(`consistency samples, ${drafts} studies each; one caller (an idle server) and ${SERVER.maxConcurrent} callers (a busy one):`);
  for (const callers of [1, SERVER.maxConcurrent]) {
    const base = await sampling(standIn, 0, 'honour', drafts, callers);
    console.log(`  ${String(callers).padStart(2)} caller(s), no samples: ${base.waitMs.toFixed(0)} ms per study waited, ${base.serverMs.toFixed(0)} ms of server time per study`);
    for (const samples of [3, 5]) {
      for (const n of ['honour', 'ignore'] as const) {
        const r = await sampling(standIn, samples, n, drafts, callers);
        console.log(`  ${String(callers).padStart(2)} caller(s), N=${samples} ${n === 'honour' ? 'with n (vLLM) ' : 'as N requests'}: +${(r.waitMs - base.waitMs).toFixed(0)} ms per study waited (${(r.waitMs / base.waitMs).toFixed(2)}×), ` +
          `+${(r.serverMs - base.serverMs).toFixed(0)} ms of server time per study (${(r.serverMs / base.serverMs).toFixed(2)}×), ${r.requests.toFixed(1)} requests per study`);
      }
    }
  }
  standIn.nSupport('honour');
}

const standIn = await startLingshuStandIn();
console.log(`stand-in: at most ${SERVER.maxConcurrent} in flight, ${SERVER.baseMs} ms + ${SERVER.perRequestMs} ms × in flight per request; maximum ${maxThroughput(SERVER).toFixed(1)} drafts/s; RADDRAFT_MAX_IN_FLIGHT=16`);
await run(standIn, false);
await run(standIn, true);
// As many callers as the server has room for: any wait here is raddraft's own.
await run(standIn, false, SERVER.maxConcurrent);
await samplingCost(standIn);
await standIn.stop();
