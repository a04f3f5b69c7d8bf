import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, waitFor } from './ports.js';

export const DICOMWEB_PLUGIN = '/usr/share/orthanc/plugins/libOrthancDicomWeb.so';

export interface OrthancInstance {
  httpUrl: string;
  dicomWebUrl: string;
  dicomPort: number;
  aet: string;
  dir: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

function findOrthanc(): string {
  for (const candidate of ['/usr/sbin/Orthanc', '/usr/bin/Orthanc', '/usr/local/bin/Orthanc']) {
    if (existsSync(candidate)) return candidate;
  }
  throw new Error('Orthanc is not installed: run `sudo apt-get install orthanc orthanc-dicomweb` (or `make deps`)');
}

/**
 * A private Orthanc with the DICOMweb plugin on free loopback ports, storing into a temporary folder. Used by the
 * demo and the tests; stop() terminates it and removes its storage.
 */
export async function startOrthanc(options: { dir?: string; aet?: string } = {}): Promise<OrthancInstance> {
  const binary = findOrthanc();
  if (!existsSync(DICOMWEB_PLUGIN)) {
    throw new Error(`the Orthanc DICOMweb plugin is missing (${DICOMWEB_PLUGIN}): run \`sudo apt-get install orthanc-dicomweb\``);
  }
  const dir = options.dir ?? (await mkdtemp(path.join(tmpdir(), 'raddraft-orthanc-')));
  await mkdir(path.join(dir, 'db'), { recursive: true });
  const [httpPort, dicomPort] = [await freePort(), await freePort()];
  const aet = options.aet ?? 'ORTHANC';
  const config = {
    Name: 'raddraft-orthanc',
    HttpPort: httpPort,
    DicomPort: dicomPort,
    DicomAet: aet,
    StorageDirectory: path.join(dir, 'db'),
    IndexDirectory: path.join(dir, 'db'),
    Plugins: [DICOMWEB_PLUGIN],
    DicomWeb: { Enable: true, Root: '/dicom-web/', EnableWado: true, Ssl: false },
    AuthenticationEnabled: false,
    RemoteAccessAllowed: false,
    StableAge: 2,
    DicomAlwaysAllowStore: true,
    DicomCheckCalledAet: false,
    HttpServerThreads: 8,
    ConcurrentJobs: 2,
  };
  const configFile = path.join(dir, 'orthanc.json');
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const logFd = openSync(path.join(dir, 'orthanc.log'), 'a');
  const child = spawn(binary, [configFile], { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const httpUrl = `http://127.0.0.1:${httpPort}`;
  try {
    await waitFor('Orthanc to answer /system', async () => {
      if (child.exitCode !== null) throw new Error(`Orthanc exited with code ${child.exitCode}; see ${path.join(dir, 'orthanc.log')}`);
      const res = await fetch(`${httpUrl}/system`);
      return res.ok;
    }, 30_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  let stopped: Promise<void> | undefined;
  return {
    httpUrl,
    dicomWebUrl: `${httpUrl}/dicom-web`,
    dicomPort,
    aet,
    dir,
    process: child,
    stop: () =>
      (stopped ??= (async () => {
        if (child.exitCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
          await exited;
          clearTimeout(timer);
        }
        if (!options.dir) await rm(dir, { recursive: true, force: true });
      })()),
  };
}
