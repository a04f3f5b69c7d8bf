/**
 * npm run bench:e2e — raddraft end to end on this machine: Orthanc, the FHIR test server and the Lingshu stand-in
 * at zero latency, BENCH_STUDIES (default 500) studies of two 2500 × 3000 12-bit images each, once with the SQLite
 * job store and once with PostgreSQL; then BENCH_J2K_STUDIES (default 100; 0 skips it) of the same studies stored
 * as JPEG 2000 lossless, with SQLite, from a PACS of their own. Prints sustained studies per second, the seconds from
 * a study being found to its draft being delivered to the FHIR server (model time is nil here), raddraft's memory
 * over the run and the CPU seconds per study of raddraft and of its peers. raddraft runs built (`npm run build`, then
 * `node dist/cli.js serve`), as it is deployed. BENCH_PROFILE=DIR writes CPU profiles; BENCH_NODE_FLAGS adds Node/V8
 * flags to raddraft's command line (`--trace-gc`, say) and BENCH_KEEP_LOG=PREFIX keeps each pass's output in
 * PREFIX-<pass>.log; RADDRAFT_TEST_PG_URL names the PostgreSQL to use (for example its Unix socket:
 * postgres://postgres@%2Fvar%2Frun%2Fpostgresql/postgres).
 */
