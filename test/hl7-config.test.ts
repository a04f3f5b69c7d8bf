import { describe, expect, it } from '@jest/globals';
import { ConfigError, describeConfig, loadConfig } from '../src/config/load.js';

const base = { RADDRAFT_DICOMWEB_URL: 'http://pacs/dicom-web', RADDRAFT_FHIR_URL: 'http://fhir/R4', RADDRAFT_LINGSHU_URL: 'http://vllm:8000/v1' };
const problems = (env: Record<string, string>) => {
  try {
    loadConfig({ ...base, ...env });
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems;
  }
};

describe('HL7 settings', () => {
  it('reads the output and listener settings with their defaults', () => {
    const { hl7 } = loadConfig({
      ...base, RADDRAFT_OUTPUTS: 'fhir,hl7', RADDRAFT_HL7_DESTINATION: 'mllps://ris.hospital.example:2575', RADDRAFT_HL7_ACCESSION: 'filler, obr18',
      RADDRAFT_HL7_LISTEN_PORT: '2576', RADDRAFT_HL7_SENDERS: 'RIS_MAIN@10.1.2.3, DICTATION',
    });
    expect(hl7).toEqual({
      destination: 'mllps://ris.hospital.example:2575', sender: { application: 'RADDRAFT', facility: 'RADDRAFT' }, receiver: { application: 'RIS', facility: 'RIS' },
      draftStatus: 'R', accessionIn: ['filler', 'obr18'], withdrawAs: 'D', ackTimeoutMs: 30_000, listenPort: 2576,
      senders: [{ facility: 'RIS_MAIN', address: '10.1.2.3' }, { facility: 'DICTATION', address: undefined }], maxMessageBytes: 1024 * 1024, idleMs: 60_000,
    });
  });

  it('names the RIS destination and the listener in the start-up line and doctor', () => {
    const shown = describeConfig(loadConfig({ ...base, RADDRAFT_OUTPUTS: 'fhir,hl7', RADDRAFT_HL7_DESTINATION: 'mllp://ris:2575', RADDRAFT_HL7_LISTEN_PORT: '2576', RADDRAFT_HL7_SENDERS: 'RIS_MAIN@10.1.2.3' }));
    expect(shown).toMatchObject({ hl7Destination: 'mllp://ris:2575', hl7Listener: 'port 2576, senders RIS_MAIN@10.1.2.3' });
    expect(describeConfig(loadConfig(base)).hl7Destination).toBeUndefined();
  });

  it('refuses to start without a destination for hl7 or an allow-list for the listener, naming the setting and an example', () => {
    expect(problems({ RADDRAFT_OUTPUTS: 'fhir,hl7' })).toEqual(['RADDRAFT_HL7_DESTINATION is missing: RADDRAFT_OUTPUTS names hl7; for example RADDRAFT_HL7_DESTINATION=mllp://ris.hospital.example:2575']);
    expect(problems({ RADDRAFT_HL7_LISTEN_PORT: '2576' })).toEqual(['RADDRAFT_HL7_SENDERS is missing: the HL7 listener accepts only the sending facilities listed there; for example RADDRAFT_HL7_SENDERS=RIS_MAIN@10.1.2.3']);
  });

  it('refuses malformed values with what is wrong and a good example', () => {
    expect(problems({ RADDRAFT_HL7_DESTINATION: 'tcp://ris:2575' })).toEqual(['RADDRAFT_HL7_DESTINATION="tcp://ris:2575" is not mllp://host:port or mllps://host:port; for example RADDRAFT_HL7_DESTINATION=mllp://ris.hospital.example:2575']);
    expect(problems({ RADDRAFT_HL7_DRAFT_STATUS: 'F' })).toEqual(['RADDRAFT_HL7_DRAFT_STATUS="F" is not R or P; for example RADDRAFT_HL7_DRAFT_STATUS=R']);
    expect(problems({ RADDRAFT_HL7_SENDER: 'RAD|DRAFT^X' })[0]).toMatch(/^RADDRAFT_HL7_SENDER="RAD\|DRAFT\^X" is not APPLICATION\^FACILITY without HL7 delimiters/);
    expect(problems({ RADDRAFT_HL7_ACCESSION: 'order' })[0]).toMatch(/is not a comma list of placer, filler and obr18/);
  });
});
