/**
 * npm run bench:e2e — raddraft end to end on this machine: Orthanc, the FHIR test server and the Lingshu stand-in
 * at zero latency, BENCH_STUDIES (default 500) studies of two 2500 × 3000 12-bit images each, once with the SQLite
 * job store and once with PostgreSQL. Prints sustained studies per second, the seconds from a study being found to
 * its draft being delivered to the FHIR server (model time is nil here), and raddraft's memory over the run.
 */
import { execFile, spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startFhirServer } from '../src/demo/fhir-server.js';
import { startLingshuStandIn } from '../src/demo/lingshu-standin.js';
import { startOrthanc } from '../src/demo/orthanc.js';
import { FIXTURE_STUDIES, writeFixtureStudies, type StudySpec } from '../src/demo/phantom.js';
import { waitFor } from '../src/demo/ports.js';
import { stowFiles } from '../src/demo/stow.js';
import { createTestDatabase } from '../test/harness/postgres.js';

const run = promisify(execFile);
const STUDIES = Number(process.env.BENCH_STUDIES ?? 500);
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

async function makeStudies(dir: string): Promise<string[][]> {
  const base = FIXTURE_STUDIES.find((s) => s.key === 'chest-pa-lat')!;
  const big: StudySpec = { ...base, key: 'bench-large', series: base.series.map((s) => ({ ...s, images: s.images.map((i) => ({ ...i, width: 2500, height: 3000 })) })) };
  const [written] = await writeFixtureStudies(path.join(dir, 'template'), [big]);
  const studies: string[][] = [];
  const one = async (i: number) => {
    const uid = `2.25.${BigInt(`0x${randomUUID().replace(/-/g, '')}`).toString()}`;
    const files: string[] = [];
    for (const f of written!.files) {
      const target = path.join(dir, `s${i}-${path.basename(f)}`);
      await copyFile(f, target);
      await run('dcmodify', ['-nb', '-m', `(0020,000d)=${uid}`, '-gse', '-gin', target]);
      files.push(target);
    }
    studies[i] = files;
  };
  for (let i = 0; i < STUDIES; i += 4) await Promise.all([i, i + 1, i + 2, i + 3].filter((k) => k < STUDIES).map(one));
  return studies;
}

