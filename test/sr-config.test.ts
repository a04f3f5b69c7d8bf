import { describe, expect, it } from '@jest/globals';
import { ConfigError, describeConfig, loadConfig } from '../src/config/load.js';

const BASE = {
  RADDRAFT_DICOMWEB_URL: 'http://orthanc:8042/dicom-web/',
  RADDRAFT_DICOMWEB_AUTH: 'bearer:pacs-token-0123456789',
  RADDRAFT_FHIR_URL: 'https://fhir.example.org/R4',
  RADDRAFT_LINGSHU_URL: 'http://vllm:8000/v1',
};

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('where the dicom-sr output stores its SRs', () => {
  it('stores by STOW-RS into the PACS, with the PACS credentials, when no destination is set', () => {
    expect(loadConfig(BASE).sr).toEqual({
      destination: { kind: 'dicomweb', url: 'http://orthanc:8042/dicom-web', auth: { kind: 'bearer', token: 'pacs-token-0123456789' } },
      organization: 'Radiology', timeoutMs: 30_000,
    });
  });

  it('stores by STOW-RS into another archive with its own credentials', () => {
    const sr = loadConfig({ ...BASE, RADDRAFT_SR_DESTINATION: 'https://vna.example.org/dicomweb/', RADDRAFT_SR_AUTH: 'basic:raddraft:s3cret-pass' }).sr;
    expect(sr.destination).toEqual({ kind: 'dicomweb', url: 'https://vna.example.org/dicomweb', auth: { kind: 'basic', user: 'raddraft', password: 's3cret-pass' } });
  });

  it('stores by C-STORE to dicom://AET@host:port, calling as raddraft\'s own AE title', () => {
    const sr = loadConfig({ ...BASE, RADDRAFT_SR_DESTINATION: 'dicom://PACS_SR@pacs.example.org:104', RADDRAFT_DIMSE_AET: 'RDX' }).sr;
    expect(sr.destination).toEqual({ kind: 'dimse', host: 'pacs.example.org', port: 104, calledAet: 'PACS_SR', callingAet: 'RDX' });
  });

  it('refuses a destination that is neither, naming the setting and a good example, and never prints the SR credentials', () => {
    expect(problems({ ...BASE, RADDRAFT_SR_DESTINATION: 'ftp://pacs:104' })).toEqual([
      'RADDRAFT_SR_DESTINATION="ftp://pacs:104" is not an http(s) DICOMweb URL or dicom://AET@host:port; for example RADDRAFT_SR_DESTINATION=dicom://PACS@pacs.hospital.example:104',
    ]);
    expect(problems({ ...BASE, RADDRAFT_SR_DESTINATION: 'dicom://PACS@pacs:99999' })).toEqual([expect.stringContaining('RADDRAFT_SR_DESTINATION: port 99999 is not between 1 and 65535')]);
    const shown = problems({ ...BASE, RADDRAFT_SR_AUTH: 'basic:only-user' }).join('\n');
    expect(shown).toContain('RADDRAFT_SR_AUTH');
    expect(shown).not.toContain('only-user');
    expect(JSON.stringify(describeConfig(loadConfig({ ...BASE, RADDRAFT_SR_AUTH: 'bearer:sr-secret-token' })))).not.toContain('sr-secret-token');
  });
});

describe('what doctor and the start-up line say of the SR destination', () => {
  it('names where SRs go and the kind of credentials, never the credentials', () => {
    const shown = describeConfig(loadConfig({ ...BASE, RADDRAFT_OUTPUTS: 'fhir,dicom-sr', RADDRAFT_SR_DESTINATION: 'https://vna.example.org/dicomweb', RADDRAFT_SR_AUTH: 'bearer:sr-secret-token' }));
    expect(shown.srDestination).toBe('STOW-RS to https://vna.example.org/dicomweb (auth bearer)');
    expect(describeConfig(loadConfig({ ...BASE, RADDRAFT_OUTPUTS: 'fhir,dicom-sr', RADDRAFT_SR_DESTINATION: 'dicom://PACS@10.0.0.5:104' })).srDestination)
      .toBe('C-STORE to PACS at 10.0.0.5:104 (calling AE title RADDRAFT)');
    expect(describeConfig(loadConfig(BASE)).srDestination).toBeUndefined();
  });
});
