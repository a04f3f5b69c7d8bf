import { spawn, type ChildProcess } from 'node:child_process';
import { waitFor } from '../../src/demo/ports.js';
import { ROOT } from './peers.js';

/** raddraft's CLI run from source as its own process, with its output captured. */
export interface CliProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

export interface CliOptions {
  /** Extra node arguments before the script, e.g. `['--import', './test/harness/test-output.ts']`. */
  nodeArgs?: string[];
}

export function runCli(args: string[], env: Record<string, string>, options: CliOptions = {}): CliProcess {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RADDRAFT_')));
  const child = spawn(process.execPath, ['--import', 'tsx', ...(options.nodeArgs ?? []), 'src/cli.ts', ...args], {
    cwd: ROOT,
    env: { ...clean, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

export interface ServeProcess extends CliProcess {
  port: number;
  /** Headers the job API needs: RADDRAFT_API_TOKEN when the environment sets one. */
  jobsHeaders: Record<string, string>;
  api(path: string, init?: RequestInit): Promise<Response>;
  kill(signal: NodeJS.Signals): Promise<void>;
}

/** Starts `raddraft serve` and waits until its HTTP port is known and answers. */
export async function startServe(env: Record<string, string>, options: CliOptions = {}): Promise<ServeProcess> {
  const proc = runCli(['serve'], env, options);
  let port = 0;
  await waitFor('raddraft serve to report its port', () => {
    if (proc.child.exitCode !== null) throw new Error(`raddraft serve exited (${proc.child.exitCode}):\n${proc.output().slice(-2000)}`);
    const m = /"port":(\d+),"version"/.exec(proc.output());
    if (m) port = Number(m[1]);
    return Promise.resolve(port > 0);
  }, 30_000);
  return {
    ...proc,
    port,
    jobsHeaders: env.RADDRAFT_API_TOKEN ? { authorization: `Bearer ${env.RADDRAFT_API_TOKEN}` } : {},
    api: (path, init) => fetch(`http://127.0.0.1:${port}${path}`, init),
    kill: async (signal) => {
      if (proc.child.exitCode === null && proc.child.signalCode === null) {
        proc.child.kill(signal);
        await proc.exited;
      }
    },
  };
}

export interface ApiJob {
  id: string;
  studyInstanceUid: string;
  state: string;
  reason?: string;
  reportRef?: string;
  attempts: number;
}

export async function listJobs(serve: { api: ServeProcess['api']; jobsHeaders?: Record<string, string> }): Promise<ApiJob[]> {
  const res = await serve.api('/api/jobs?limit=1000', { headers: serve.jobsHeaders ?? {} });
  return ((await res.json()) as { jobs: ApiJob[] }).jobs;
}

/**
 * A job `drafted` and its draft delivered to the FHIR server (the job then carries the report's reference): what
 * most tests wait for, named `reported` in `waitForJobs`. It is not a job state.
 */
export const isReported = (j: ApiJob): boolean => j.state === 'drafted' && !!j.reportRef;

/** Waits until every given study has a job in one of `states` (`reported`: see isReported). */
export async function waitForJobs(serve: { api: ServeProcess['api']; jobsHeaders?: Record<string, string> }, studyUids: string[], states: string[], timeoutMs = 60_000): Promise<ApiJob[]> {
  let jobs: ApiJob[] = [];
  const reached = (j: ApiJob) => states.includes(j.state) || (states.includes('reported') && isReported(j));
  const done = (uid: string) => jobs.some((j) => j.studyInstanceUid === uid && reached(j));
  try {
    await waitFor(`jobs of ${studyUids.length} studies to reach ${states.join('/')}`, async () => {
      jobs = await listJobs(serve);
      return studyUids.every(done);
    }, timeoutMs, 200);
  } catch (err) {
    // Say which studies are still waiting, and where, so a timeout explains itself.
    const pending = studyUids.filter((uid) => !done(uid)).map((uid) => {
      const job = jobs.find((j) => j.studyInstanceUid === uid);
      return job ? `${uid}: ${job.state}${job.reason ? ` (${job.reason})` : ''}` : `${uid}: no job`;
    });
    throw new Error(`${(err as Error).message}; still waiting:\n${pending.join('\n')}`, { cause: err });
  }
  return jobs;
}