async function rssOf(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

interface ApiJob { id: string; state: string; reportRef?: string }
interface ApiDelivery { output: string; event: string; state: string; updatedAt: string }

/** CPU seconds a process has used (user + system), from /proc. */
async function cpuSeconds(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function pass(label: string, dicomWebUrl: string, databaseUrl: string | undefined, orthancPid: number): Promise<void> {
  const fhir = await startFhirServer();
  const model = await startLingshuStandIn();
  const dataDir = await mkdtemp(path.join(tmpdir(), 'raddraft-bench-data-'));
  const env = {
    ...process.env,
    RADDRAFT_DICOMWEB_URL: dicomWebUrl, RADDRAFT_FHIR_URL: fhir.url, RADDRAFT_LINGSHU_URL: model.url,
    RADDRAFT_DATA_DIR: dataDir, RADDRAFT_PORT: '0', RADDRAFT_POLL_SECONDS: '5', RADDRAFT_STABLE_SECONDS: '0',
    RADDRAFT_LOOKBACK_DAYS: '36500', RADDRAFT_LOG_LEVEL: 'info', RADDRAFT_MAX_IN_FLIGHT: '16',
    ...(databaseUrl ? { RADDRAFT_DATABASE_URL: databaseUrl } : {}),
  };
  const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROFILE] : [];
  const child = spawn(process.execPath, [...profile, '--import', 'tsx', 'src/cli.ts', 'serve'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  // The port is chosen by the system and named in the start line of the log.
  let api = '';
  await waitFor('raddraft to listen', () => {
    const port = /"port":(\d+),"version"/.exec(out)?.[1];
    if (port) api = `http://127.0.0.1:${port}`;
    return Promise.resolve(!!port);
  }, 60_000, 200);
  const cpuAtStart = { raddraft: await cpuSeconds(child.pid!), orthanc: await cpuSeconds(orthancPid), peers: process.cpuUsage() };
  const samples: number[] = [];
  const sampler = setInterval(() => void rssOf(child.pid!).then((m) => samples.push(m.rss), () => undefined), 1000);
  const started = Date.now();
  let jobs: ApiJob[] = [];
  await waitFor(`${STUDIES} reports`, async () => {
    jobs = ((await (await fetch(`${api}/api/jobs?limit=1000`)).json()) as { jobs: ApiJob[] }).jobs;
    // Done: drafted and delivered to the FHIR server (the job then carries the report's reference), or dead.
    return jobs.length >= STUDIES && jobs.every((j) => (j.state === 'drafted' && j.reportRef) || j.state === 'dead');
  }, 3_600_000, 500);
  clearInterval(sampler);
  const { hwm } = await rssOf(child.pid!);
  const peers = process.cpuUsage(cpuAtStart.peers);
  const cpu = {
    raddraft: (await cpuSeconds(child.pid!)) - cpuAtStart.raddraft,
    orthanc: (await cpuSeconds(orthancPid)) - cpuAtStart.orthanc,
    peers: (peers.user + peers.system) / 1e6,
  };
  // Seconds from each study's discovery to its posting, from the job's own record.
  const latencies: number[] = [];
  const processing: number[] = [];
  let first = Infinity;
  let last = 0;
  for (const j of jobs) {
    const detail = (await (await fetch(`${api}/api/jobs/${j.id}`)).json()) as { events: { at: number; to: string }[]; deliveries?: ApiDelivery[] };
    const { events } = detail;
    const found = events.find((e) => e.to === 'discovered')!.at;
    const delivered = detail.deliveries?.find((d) => d.output === 'fhir' && d.event === 'drafted' && d.state === 'delivered');
    const posted = delivered ? Date.parse(delivered.updatedAt) : undefined;
    const fetching = events.find((e) => e.to === 'fetching')?.at;
    first = Math.min(first, found);
    if (posted) {
      last = Math.max(last, posted);
      latencies.push((posted - found) / 1000);
      if (fetching) processing.push((posted - fetching) / 1000);
    }
  }
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  const posted = latencies.length;
  const quarter = Math.max(1, Math.floor(samples.length / 4));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  console.log(
    `${label.padEnd(10)} ${posted}/${STUDIES} delivered in ${((last - first) / 1000).toFixed(1)} s = ${(posted / ((last - first) / 1000)).toFixed(2)} studies/s; ` +
      `found→delivered p50 ${percentile(latencies, 50).toFixed(2)} s, p95 ${percentile(latencies, 95).toFixed(2)} s (all ${STUDIES} queued at once, so this includes waiting in the queue); ` +
      `fetch→delivered p50 ${percentile(processing, 50).toFixed(2)} s, p95 ${percentile(processing, 95).toFixed(2)} s; ` +
      `RSS first quarter ${mean(samples.slice(0, quarter)).toFixed(0)} MiB, last quarter ${mean(samples.slice(-quarter)).toFixed(0)} MiB, peak ${hwm.toFixed(0)} MiB; dead ${jobs.filter((j) => j.state === 'dead').length}; wall ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
  console.log(`${''.padEnd(10)} CPU seconds per study: raddraft ${(cpu.raddraft / posted).toFixed(3)}, Orthanc ${(cpu.orthanc / posted).toFixed(3)}, FHIR server + stand-in ${(cpu.peers / posted).toFixed(3)} (2 cores)`);
  if (jobs.some((j) => j.state === 'dead')) console.log(out.split('\n').filter((l) => /dead|error/i.test(l)).slice(0, 5).join('\n'));
  await fhir.stop();
  await model.stop();
  await rm(dataDir, { recursive: true, force: true });
}

const work = await mkdtemp(path.join(tmpdir(), 'raddraft-bench-'));
await mkdir(work, { recursive: true });
console.log(`making ${STUDIES} studies of two 2500 x 3000 12-bit images...`);
const studies = await makeStudies(work);
const orthanc = await startOrthanc();
const uploadStart = Date.now();
for (let i = 0; i < studies.length; i += 10) await stowFiles(orthanc.dicomWebUrl, studies.slice(i, i + 10).flat());
console.log(`uploaded to Orthanc in ${((Date.now() - uploadStart) / 1000).toFixed(0)} s; each pass starts raddraft on the full PACS`);
await pass('SQLite', orthanc.dicomWebUrl, undefined, orthanc.process.pid!);
const db = await createTestDatabase();
await pass('PostgreSQL', orthanc.dicomWebUrl, db.url, orthanc.process.pid!);
await db.drop();
await orthanc.stop();
await rm(work, { recursive: true, force: true });
