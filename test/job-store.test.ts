import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { sightingChanges, type JobStore } from '../src/jobs/job-store.js';
import { postgres, sqlite, type Backend } from './harness/store-backends.js';

describe.each([['SQLite', sqlite], ['PostgreSQL', postgres]])('%s job store', (_name, backendOf) => {
  let backend: Backend;
  let store: JobStore;
  const now = Date.now();

  beforeEach(async () => {
    backend = backendOf();
    store = await backend.open();
  });
  afterEach(async () => {
    await store.close();
    await backend.cleanup();
  });

  it('makes one job per study and waits for the study to settle before it can be claimed', async () => {
    const first = await store.observe({ studyUid: '1.2.3', source: 'qido', instanceCount: 1, stableAfter: now + 60_000 });
    expect(first.created).toBe(true);
    const again = await store.observe({ studyUid: '1.2.3', source: 'qido', instanceCount: 2, stableAfter: now + 90_000 });
    expect(again).toMatchObject({ created: false, job: { id: first.job.id, instanceCount: 2, stableAfter: now + 90_000 } });
    expect(await store.claim('w1', 1000, { now: now + 60_000 })).toBeUndefined();
    expect((await store.claim('w1', 1000, { now: now + 90_000 }))?.id).toBe(first.job.id);
  });

  it('makes one job, with one event, of a new study sighted by several sources at once', async () => {
    const sightings = await Promise.all(['qido', 'stow', 'c-store', 'fhir', 'qido-sweep'].map((source) =>
      store.observe({ studyUid: '1.2.30', source, instanceCount: 1, stableAfter: now })));
    expect(sightings.filter((s) => s.created)).toHaveLength(1);
    expect(new Set(sightings.map((s) => s.job.id)).size).toBe(1);
    const events = await store.events(sightings[0]!.job.id);
    expect(events).toEqual([{ at: expect.any(Number), from: undefined, to: 'discovered', note: `seen by ${sightings.find((s) => s.created)!.job.source}` }]);
  });

  it('lets only the lease holder move a job, and records each state change', async () => {
    const { job } = await store.observe({ studyUid: '1.2.4', source: 'qido', stableAfter: now });
    const claimed = await store.claim('w1', 60_000);
    expect(claimed?.id).toBe(job.id);
    await expect(store.transition(job.id, 'w2', 'queued')).rejects.toThrow(`job ${job.id}: lease lost to another worker`);
    const queued = await store.transition(job.id, 'w1', 'queued', { views: [], reason: 'none' }, 'views chosen');
    expect(queued).toMatchObject({ state: 'queued', leaseOwner: 'w1', views: [], reason: 'none' });
    // A move within a state changes the job and records no event.
    expect(await store.transition(job.id, 'w1', 'queued', { reason: null })).toMatchObject({ state: 'queued', reason: undefined });
    const drafted = await store.transition(job.id, 'w1', 'drafted');
    expect(drafted).toMatchObject({ state: 'drafted', leaseOwner: undefined, leaseUntil: undefined });
    await expect(store.transition(job.id, 'w1', 'dead')).rejects.toThrow(`job ${job.id}: lease lost to another worker`);
    expect((await store.events(job.id)).map((e) => [e.from, e.to, e.note])).toEqual([
      [undefined, 'discovered', 'seen by qido'], ['discovered', 'queued', 'views chosen'], ['queued', 'drafted', undefined],
    ]);
  });

  it('retries a failed job from the state it failed in, and makes it dead when the budget is spent', async () => {
    const { job } = await store.observe({ studyUid: '1.2.5', source: 'qido', stableAfter: now });
    await store.claim('w1', 60_000);
    await store.transition(job.id, 'w1', 'drafting');
    const failed = await store.fail(job.id, 'w1', 'model down', { retryAt: Date.now() + 50_000 });
    expect(failed).toMatchObject({ state: 'failed', attempts: 1, reason: 'model down', resumeState: 'drafting' });
    expect(await store.claim('w1', 60_000)).toBeUndefined();
    const resumed = await store.claim('w1', 60_000, { now: Date.now() + 60_000 });
    expect(resumed).toMatchObject({ state: 'drafting', attempts: 1, leaseOwner: 'w1', nextAttemptAt: undefined });
    expect((await store.events(job.id)).at(-1)).toMatchObject({ from: 'failed', to: 'drafting', note: 'attempt 2 by w1' });
    await store.fail(job.id, 'w1', 'model down', { retryAt: Date.now() });
    await store.claim('w1', 60_000, { now: Date.now() + 1 });
    const dead = await store.fail(job.id, 'w1', 'model down again', { retryAt: Date.now() });
    expect(dead).toMatchObject({ state: 'dead', attempts: 3, reason: 'model down again' });
    expect((await store.retry(job.id))).toMatchObject({ state: 'failed', attempts: 0 });
  });

  it('makes a job dead at once for a fault no retry can cure', async () => {
    const { job } = await store.observe({ studyUid: '1.2.6', source: 'qido', stableAfter: now });
    await store.claim('w1', 60_000);
    expect(await store.fail(job.id, 'w1', 'JPEG 2000 cannot be decoded', { final: true })).toMatchObject({ state: 'dead', attempts: 1 });
  });

  it('hands a job whose holder vanished to another worker, counting the lost attempt', async () => {
    const { job } = await store.observe({ studyUid: '1.2.7', source: 'qido', stableAfter: now });
    await store.claim('host:99999999:aa', 60_000);
    await store.transition(job.id, 'host:99999999:aa', 'fetching');
    expect(await store.claim('w2', 60_000)).toBeUndefined();
    expect(await store.expireLeases((owner) => owner === 'host:99999999:aa')).toBe(1);
    const taken = await store.claim('w2', 60_000);
    expect(taken).toMatchObject({ id: job.id, state: 'fetching', attempts: 1, leaseOwner: 'w2' });
    expect((await store.events(job.id)).at(-1)).toMatchObject({ from: 'fetching', to: 'fetching', note: 'taken over from host:99999999:aa after its lease expired' });
  });

  it('makes a job dead when the workers holding it keep stopping, instead of handing it on again', async () => {
    const { job } = await store.observe({ studyUid: '1.2.10', source: 'qido', stableAfter: now });
    let t = Date.now();
    await store.claim('w1', 1000, { now: t });
    await store.transition(job.id, 'w1', 'rendering');
    for (const owner of ['w2', 'w3']) {
      t += 2000;
      expect(await store.claim(owner, 1000, { now: t })).toMatchObject({ id: job.id, state: 'rendering', leaseOwner: owner });
    }
    t += 2000;
    expect(await store.claim('w4', 1000, { now: t })).toBeUndefined();
    expect(await store.get(job.id)).toMatchObject({ state: 'dead', attempts: 3, leaseOwner: undefined, leaseUntil: undefined, reason: 'the worker processing it stopped 3 times in state rendering' });
    expect((await store.events(job.id)).slice(-3).map((e) => [e.from, e.to, e.note])).toEqual([
      ['rendering', 'rendering', 'taken over from w1 after its lease expired'],
      ['rendering', 'rendering', 'taken over from w2 after its lease expired'],
      ['rendering', 'dead', 'the worker processing it stopped 3 times in state rendering'],
    ]);
    expect(await store.claim('w4', 1000, { now: t + 60_000 })).toBeUndefined();
  });

  it('records an ineligible study once, and keeps checkpoints', async () => {
    expect((await store.recordIneligible('1.2.8', 'qido', 'CT')).created).toBe(true);
    expect((await store.recordIneligible('1.2.8', 'qido', 'CT')).created).toBe(false);
    expect((await store.countByState()).ineligible).toBe(1);
    await store.setCheckpoint('qido.since', '20260101');
    await store.setCheckpoint('qido.since', '20260102');
    expect(await store.getCheckpoint('qido.since')).toBe('20260102');
  });

  it('tells what it holds of the studies asked about, so that a sighting changes only a new study or a settling one whose count moved', async () => {
    await store.observe({ studyUid: '1.2.20', source: 'qido', instanceCount: 2, stableAfter: now + 60_000 });
    const { job } = await store.observe({ studyUid: '1.2.21', source: 'qido', stableAfter: now });
    await store.recordIneligible('1.2.22', 'qido', 'CT');
    expect((await store.claim('w1', 60_000))?.id).toBe(job.id);
    await store.transition(job.id, 'w1', 'queued', { views: [] });
    const many = Array.from({ length: 1200 }, (_, i) => `1.2.9.${i}`);
    const known = await store.knownStudies(['1.2.20', '1.2.21', '1.2.22', '1.2.23', ...many]);
    expect(known).toEqual(new Map([
      ['1.2.20', { state: 'discovered', instanceCount: 2 }],
      ['1.2.21', { state: 'queued', instanceCount: undefined }],
      ['1.2.22', { state: 'ineligible', instanceCount: undefined }],
    ]));
    expect(await store.knownStudies([])).toEqual(new Map());
    expect(sightingChanges(known.get('1.2.23'), 2)).toBe(true);
    expect(sightingChanges(known.get('1.2.20'), 3)).toBe(true);
    expect(sightingChanges(known.get('1.2.20'), 2)).toBe(false);
    expect(sightingChanges(known.get('1.2.20'), undefined)).toBe(false);
    expect(sightingChanges(known.get('1.2.21'), 5)).toBe(false);
    expect(sightingChanges(known.get('1.2.22'), 5)).toBe(false);
  });

  it('keeps jobs across a reopen', async () => {
    const { job } = await store.observe({ studyUid: '1.2.9', source: 'qido', stableAfter: now });
    await store.close();
    store = await backend.open();
    expect((await store.get(job.id))?.studyUid).toBe('1.2.9');
  });

  it('hands each job to exactly one of many claimers at once', async () => {
    for (let i = 0; i < 30; i++) await store.observe({ studyUid: `1.3.${i}`, source: 'qido', stableAfter: now });
    const claimed = (await Promise.all(Array.from({ length: 60 }, (_, i) => store.claim(`w${i}`, 60_000)))).filter((j) => j !== undefined);
    expect(claimed).toHaveLength(30);
    expect(new Set(claimed.map((j) => j.id)).size).toBe(30);
  });
});
