import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFhirServer, type FhirServer } from '../../src/demo/fhir-server.js';
import { startLingshuStandIn, type LingshuStandIn } from '../../src/demo/lingshu-standin.js';
import { startOrthanc, type OrthancInstance } from '../../src/demo/orthanc.js';
import { FIXTURE_STUDIES, fixtureUid } from '../../src/demo/phantom.js';
import { stowFiles } from '../../src/demo/stow.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURE_DIR = path.join(ROOT, 'fixtures', 'generated');

export interface FixtureStudy {
  key: string;
  studyUid: string;
  modality: string;
  files: string[];
}

/** The generated sample studies (`make fixtures`), with their UIDs. */
export function fixtures(): FixtureStudy[] {
  return FIXTURE_STUDIES.map((s) => {
    const dir = path.join(FIXTURE_DIR, s.key);
    let files: string[];
    try {
      files = readdirSync(dir).filter((f) => f.endsWith('.dcm')).sort().map((f) => path.join(dir, f));
    } catch {
      throw new Error(`fixture study ${s.key} is missing from ${FIXTURE_DIR}; run \`make fixtures\``);
    }
    return { key: s.key, studyUid: fixtureUid(s.key), modality: s.modality, files };
  });
}

export function fixture(key: string): FixtureStudy {
  const f = fixtures().find((s) => s.key === key);
  if (!f) throw new Error(`no fixture study ${key}`);
  return f;
}

export interface Peers {
  orthanc: OrthancInstance;
  fhir: FhirServer;
  model: LingshuStandIn;
  upload(studies: FixtureStudy[]): Promise<void>;
  stop(): Promise<void>;
}

/** Real Orthanc with DICOMweb, the in-process Medplum FHIR server and the Lingshu stand-in, on free ports. */
export async function startPeers(): Promise<Peers> {
  const [orthanc, fhir, model] = await Promise.all([startOrthanc(), startFhirServer(), startLingshuStandIn()]);
  return {
    orthanc,
    fhir,
    model,
    upload: async (studies) => {
      for (const s of studies) await stowFiles(orthanc.dicomWebUrl, s.files);
    },
    stop: async () => {
      await Promise.all([orthanc.stop(), fhir.stop(), model.stop()]);
    },
  };
}

/** The environment for a raddraft pointed at the peers. */
export function serviceEnv(peers: Peers, dataDir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    RADDRAFT_DICOMWEB_URL: peers.orthanc.dicomWebUrl,
    RADDRAFT_FHIR_URL: peers.fhir.url,
    RADDRAFT_LINGSHU_URL: peers.model.url,
    RADDRAFT_DATA_DIR: dataDir,
    RADDRAFT_PORT: '0',
    RADDRAFT_POLL_SECONDS: '1',
    RADDRAFT_STABLE_SECONDS: '1',
    RADDRAFT_LOOKBACK_DAYS: '36500',
    RADDRAFT_RETRY_SECONDS: '1',
    RADDRAFT_LOG_LEVEL: 'debug',
    ...extra,
  };
}
