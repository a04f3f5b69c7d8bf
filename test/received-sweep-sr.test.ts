import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { JobStore } from '../src/jobs/job-store.js';
import { ReceivedStore } from '../src/intake/received-store.js';
import { releaseIfUnneeded, stillNeeded } from '../src/intake/received-sweep.js';
import { createLogger } from '../src/log.js';
import type { DraftRecord } from '../src/report/report.js';
import { fixture } from './harness/peers.js';
import { sqlite, type Backend } from './harness/store-backends.js';

const at = '2026-12-01T20:00:00.000Z';
const draft: DraftRecord = {
  findings: 'The lungs are clear.', impression: 'No acute disease.', text: '', model: 'lingshu-7b', promptVersion: 'cxr-1', requestId: undefined, draftedAt: at,
};

describe('pushed instances of a study whose draft is still on its way to the PACS as an SR', () => {
  let backend: Backend;
  let store: JobStore;
  let dataDir: string;
  let received: ReceivedStore;
  const study = fixture('chest-ap-mono1');
  const log = createLogger({ level: 'silent' });

  beforeEach(async () => {
    backend = sqlite();
    store = await backend.open();
    dataDir = await mkdtemp(path.join(tmpdir(), 'raddraft-sweep-sr-'));
    received = new ReceivedStore(dataDir, 0);
    for (const file of study.files) {
      const sink = await received.openSpool('part');
      for await (const chunk of createReadStream(file)) await sink.write(chunk as Buffer);
      await sink.end();
      await received.accept(sink.file, 'part');
    }
  });
  afterEach(async () => {
    await store.close();
    await backend.cleanup();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('are kept once the FHIR server has the draft and until the SR output has stored it, then removed', async () => {
    const { job } = await store.observe({ studyUid: study.studyUid, source: 'stow', stableAfter: Date.now() });
    await store.claim('w1', 60_000);
    const key = `${study.studyUid}_lingshu-7b`;
    const event = { kind: 'drafted' as const, reportKey: key, studyUid: study.studyUid, jobId: job.id, at, images: [], draft };
    const drafted = await store.transition(job.id, 'w1', 'drafted', { draft }, 'drafted', { event, outputs: ['fhir', 'dicom-sr'] });

    const fhir = await store.outbox.claimById(`${key}:0>fhir`, 'd1', 60_000);
    await store.outbox.finish(fhir!.id, 'd1', { kind: 'delivered', reference: 'DiagnosticReport/1' }, Date.now());
    expect(await stillNeeded(store, drafted)).toBe(true);
    expect(await releaseIfUnneeded(received, store, drafted, log)).toBe(false);
    expect(await received.has(study.studyUid)).toBe(true);

    const sr = await store.outbox.claimById(`${key}:0>dicom-sr`, 'd1', 60_000);
    await store.outbox.finish(sr!.id, 'd1', { kind: 'delivered', reference: 'studies/x/series/y/instances/z' }, Date.now());
    expect(await releaseIfUnneeded(received, store, drafted, log)).toBe(true);
    expect(await received.has(study.studyUid)).toBe(false);
  });
});