import { execFile, spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { loadavg, tmpdir } from 'node:os';
import codecs from 'dcmjs-codecs';
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

const J2K_LOSSLESS = '1.2.840.10008.1.2.4.90';
const J2K_STUDIES = Number(process.env.BENCH_J2K_STUDIES ?? 100);

/** A copy of a file in another transfer syntax, encoded with dcmjs-codecs as the fixtures are. */
async function transcode(file: string, transferSyntaxUid: string): Promise<void> {
  await codecs.NativeCodecs.initializeAsync();
  const bytes = await readFile(file);
  const transcoder = new codecs.Transcoder(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  transcoder.transcode(transferSyntaxUid, { encodeLossless: true });
  await writeFile(file, Buffer.from(transcoder.getDicomPart10()));
}

async function makeStudies(dir: string, count: number, transferSyntaxUid?: string): Promise<string[][]> {
  const base = FIXTURE_STUDIES.find((s) => s.key === 'chest-pa-lat')!;
  const big: StudySpec = { ...base, key: 'bench-large', series: base.series.map((s) => ({ ...s, images: s.images.map((i) => ({ ...i, width: 2500, height: 3000 })) })) };
  const [written] = await writeFixtureStudies(path.join(dir, 'template'), [big]);
  if (transferSyntaxUid) for (const f of written!.files) await transcode(f, transferSyntaxUid);
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
  for (let i = 0; i < count; i += 4) await Promise.all([i, i + 1, i + 2, i + 3].filter((k) => k < count).map(one));
  return studies;
}

async function rssOf(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** CPU seconds of each thread of a process, by thread id, with the thread's name. */
async function threadCpu(pid: number): Promise<Map<number, { name: string; seconds: number }>> {
  const out = new Map<number, { name: string; seconds: number }>();
  for (const tid of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
    const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => undefined);
    if (!stat) continue;
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(Number(tid), { name, seconds: (Number(fields[11]) + Number(fields[12])) / 100 });
  }
  return out;
}

/**
 * Where a process's CPU went between two snapshots: its main thread, libvips's threads (sharp: resampling and PNG
 * encoding), and its other threads (rendering threads, V8's garbage collection helpers, libuv's pool). Threads that
 * ended between the snapshots are missing from every group.
 */
function cpuByThread(pid: number, before: Map<number, { name: string; seconds: number }>, after: Map<number, { name: string; seconds: number }>): Record<'main' | 'libvips' | 'other', number> {
  const groups = { main: 0, libvips: 0, other: 0 };
  for (const [tid, t] of after) {
    const used = t.seconds - (before.get(tid)?.seconds ?? 0);
    groups[tid === pid ? 'main' : t.name.startsWith('libvips') ? 'libvips' : 'other'] += used;
  }
  return groups;
}

interface ApiJob { id: string; state: string; reportRef?: string }
interface ApiDelivery { output: string; event: string; state: string; updatedAt: string }

/** CPU seconds a process has used (user + system), from /proc. */
async function cpuSeconds(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function pass(label: string, dicomWebUrl: string, databaseUrl: string | undefined, orthancPid: number, count = STUDIES): Promise<void> {
  const fhir = await startFhirServer();
  const model = await startLingshuStandIn();
  const dataDir = await mkdtemp(path.join(tmpdir(), 'raddraft-bench-data-'));
  // The harness's own variables are not raddraft settings, which raddraft refuses to start with.
  const { RADDRAFT_TEST_PG_URL: _harness, ...inherited } = process.env;
  const env = {
    ...inherited,
    RADDRAFT_DICOMWEB_URL: dicomWebUrl, RADDRAFT_FHIR_URL: fhir.url, RADDRAFT_LINGSHU_URL: model.url,
    RADDRAFT_DATA_DIR: dataDir, RADDRAFT_PORT: '0', RADDRAFT_POLL_SECONDS: '5', RADDRAFT_STABLE_SECONDS: '0',
    RADDRAFT_LOOKBACK_DAYS: '36500', RADDRAFT_LOG_LEVEL: 'info', RADDRAFT_MAX_IN_FLIGHT: '16',
    ...(databaseUrl ? { RADDRAFT_DATABASE_URL: databaseUrl } : {}),
  };
  const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROFILE] : [];
  // The built service, as administrators run it: run from source, tsx would transpile and resolve every module on the
  // way and its loader thread's CPU would be counted as raddraft's.
  const child = spawn(process.execPath, [...profile, ...(process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean), 'dist/cli.js', 'serve'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  // A pass that fails leaves nothing running behind it.
  const abandon = async (err: unknown): Promise<never> => {
    child.kill('SIGKILL');
    await Promise.all([fhir.stop(), model.stop(), rm(dataDir, { recursive: true, force: true })]);
    console.log(out.split('\n').slice(-5).join('\n'));
    throw err;
  };
  // The port is chosen by the system and named in the start line of the log.
  let api = '';
  await waitFor('raddraft to listen', () => {
    const port = /"port":(\d+),"version"/.exec(out)?.[1];
    if (port) api = `http://127.0.0.1:${port}`;
    return Promise.resolve(!!port);
  }, 180_000, 200).catch(abandon);
  const cpuAtStart = { raddraft: await cpuSeconds(child.pid!), orthanc: await cpuSeconds(orthancPid), peers: process.cpuUsage(), threads: await threadCpu(child.pid!) };
  const samples: number[] = [];
  const sampler = setInterval(() => void rssOf(child.pid!).then((m) => samples.push(m.rss), () => undefined), 1000);
  const started = Date.now();
  let jobs: ApiJob[] = [];
  // Polled every two seconds, by the counts of jobs per state (one job listed), so that little of raddraft's CPU goes
  // to the bench; the whole list is read only once every job has ended.
  await waitFor(`${count} reports`, async () => {
    const { counts } = (await (await fetch(`${api}/api/jobs?limit=1`)).json()) as { counts: Record<string, number> };
    if ((counts.drafted ?? 0) + (counts.dead ?? 0) < count) return false;
    jobs = ((await (await fetch(`${api}/api/jobs?limit=1000`)).json()) as { jobs: ApiJob[] }).jobs;
    // Done: drafted and delivered to the FHIR server (the job then carries the report's reference), or dead.
    return jobs.length >= count && jobs.every((j) => (j.state === 'drafted' && j.reportRef) || j.state === 'dead');
  }, 3_600_000, 2000).catch((err: unknown) => {
    clearInterval(sampler);
    return abandon(err);
  });
  clearInterval(sampler);
  const { hwm } = await rssOf(child.pid!);
  const peers = process.cpuUsage(cpuAtStart.peers);
  const threads = cpuByThread(child.pid!, cpuAtStart.threads, await threadCpu(child.pid!));
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
    const rendering = events.find((e) => e.to === 'rendering')?.at;
    first = Math.min(first, found);
    if (posted) {
      last = Math.max(last, posted);
      latencies.push((posted - found) / 1000);
      if (rendering) processing.push((posted - rendering) / 1000);
    }
  }
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  if (process.env.BENCH_KEEP_LOG) await writeFile(`${process.env.BENCH_KEEP_LOG}-${label}.log`, out);
  const posted = latencies.length;
  const quarter = Math.max(1, Math.floor(samples.length / 4));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  console.log(
    `${label.padEnd(10)} ${posted}/${count} delivered in ${((last - first) / 1000).toFixed(1)} s = ${(posted / ((last - first) / 1000)).toFixed(2)} studies/s; ` +
      `found→delivered p50 ${percentile(latencies, 50).toFixed(2)} s, p95 ${percentile(latencies, 95).toFixed(2)} s (all ${count} queued at once, so this includes waiting in the queue); ` +
      `rendering→delivered p50 ${percentile(processing, 50).toFixed(2)} s, p95 ${percentile(processing, 95).toFixed(2)} s; ` +
      `RSS first quarter ${mean(samples.slice(0, quarter)).toFixed(0)} MiB, last quarter ${mean(samples.slice(-quarter)).toFixed(0)} MiB, peak ${hwm.toFixed(0)} MiB; dead ${jobs.filter((j) => j.state === 'dead').length}; wall ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
  console.log(`${''.padEnd(10)} CPU seconds per study: raddraft ${(cpu.raddraft / posted).toFixed(3)}, Orthanc ${(cpu.orthanc / posted).toFixed(3)}, FHIR server + stand-in ${(cpu.peers / posted).toFixed(3)} (2 cores)`);
  console.log(`${''.padEnd(10)} raddraft's by thread: main ${(threads.main / posted).toFixed(3)}, libvips (resampling, PNG) ${(threads.libvips / posted).toFixed(3)}, rendering threads and V8/libuv helpers ${(threads.other / posted).toFixed(3)}`);
  if (jobs.some((j) => j.state === 'dead')) console.log(out.split('\n').filter((l) => /dead|error/i.test(l)).slice(0, 5).join('\n'));
  await fhir.stop();
  await model.stop();
  await rm(dataDir, { recursive: true, force: true });
}

const work = await mkdtemp(path.join(tmpdir(), 'raddraft-bench-'));
await mkdir(work, { recursive: true });
console.log(`load average at the start: ${loadavg().map((x) => x.toFixed(2)).join(', ')} (${(await run('nproc')).stdout.trim()} cores)`);

/** Uploads the studies to a PACS of their own and runs each pass against it. */
async function onPacs(studies: string[][], passes: (dicomWebUrl: string, orthancPid: number) => Promise<void>): Promise<void> {
  const orthanc = await startOrthanc();
  try {
    const uploadStart = Date.now();
    for (let i = 0; i < studies.length; i += 10) await stowFiles(orthanc.dicomWebUrl, studies.slice(i, i + 10).flat());
    console.log(`uploaded to Orthanc in ${((Date.now() - uploadStart) / 1000).toFixed(0)} s; each pass starts raddraft on the full PACS`);
    await passes(orthanc.dicomWebUrl, orthanc.process.pid!);
  } finally {
    await orthanc.stop();
  }
}

try {
  console.log('building raddraft (npm run build)...');
  await run('npm', ['run', 'build'], { cwd: ROOT });
  console.log(`making ${STUDIES} studies of two 2500 x 3000 12-bit images...`);
  await onPacs(await makeStudies(path.join(work, 'native'), STUDIES), async (url, pid) => {
    await pass('SQLite', url, undefined, pid);
    const db = await createTestDatabase();
    try {
      await pass('PostgreSQL', url, db.url, pid);
    } finally {
      await db.drop();
    }
  });
  await rm(path.join(work, 'native'), { recursive: true, force: true });
  if (J2K_STUDIES > 0) {
    console.log(`making ${J2K_STUDIES} of the same studies in JPEG 2000 lossless...`);
    await onPacs(await makeStudies(path.join(work, 'j2k'), J2K_STUDIES, J2K_LOSSLESS), (url, pid) => pass('SQLite J2K', url, undefined, pid, J2K_STUDIES));
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
