import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFhirServer } from './fhir-server.js';
import { startLingshuStandIn } from './lingshu-standin.js';
import { startOrthanc } from './orthanc.js';
import { FIXTURE_STUDIES, writeFixtureStudies, type WrittenStudy } from './phantom.js';
import { freePort, waitFor } from './ports.js';
import { stowFiles } from './stow.js';

const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const AI_LABEL = 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue|AIAST';

interface ApiJob {
  studyInstanceUid: string;
  state: string;
  reason?: string;
  reportRef?: string;
  updatedAt: string;
}

function fixtureStudies(): WrittenStudy[] | undefined {
  const dir = path.join(PACKAGE_ROOT, 'fixtures', 'generated');
  if (!existsSync(dir)) return undefined;
  // Only the sample studies: fixtures/generated also holds test material (one radiograph per transfer syntax, twins).
  const keys = FIXTURE_STUDIES.map((s) => s.key);
  if (!keys.every((k) => existsSync(path.join(dir, k)))) return undefined;
  return keys.map((key) => {
    const files = readdirSync(path.join(dir, key)).filter((f) => f.endsWith('.dcm')).map((f) => path.join(dir, key, f));
    return { key, studyUid: '', modality: '', eligible: key.startsWith('chest'), files };
  });
}

/** The Practitioner the demo signs as (no sign-in is configured in the demo). */
async function demoRadiologist(fhirUrl: string): Promise<string> {
  const res = await fetch(`${fhirUrl}/Practitioner`, {
    method: 'POST',
    headers: { 'content-type': 'application/fhir+json' },
    body: JSON.stringify({ resourceType: 'Practitioner', name: [{ family: 'Demo', given: ['Radiologist'], prefix: ['Dr'] }] }),
  });
  const created = (await res.json()) as { id?: string };
  if (!res.ok || !created.id) throw new Error(`the demo FHIR server did not create the demo radiologist (HTTP ${res.status})`);
  return `Practitioner/${created.id}`;
}

/** Patient records for the samples' invented patients, so the worklist shows names as a hospital's would. */
async function demoPatients(fhirUrl: string): Promise<void> {
  for (const s of FIXTURE_STUDIES) {
    const [family = '', given = ''] = s.patient.name.split('^');
    const title = (w: string) => w.charAt(0) + w.slice(1).toLowerCase();
    const b = s.patient.birthDate;
    await fetch(`${fhirUrl}/Patient`, {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+json' },
      body: JSON.stringify({
        resourceType: 'Patient',
        identifier: [{ value: s.patient.id }],
        name: [{ family: title(family), given: [title(given)] }],
        birthDate: `${b.slice(0, 4)}-${b.slice(4, 6)}-${b.slice(6, 8)}`,
        gender: s.patient.sex === 'F' ? 'female' : 'male',
      }),
    });
  }
}

/** Peak resident set size of a process in MiB, from /proc (Linux). */
function peakRssMiB(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : undefined;
  } catch {
    return undefined;
  }
}

interface ApiDelivery {
  jobId: string;
  event: string;
  output: string;
  state: string;
  reference?: string;
  lastError?: string;
}

/**
 * Once every draft's SR has reached the demo Orthanc (or failed): where to see each one, as Orthanc Explorer shows
 * the study and as DICOMweb lists its SR series.
 */
