/**
 * npm run bench:images — one 2500 × 3000, 12-bit chest radiograph in every transfer syntax, taken from DICOM bytes
 * to the PNG the model receives (896 × 1092). For each syntax: the size raddraft decoded (JPEG 2000 and HTJ2K at a
 * resolution level), its median and p95 milliseconds, where its time goes, its median CPU milliseconds, its peak
 * RSS, and the same figures for the peers measured in the same run: DCMTK dcmj2pnm (dcml2pnm
 * for JPEG-LS; GDCM's gdcmconv then dcmj2pnm for JPEG 2000) writing a PNG of the same size, and Orthanc's
 * /instances/{id}/rendered. Each raddraft measurement runs in a process of its own, so that its peak RSS is its own.
 *
 * BENCH_RUNS (default 10) sets the runs per syntax and tool; BENCH_ONLY=name,name limits the syntaxes.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { SYNTAX_FIXTURES, writeSyntaxFixtures, type SyntaxFixture } from '../fixtures/transfer-syntaxes.js';
import { startOrthanc, type OrthancInstance } from '../src/demo/orthanc.js';
import { renderInstance, type RenderStage } from '../src/dicom/render.js';
import { modelImageSize } from '../src/dicom/resize.js';

const run = promisify(execFile);
const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const SOURCE = { width: 2500, height: 3000 };
const TARGET = modelImageSize(SOURCE.width, SOURCE.height);

interface Figures {
  median: number;
  p95: number;
  /** Median CPU milliseconds (user + system) per run: steadier than wall time on a shared machine. */
  cpu: number;
  peakMiB?: number;
  note?: string;
}

interface RaddraftFigures extends Figures {
  stages: Record<RenderStage, number>;
  /** The size the frame was decoded at (a JPEG 2000 resolution level's, or the source's). */
  decoded: string;
  outWidth: number;
  outHeight: number;
}

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
};
const median = (xs: number[]) => percentile(xs, 50);

/** Child mode: renders one file RUNS times after a warm-up run and prints the figures as JSON. */
async function renderChild(file: string): Promise<void> {
  const times: number[] = [];
  const cpu: number[] = [];
  const stages: Record<RenderStage, number[]> = { read: [], decode: [], greyscale: [], encode: [] };
  let out = { width: 0, height: 0, decodedWidth: 0, decodedHeight: 0 };
  for (let i = 0; i <= RUNS; i++) {
    const seen: Partial<Record<RenderStage, number>> = {};
    const start = performance.now();
    const used = process.cpuUsage();
    const image = await renderInstance(file, path.basename(file), { onStage: (stage, ms) => (seen[stage] = ms) });
    const ms = performance.now() - start;
    const { user, system } = process.cpuUsage(used);
    out = { width: image.width, height: image.height, decodedWidth: image.decodedWidth, decodedHeight: image.decodedHeight };
    if (i === 0) continue; // the first run also compiles the codecs' WebAssembly
    times.push(ms);
    cpu.push((user + system) / 1000);
    for (const [stage, value] of Object.entries(seen)) stages[stage as RenderStage].push(value);
  }
  const status = await readFile('/proc/self/status', 'utf8');
  const figures: RaddraftFigures = {
    median: median(times),
    p95: percentile(times, 95),
    cpu: median(cpu),
    peakMiB: Number(/VmHWM:\s+(\d+)/.exec(status)![1]) / 1024,
    decoded: `${out.decodedWidth} × ${out.decodedHeight}`,
    stages: Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, median(v)])) as Record<RenderStage, number>,
    outWidth: out.width,
    outHeight: out.height,
  };
  process.stdout.write(JSON.stringify(figures));
}

async function raddraft(file: string): Promise<RaddraftFigures> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/images.ts', '--render', file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`rendering ${file} exited with ${code}`);
  return JSON.parse(out) as RaddraftFigures;
}

/** A command line tool run RUNS times (after one warm-up for the page cache), timed from start to exit. */
async function command(steps: [string, string[]][]): Promise<Figures> {
  const times: number[] = [];
  const cpu: number[] = [];
  let peak = 0;
  for (let i = 0; i <= RUNS; i++) {
    const start = performance.now();
    let used = 0;
    for (const [tool, args] of steps) {
      const { stderr } = await run('/usr/bin/time', ['-f', 'maxrss=%M cpu=%U+%S', tool, ...args]);
      peak = Math.max(peak, Number(/maxrss=(\d+)/.exec(stderr)![1]) / 1024);
      const [, user, system] = /cpu=([\d.]+)\+([\d.]+)/.exec(stderr)!;
      used += (Number(user) + Number(system)) * 1000;
    }
    if (i > 0) {
      times.push(performance.now() - start);
      cpu.push(used);
    }
  }
  return { median: median(times), p95: percentile(times, 95), cpu: median(cpu), peakMiB: peak };
}

async function dcmtkPeer(f: SyntaxFixture, file: string, dir: string): Promise<Figures> {
  const png = path.join(dir, `${f.name}.dcmtk.png`);
  // +Sxv scales to the model's width and derives the height from the aspect ratio (DCMTK takes one of the two).
  const render = (tool: string, input: string): [string, string[]] => [tool, ['+Wi', '1', '+Sxv', String(TARGET.width), '-il', '+on', input, png]];
  switch (f.reference) {
    case 'dcmj2pnm':
      return command([render('dcmj2pnm', file)]);
    case 'dcml2pnm':
      return command([render('dcml2pnm', file)]);
    case 'gdcmconv': {
      const raw = path.join(dir, `${f.name}.raw.dcm`);
      return { ...(await command([['gdcmconv', ['--raw', file, raw]], render('dcmj2pnm', raw)])), note: 'gdcmconv --raw, then dcmj2pnm' };
    }
    case 'source':
      return { median: NaN, p95: NaN, cpu: NaN, note: 'neither DCMTK nor GDCM reads HTJ2K' };
  }
}

