import { describe, expect, it } from '@jest/globals';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, describeConfig, loadConfig } from '../src/config/load.js';

const BASE = {
  RADDRAFT_DICOMWEB_URL: 'http://orthanc:8042/dicom-web/',
  RADDRAFT_FHIR_URL: 'https://fhir.example.org/R4',
  RADDRAFT_LINGSHU_URL: 'http://vllm:8000/v1',
};

function problems(env: Record<string, string>, file?: string): string[] {
  try {
    loadConfig(env, file);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('applies the documented defaults and trims trailing slashes', () => {
    const c = loadConfig(BASE);
    expect(c.dicomweb).toEqual({ url: 'http://orthanc:8042/dicom-web', auth: { kind: 'none' } });
    expect(c.lingshu.model).toBe('lingshu-medical-mllm/Lingshu-7B');
    expect(c).toMatchObject({ port: 8080, pollSeconds: 30, stableSeconds: 60, intake: ['qido'], databaseUrl: undefined });
    expect(c.lingshu.maxInFlight).toBe(8);
    expect(path.isAbsolute(c.dataDir)).toBe(true);
    expect(Object.isFrozen(c.lingshu)).toBe(true);
  });

  it('parses credentials of each form', () => {
    const c = loadConfig({ ...BASE, RADDRAFT_DICOMWEB_AUTH: 'basic:pacs:pa:ss', RADDRAFT_FHIR_AUTH: 'smart:raddraft:/etc/raddraft/key.pem:https://auth.example.org/token' });
    expect(c.dicomweb.auth).toEqual({ kind: 'basic', user: 'pacs', password: 'pa:ss' });
    expect(c.fhir.auth).toEqual({ kind: 'smart', clientId: 'raddraft', keyFile: '/etc/raddraft/key.pem', tokenUrl: 'https://auth.example.org/token' });
  });

  it('reports every problem at once, each with the setting, the fault and an example', () => {
    expect(problems({ RADDRAFT_DICOMWEB_URL: 'orthanc:8042', RADDRAFT_PORT: '70000', RADDRAFT_LINGSHU_URL: BASE.RADDRAFT_LINGSHU_URL })).toEqual([
      'RADDRAFT_DICOMWEB_URL="orthanc:8042" is not an http(s) URL; for example RADDRAFT_DICOMWEB_URL=http://orthanc:8042/dicom-web',
      'RADDRAFT_FHIR_URL is missing (FHIR R4 base URL); for example RADDRAFT_FHIR_URL=http://fhir:8080/fhir/R4',
      'RADDRAFT_PORT="70000" is outside 0..65535; for example RADDRAFT_PORT=8080',
    ]);
  });

  it('suggests the setting a misspelt variable was meant to be', () => {
    expect(problems({ ...BASE, RADDRAFT_POL_SECONDS: '5' })).toEqual(['RADDRAFT_POL_SECONDS is not a raddraft setting; did you mean RADDRAFT_POLL_SECONDS?']);
  });

  it('rejects an unknown intake, and asks for what each push intake needs', () => {
    expect(problems({ ...BASE, RADDRAFT_INTAKE: 'qido,hl7' })).toEqual([
      'RADDRAFT_INTAKE="qido,hl7" is not a comma list of qido, fhir, stow and dimse; for example RADDRAFT_INTAKE=qido,stow',
    ]);
    expect(problems({ ...BASE, RADDRAFT_INTAKE: 'dimse,fhir' })).toEqual([
      'RADDRAFT_DIMSE_PEERS is missing: the C-STORE SCP accepts only the calling AE titles listed there; for example RADDRAFT_DIMSE_PEERS=MODALITY1,PACS (or * for any)',
      'RADDRAFT_FHIR_NOTIFY_TOKEN is missing: FHIR notifications must carry it; for example RADDRAFT_FHIR_NOTIFY_TOKEN=a-random-string-of-16-or-more-characters',
    ]);
    expect(problems({ ...BASE, RADDRAFT_INTAKE: 'qido,stow' })).toEqual([
      'RADDRAFT_STOW_AUTH is missing: STOW-RS accepts pushes only from senders with credentials; for example RADDRAFT_STOW_AUTH=bearer:a-long-random-token (or RADDRAFT_STOW_AUTH=none to accept any sender on the network)',
    ]);
    const c = loadConfig({ ...BASE, RADDRAFT_INTAKE: 'qido, stow,dimse', RADDRAFT_DIMSE_PEERS: 'CT 1,PACS', RADDRAFT_STOW_AUTH: 'none' });
    expect(c.intake).toEqual(['qido', 'stow', 'dimse']);
    expect(c.dimse).toEqual({ port: 11112, aet: 'RADDRAFT', peers: ['CT 1', 'PACS'], maxPduBytes: 131072, idleSeconds: 30, maxAssociations: 16 });
  });

  it('hides secret values in messages and in the description', () => {
    const msgs = problems({ ...BASE, RADDRAFT_DICOMWEB_AUTH: 'hunter2' });
    expect(msgs.join('\n')).not.toContain('hunter2');
    const described = JSON.stringify(describeConfig(loadConfig({ ...BASE, RADDRAFT_LINGSHU_API_KEY: 'sk-very-secret', RADDRAFT_FHIR_AUTH: 'bearer:tok-123' })));
    expect(described).not.toContain('sk-very-secret');
    expect(described).not.toContain('tok-123');
    expect(described).toContain('"lingshuApiKey":"set"');
  });

  it('reads a JSON file of the same keys, the environment winning', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'raddraft-config-'));
    const file = path.join(dir, 'raddraft.json');
    await writeFile(file, JSON.stringify({ ...BASE, RADDRAFT_POLL_SECONDS: 10, RADDRAFT_PORT: 9000 }));
    const c = loadConfig({ RADDRAFT_PORT: '9100' }, file);
    expect(c.pollSeconds).toBe(10);
    expect(c.port).toBe(9100);
  });

  it('names a config file that is not JSON', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'raddraft-config-'));
    const file = path.join(dir, 'bad.json');
    await writeFile(file, 'RADDRAFT_FHIR_URL=http://x');
    expect(problems({}, file)[0]).toMatch(/^--config .*bad\.json is not valid JSON: /);
  });
});
