import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DicomWebClient } from '../../src/dicom/dicomweb.js';
import { startOrthanc, type OrthancInstance } from '../../src/demo/orthanc.js';
import { freePort, waitFor } from '../../src/demo/ports.js';
import { stowFiles } from '../../src/demo/stow.js';
import { CHECKPOINT, QidoPoller, dicomDay } from '../../src/intake/qido-poller.js';
import type { JobStore } from '../../src/jobs/job-store.js';
import { openSqliteStore } from '../../src/jobs/sqlite.js';
import { createLogger } from '../../src/log.js';
import { cloneStudies } from '../harness/dcmtk.js';
import { fixture } from '../harness/peers.js';

jest.setTimeout(60_000);

const log = createLogger({ level: 'silent' });
// The fixtures are dated 2026-03-01; "today" for these sweeps is five days later.
const today = new Date(2026, 2, 6, 12, 0, 0);

describe('QIDO-RS poller against Orthanc', () => {
  let orthanc: OrthancInstance;
  let dir: string;
  let store: JobStore;
  let dicomweb: DicomWebClient;

  beforeAll(async () => {
    orthanc = await startOrthanc();
    dir = await mkdtemp(path.join(tmpdir(), 'raddraft-qido-'));
    store = await openSqliteStore(dir, 5);
    dicomweb = new DicomWebClient({ url: orthanc.dicomWebUrl, auth: { kind: 'none' } });
  });

  afterAll(async () => {
    await store.close();
    await orthanc.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('ignores studies older than the look-back on a first start', async () => {
    await stowFiles(orthanc.dicomWebUrl, fixture('ct-chest').files);
    const poller = new QidoPoller(dicomweb, store, { pollSeconds: 30, stableSeconds: 60, lookbackDays: 1 }, log);
    expect(await poller.pollOnce(today)).toEqual({ seen: 0, discovered: 0, ineligible: 0, since: '20260305' });
    expect(await store.getCheckpoint(CHECKPOINT)).toBe('20260305');
  });

  it('finds studies that arrived while raddraft was down, from the persisted checkpoint', async () => {
    await store.setCheckpoint(CHECKPOINT, '20260228');
    const poller = new QidoPoller(dicomweb, store, { pollSeconds: 30, stableSeconds: 60, lookbackDays: 1 }, log);
    const result = await poller.pollOnce(today);
    expect(result).toEqual({ seen: 1, discovered: 0, ineligible: 1, since: '20260228' });
    expect((await store.findByStudy(fixture('ct-chest').studyUid))?.reason).toBe('ModalitiesInStudy is CT: not CR or DX');
    expect(await store.getCheckpoint(CHECKPOINT)).toBe('20260305');
  });

  it('holds a study back until its instance count has been still for the stability time', async () => {
    const study = fixture('chest-pa-lat');
    const poller = new QidoPoller(dicomweb, store, { pollSeconds: 30, stableSeconds: 60, lookbackDays: 10 }, log);
    await stowFiles(orthanc.dicomWebUrl, [study.files[0]!]);
    const t0 = today.getTime();
    expect((await poller.pollOnce(new Date(t0))).discovered).toBe(1);
    expect((await store.findByStudy(study.studyUid))?.instanceCount).toBe(1);

    // The lateral arrives 30 s later: the clock restarts.
    await stowFiles(orthanc.dicomWebUrl, [study.files[1]!]);
    await poller.pollOnce(new Date(t0 + 30_000));
    expect(await store.findByStudy(study.studyUid)).toMatchObject({ instanceCount: 2, stableAfter: t0 + 90_000 });
    // Seen again unchanged: the clock runs on.
    await poller.pollOnce(new Date(t0 + 45_000));
    expect(await store.findByStudy(study.studyUid)).toMatchObject({ instanceCount: 2, stableAfter: t0 + 90_000 });
    expect(await store.claim('w', 1000, { now: t0 + 60_000 })).toBeUndefined();
    expect((await store.claim('w', 1000, { now: t0 + 90_000 }))?.studyUid).toBe(study.studyUid);
  });

  it('says which request failed when the PACS is unreachable', async () => {
    const closed = await freePort();
    const down = new DicomWebClient({ url: `http://127.0.0.1:${closed}/dicom-web`, auth: { kind: 'none' } });
    const poller = new QidoPoller(down, store, { pollSeconds: 30, stableSeconds: 60, lookbackDays: 1 }, log);
    await expect(poller.pollOnce(today)).rejects.toThrow(`QIDO-RS study search: cannot reach the PACS at http://127.0.0.1:${closed}/dicom-web (ECONNREFUSED)`);
    expect(poller.health.lastError).toContain('ECONNREFUSED');
  });

  it('finds a study dated 20 days ago but uploaded now in the wider sweep, not in the poll, and makes no second job of a study it knows', async () => {
    const source = fixture('chest-ap-mono1').files[0]!;
    const [late] = await cloneStudies(source, 1, dir, [`(0008,0020)=${dicomDay(today, 20)}`]);
    const [tooOld] = await cloneStudies(source, 1, dir, [`(0008,0020)=${dicomDay(today, 40)}`]);
    await stowFiles(orthanc.dicomWebUrl, [late!.file, tooOld!.file]);
    const poller = new QidoPoller(dicomweb, store, { pollSeconds: 30, stableSeconds: 60, lookbackDays: 1, sweepDays: 30, sweepMinutes: 60 }, log);
    const jobsBefore = await store.list({ limit: 1000 });

    expect((await poller.pollOnce(today)).discovered).toBe(0);
    expect(await store.findByStudy(late!.studyUid)).toBeUndefined();

    // The sweep also sees the CT and the PA/lateral study dated 2026-03-01, both known from the polls above.
    expect(await poller.sweepOnce(today)).toEqual({ seen: 3, discovered: 1, ineligible: 0, range: '20260204-20260304' });
    expect(await store.findByStudy(late!.studyUid)).toMatchObject({ state: 'discovered', source: 'qido-sweep' });
    expect(await store.findByStudy(tooOld!.studyUid)).toBeUndefined();
    expect(await poller.sweepOnce(today)).toEqual({ seen: 3, discovered: 0, ineligible: 0, range: '20260204-20260304' });
    const jobsAfter = await store.list({ limit: 1000 });
    expect(jobsAfter).toHaveLength(jobsBefore.length + 1);
    expect(new Set(jobsAfter.map((j) => j.studyUid)).size).toBe(jobsAfter.length);
  });

  it('runs the wider sweep as soon as it starts, so a study dated 20 days back is found without waiting an interval', async () => {
    const fresh = await openSqliteStore(await mkdtemp(path.join(dir, 'store-')), 5);
    const [late] = await cloneStudies(fixture('chest-ap-mono1').files[0]!, 1, dir, [`(0008,0020)=${dicomDay(new Date(), 20)}`]);
    await stowFiles(orthanc.dicomWebUrl, [late!.file]);
    const poller = new QidoPoller(dicomweb, fresh, { pollSeconds: 3600, stableSeconds: 60, lookbackDays: 1, sweepDays: 30, sweepMinutes: 60 }, log);
    poller.start();
    try {
      await waitFor('the sweep at start to find the study', async () => (await fresh.findByStudy(late!.studyUid))?.source === 'qido-sweep', 15_000);
    } finally {
      await poller.stop();
      await fresh.close();
    }
  });

  it('does not sweep when the sweep reaches no further back than the look-back', async () => {
    const poller = new QidoPoller(dicomweb, store, { pollSeconds: 30, stableSeconds: 60, lookbackDays: 30, sweepDays: 30, sweepMinutes: 60 }, log);
    expect(await poller.sweepOnce(today)).toEqual({ seen: 0, discovered: 0, ineligible: 0, range: '' });
  });
});
