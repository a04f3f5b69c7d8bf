import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { JobStore } from '../src/jobs/job-store.js';
import type { NewRisMessage } from '../src/jobs/ris-reports.js';
import { postgres, sqlite, type Backend } from './harness/store-backends.js';

function accepted(control: string, studyUid: string, editDistance: number, extra: Partial<NewRisMessage> = {}): NewRisMessage {
  return {
    senderFacility: 'RIS_MAIN', senderAddress: '10.1.2.3', controlId: control, messageType: 'ORU^R01', status: 'accepted', ackCode: 'AA',
    reason: undefined, studyUid, jobId: `job-${studyUid}`, reportKey: `${studyUid}_m`, model: 'lingshu-7b', promptVersion: 'p1',
    findings: 'Lungs clear.', impression: 'Normal.', signer: 'Rita Radiologist', signedAt: '20261201115500', editDistance, draftChars: 100,
    raw: 'MSH|^~\\&|RIS|RIS_MAIN|…', ...extra,
  };
}

const refused = (control: string): NewRisMessage => ({
  ...accepted(control, '', 0), status: 'refused', ackCode: 'AE', reason: 'Unknown key identifier at OBR^1^3: no study', studyUid: undefined,
  jobId: undefined, reportKey: undefined, model: undefined, promptVersion: undefined, editDistance: undefined, draftChars: undefined,
});

describe.each([['SQLite', sqlite], ['PostgreSQL', postgres]])('%s store of RIS final reports', (_name, backendOf) => {
  let backend: Backend;
  let store: JobStore;

  beforeEach(async () => {
    backend = backendOf();
    store = await backend.open();
  });
  afterEach(async () => {
    await store.close();
    await backend.cleanup();
  });

  it('keeps an accepted report once per sender and control ID, and every refused message', async () => {
    expect((await store.risReports.record(accepted('C1', '1.2.3', 10))).duplicate).toBe(false);
    const again = await store.risReports.record(accepted('C1', '1.2.3', 10));
    expect(again.duplicate).toBe(true);
    expect((await store.risReports.record(accepted('C1', '1.2.3', 10, { senderFacility: 'DICTATION' }))).duplicate).toBe(false);
    await store.risReports.record(refused('BAD'));
    await store.risReports.record(refused('BAD'));
    expect((await store.risReports.list({ status: 'refused' })).map((m) => [m.controlId, m.ackCode, m.reason])).toEqual([
      ['BAD', 'AE', 'Unknown key identifier at OBR^1^3: no study'], ['BAD', 'AE', 'Unknown key identifier at OBR^1^3: no study'],
    ]);
    const got = await store.risReports.get(again.message.id);
    expect(got).toMatchObject({ controlId: 'C1', status: 'accepted', studyUid: '1.2.3', raw: 'MSH|^~\\&|RIS|RIS_MAIN|…', editDistance: 10 });
  });

  it('measures each study once, by its latest final report, per model and prompt', async () => {
    await store.risReports.record(accepted('C1', '1.2.3', 40));
    await new Promise((r) => setTimeout(r, 5));
    await store.risReports.record(accepted('C2', '1.2.3', 20));
    await store.risReports.record(accepted('C3', '1.2.4', 0));
    await store.risReports.record(refused('BAD'));
    const [row, ...more] = await store.risReports.qualitySummary();
    expect(more).toEqual([]);
    expect(row).toEqual({ model: 'lingshu-7b', promptVersion: 'p1', reports: 2, unchanged: 1, meanEditDistance: 10, meanEditRatio: 0.1 });
    const finals = await store.risReports.finals({ since: new Date(Date.now() - 60_000), until: new Date(Date.now() + 60_000) });
    expect(finals.map((f) => f.controlId).sort()).toEqual(['C2', 'C3']);
    expect(await store.risReports.finals({ since: new Date(Date.now() + 60_000), until: new Date(Date.now() + 120_000) })).toEqual([]);
  });
});