async function srLines(api: string, orthanc: { httpUrl: string; dicomWebUrl: string }, jobs: (ApiJob & { id: string })[]): Promise<string[]> {
  const drafted = new Set(jobs.filter((j) => j.state === 'drafted').map((j) => j.id));
  let srs: ApiDelivery[] = [];
  await waitFor('the draft SRs to reach Orthanc', async () => {
    const { deliveries } = (await (await fetch(`${api}/api/deliveries`)).json()) as { deliveries: ApiDelivery[] };
    srs = deliveries.filter((d) => d.output === 'dicom-sr' && d.event === 'drafted' && drafted.has(d.jobId));
    return srs.length >= drafted.size && srs.every((d) => d.state !== 'pending');
  }, 120_000, 250);
  const lines: string[] = [];
  for (const d of srs) {
    const job = jobs.find((j) => j.id === d.jobId)!;
    if (d.state !== 'delivered') {
      lines.push(`  ${d.state.padEnd(10)} ${job.studyInstanceUid}  ${d.lastError ?? ''}`);
      continue;
    }
    const found = (await (await fetch(`${orthanc.httpUrl}/tools/lookup`, { method: 'POST', body: job.studyInstanceUid })).json()) as { ID: string }[];
    lines.push(`  ${job.studyInstanceUid}  ${orthanc.httpUrl}/app/explorer.html#study?uuid=${found[0]?.ID ?? ''}`);
  }
  lines.push(`  DICOMweb: ${orthanc.dicomWebUrl}/studies/<StudyInstanceUID>/series?Modality=SR`);
  return lines;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/**
 * `raddraft demo`: a local Orthanc loaded with the sample studies, an in-process FHIR server, the Lingshu stand-in
 * (unless RADDRAFT_LINGSHU_URL names a real endpoint), and `raddraft serve` as its own process against them.
 * Prints where to look and, once the samples are drafted, how long each took and the service's peak memory.
 */
export async function runDemo(options: { exitWhenDone: boolean }): Promise<number> {
  const say = (line = '') => process.stdout.write(`${line}\n`);
  const work = await mkdtemp(path.join(tmpdir(), 'raddraft-demo-'));
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  };
  try {
    let studies = fixtureStudies();
    if (!studies) {
      say('Generating the sample studies (fixtures/generated is missing; `make fixtures` makes them once)...');
      studies = await writeFixtureStudies(path.join(work, 'fixtures'));
    }
    say('Starting Orthanc with DICOMweb...');
    const orthanc = await startOrthanc({ dir: path.join(work, 'orthanc') });
    cleanups.push(() => orthanc.stop());
    const fhirPort = Number(process.env.RADDRAFT_DEMO_FHIR_PORT ?? (await freePort()));
    const fhir = await startFhirServer({ port: fhirPort });
    cleanups.push(() => fhir.stop());
    let lingshuUrl = process.env.RADDRAFT_LINGSHU_URL;
    let model = process.env.RADDRAFT_LINGSHU_MODEL;
    if (!lingshuUrl) {
      const standIn = await startLingshuStandIn();
      cleanups.push(() => standIn.stop());
      lingshuUrl = standIn.url;
      model = standIn.model;
      say(`Lingshu stand-in (no GPU needed) at ${standIn.url}; set RADDRAFT_LINGSHU_URL to use a real vLLM endpoint.`);
    } else {
      say(`Using the Lingshu endpoint ${lingshuUrl}.`);
    }

    const reviewer = await demoRadiologist(fhir.url);
    await demoPatients(fhir.url);
    const port = Number(process.env.RADDRAFT_PORT ?? 8080);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      RADDRAFT_DICOMWEB_URL: orthanc.dicomWebUrl,
      RADDRAFT_FHIR_URL: fhir.url,
      RADDRAFT_LINGSHU_URL: lingshuUrl,
      ...(model ? { RADDRAFT_LINGSHU_MODEL: model } : {}),
      RADDRAFT_DATA_DIR: path.join(work, 'data'),
      RADDRAFT_PORT: String(port),
      RADDRAFT_POLL_SECONDS: '1',
      RADDRAFT_STABLE_SECONDS: process.env.RADDRAFT_STABLE_SECONDS ?? '2',
      // The demo Orthanc holds only the samples, so every study date counts as new.
      RADDRAFT_LOOKBACK_DAYS: '36500',
      RADDRAFT_LOCAL_REVIEWER: reviewer,
      // The drafts also go back into the demo Orthanc as DICOM SRs, where a PACS user would see them.
      RADDRAFT_OUTPUTS: process.env.RADDRAFT_OUTPUTS ?? 'fhir,dicom-sr',
    };
    delete env.RADDRAFT_DATABASE_URL;
    const logFile = path.join(work, 'raddraft.log');
    const logStream = createWriteStream(logFile);
    const serve = spawn(process.execPath, [...process.execArgv, process.argv[1]!, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    serve.stdout.pipe(logStream);
    serve.stderr.pipe(process.stderr);
    const exited = new Promise<number>((resolve) => serve.once('exit', (code) => resolve(code ?? 1)));
    cleanups.push(async () => {
      if (serve.exitCode === null) {
        serve.kill('SIGTERM');
        await exited;
      }
    });
    const api = `http://127.0.0.1:${port}`;
    await waitFor('raddraft to answer /healthz', async () => {
      if (serve.exitCode !== null) throw new Error(`raddraft serve exited with code ${serve.exitCode}`);
      return (await fetch(`${api}/healthz`)).ok;
    }, 30_000);

    say(`Uploading ${studies.length} sample studies to Orthanc over STOW-RS...`);
    const uploadedAt = Date.now();
    for (const s of studies) await stowFiles(orthanc.dicomWebUrl, s.files);

    let jobs: (ApiJob & { id: string })[] = [];
    await waitFor('the sample studies to be drafted', async () => {
      if (serve.exitCode !== null) throw new Error(`raddraft serve exited with code ${serve.exitCode}; see ${logFile}`);
      const body = (await (await fetch(`${api}/api/jobs?limit=1000`)).json()) as { jobs: (ApiJob & { id: string })[] };
      jobs = body.jobs;
      // A draft counts once the FHIR server has it (the job then carries the report's reference).
      return jobs.length >= studies.length && jobs.every((j) => (j.state === 'drafted' && j.reportRef) || ['ineligible', 'dead'].includes(j.state));
    }, 300_000, 250);

    const posted = jobs.filter((j) => j.state === 'drafted');
    const seconds = posted.map((j) => (Date.parse(j.updatedAt) - uploadedAt) / 1000);
    const rss = peakRssMiB(serve.pid!);
    say();
    say(`raddraft drafted ${posted.length} of ${studies.length} sample studies:`);
    for (const j of jobs) {
      say(`  ${j.state.padEnd(10)} ${j.studyInstanceUid}  ${j.state === 'drafted' ? `${fhir.url}/${j.reportRef}` : j.reason ?? ''}`);
    }
    if (seconds.length) {
      say(`Upload to draft on the FHIR server: median ${median(seconds).toFixed(1)} s, worst ${Math.max(...seconds).toFixed(1)} s (includes ${env.RADDRAFT_STABLE_SECONDS} s stability wait).`);
    }
    if (rss !== undefined) say(`Peak RSS of the raddraft serve process: ${rss} MiB.`);
    if (env.RADDRAFT_OUTPUTS?.split(',').map((o) => o.trim()).includes('dicom-sr') && posted.length) {
      say();
      say('Draft SRs in the Orthanc studies (series "AI draft report - unverified"; signing adds a VERIFIED SR):');
      for (const line of await srLines(api, orthanc, jobs)) say(line);
    }
    say();
    say(`Review and sign:    ${api}/review   (on this machine, signing as ${reviewer})`);
    say(`FHIR server:        ${fhir.url}`);
    say(`Drafts awaiting sign-off: ${fhir.url}/DiagnosticReport?status=partial,preliminary&_security=${encodeURIComponent(AI_LABEL)}`);
    say(`Review tasks:       ${fhir.url}/Task?code=approve&status=requested,in-progress`);
    say(`Job list:           ${api}/api/jobs`);
    say(`Orthanc:            ${orthanc.httpUrl}`);
    say(`raddraft log:       ${logFile}`);
    if (options.exitWhenDone) return posted.length > 0 ? 0 : 1;
    say();
    say('Serving until Ctrl-C.');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
      void exited.then(() => resolve());
    });
    return 0;
  } finally {
    await cleanup();
  }
}