async function orthancPeer(orthanc: OrthancInstance, f: SyntaxFixture, file: string): Promise<Figures> {
  const upload = await fetch(`${orthanc.httpUrl}/instances`, { method: 'POST', body: await readFile(file) });
  if (!upload.ok) return { median: NaN, p95: NaN, cpu: NaN, note: `Orthanc refused the file (HTTP ${upload.status})` };
  const { ID } = (await upload.json()) as { ID: string };
  try {
    // Every fixture carries the same SOP Instance UID, so each is removed after its turn; this checks that Orthanc
    // holds this one (it records no transfer syntax for one it does not know).
    const stored = await (await fetch(`${orthanc.httpUrl}/instances/${ID}/metadata/TransferSyntax`)).text();
    if (stored && stored !== f.transferSyntaxUid) throw new Error(`Orthanc holds ${stored} for ${f.name}`);
    return await orthancRendered(orthanc, ID);
  } finally {
    await fetch(`${orthanc.httpUrl}/instances/${ID}`, { method: 'DELETE' });
  }
}

async function orthancRendered(orthanc: OrthancInstance, ID: string): Promise<Figures> {
  const url = `${orthanc.httpUrl}/instances/${ID}/rendered?width=${TARGET.width}&height=${TARGET.height}&smooth=1`;
  const times: number[] = [];
  for (let i = 0; i <= RUNS; i++) {
    const start = performance.now();
    const res = await fetch(url, { headers: { Accept: 'image/png' } });
    const body = Buffer.from(await res.arrayBuffer());
    if (!res.ok) return { median: NaN, p95: NaN, cpu: NaN, note: `Orthanc cannot render it (HTTP ${res.status})` };
    if (i === 0) {
      const meta = await sharp(body).metadata();
      if (meta.width !== TARGET.width) return { median: NaN, p95: NaN, cpu: NaN, note: `Orthanc rendered ${meta.width} × ${meta.height}` };
    } else {
      times.push(performance.now() - start);
    }
  }
  const status = await readFile(`/proc/${orthanc.process.pid}/status`, 'utf8');
  return { median: median(times), p95: percentile(times, 95), cpu: NaN, peakMiB: Number(/VmHWM:\s+(\d+)/.exec(status)![1]) / 1024, note: 'peak RSS is the server process so far' };
}

const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : 'n/a');
const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) ? `${(a / b).toFixed(2)}×` : 'n/a');

async function main(): Promise<void> {
  const only = process.env.BENCH_ONLY?.split(',');
  const fixtures = SYNTAX_FIXTURES.filter((f) => !only || only.includes(f.name));
  const dir = await mkdtemp(path.join(tmpdir(), 'raddraft-bench-images-'));
  const orthanc = await startOrthanc();
  try {
    console.log(`writing ${fixtures.length} fixtures of ${SOURCE.width} × ${SOURCE.height} (12-bit; 8-bit for JPEG baseline) …`);
    const files = await writeSyntaxFixtures(dir, SOURCE);
    console.log(`each rendered to ${TARGET.width} × ${TARGET.height}, ${RUNS} runs after a warm-up, on ${(await run('nproc')).stdout.trim()} cores\n`);
    const rows: string[][] = [['transfer syntax', 'decoded at', 'raddraft median/p95 ms', 'read/decode/grey/encode ms', 'CPU ms', 'peak MiB', 'DCMTK median/p95 ms', 'CPU ms', 'peak MiB', 'ratio', 'CPU ratio', 'Orthanc median/p95 ms', 'ratio']];
    const notes: string[] = [];
    for (const f of fixtures) {
      const file = files[f.name]!;
      const ours = await raddraft(file);
      const dcmtk = await dcmtkPeer(f, file, dir);
      const ortho = await orthancPeer(orthanc, f, file);
      const s = ours.stages;
      rows.push([
        f.name,
        ours.decoded,
        `${ms(ours.median)} / ${ms(ours.p95)}`,
        [s.read, s.decode, s.greyscale, s.encode].map(ms).join(' / '),
        ms(ours.cpu),
        ms(ours.peakMiB ?? NaN),
        `${ms(dcmtk.median)} / ${ms(dcmtk.p95)}`,
        ms(dcmtk.cpu),
        ms(dcmtk.peakMiB ?? NaN),
        ratio(ours.median, dcmtk.median),
        ratio(ours.cpu, dcmtk.cpu),
        `${ms(ortho.median)} / ${ms(ortho.p95)}`,
        ratio(ours.median, ortho.median),
      ]);
      for (const [peer, fig] of [['DCMTK', dcmtk], ['Orthanc', ortho]] as const) if (fig.note) notes.push(`${f.name}, ${peer}: ${fig.note}`);
      console.log(`${f.name}: done`);
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    console.log('');
    for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  '));
    console.log(`\nratio = raddraft's median ÷ the peer's median (below 1 is faster than the peer); CPU ratio the same for CPU time (user + system,`);
    console.log(`every thread), which a busy machine disturbs less. DCMTK's times include starting the process. Load average now: ${loadavg().map((x) => x.toFixed(2)).join(', ')}.`);
    for (const n of notes) console.log(`- ${n}`);
  } finally {
    await orthanc.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--render') await renderChild(process.argv[3]!);
else await main();
