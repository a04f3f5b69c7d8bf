import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { JobStore } from '../src/jobs/job-store.js';
import { StaleEventError, type NewReportEvent, type Outbox } from '../src/jobs/outbox.js';
import type { DraftRecord } from '../src/report/report.js';
import { postgres, sqlite, type Backend } from './harness/store-backends.js';

const at = '2026-12-01T20:00:00.000Z';
const draft: DraftRecord = {
  findings: 'The lungs are clear.', impression: 'No acute disease.', text: 'FINDINGS: The lungs are clear. IMPRESSION: No acute disease.',
  model: 'lingshu-7b', promptVersion: 'cxr-1', requestId: undefined, draftedAt: at,
};

function drafted(reportKey: string, jobId = 'job-1', findings = draft.findings): NewReportEvent {
  return { kind: 'drafted', reportKey, studyUid: reportKey.split('_')[0]!, jobId, at, images: [], draft: { ...draft, findings } };
}

function signed(reportKey: string, jobId = 'job-1', signer = 'Practitioner/r1'): NewReportEvent {
  return {
    kind: 'signed', reportKey, studyUid: reportKey.split('_')[0]!, jobId, at, findings: draft.findings, impression: draft.impression,
    by: { reference: signer, display: undefined }, reviewedVersion: '1',
  };
}

describe.each([['SQLite', sqlite], ['PostgreSQL', postgres]])('%s outbox', (_name, backendOf) => {
  let backend: Backend;
  let store: JobStore;
  let outbox: Outbox;

  beforeEach(async () => {
    backend = backendOf();
    store = await backend.open();
    outbox = store.outbox;
  });
  afterEach(async () => {
    await store.close();
    await backend.cleanup();
  });

  /** Every delivery `owner` can claim at `now`, by id. */
  async function claimAll(owner: string, now?: number): Promise<string[]> {
    const ids: string[] = [];
    for (let d = await outbox.claim(owner, 60_000, now); d && ids.length < 100; d = await outbox.claim(owner, 60_000, now)) ids.push(d.id);
    return ids.sort();
  }

  /** Claims the named delivery and records what the receiver said. */
  async function settle(id: string, outcome: Parameters<Outbox['finish']>[2]) {
    expect((await outbox.claimById(id, 'settler', 60_000))?.id).toBe(id);
    return outbox.finish(id, 'settler', outcome, Date.now());
  }

  it('records the draft event and one pending delivery per output with the move to drafted, and keeps the first draft', async () => {
    const { job } = await store.observe({ studyUid: '1.2.1', source: 'qido', stableAfter: Date.now() });
    await store.claim('w1', 60_000);
    const key = '1.2.1_lingshu-7b';
    await store.transition(job.id, 'w1', 'drafting', {}, 'first draft', { event: drafted(key, job.id), outputs: ['fhir', 'hl7'] });
    const moved = await store.transition(job.id, 'w1', 'drafted', { draft }, 'drafted again', { event: drafted(key, job.id, 'Another text.'), outputs: ['fhir', 'hl7'] });
    expect(moved.state).toBe('drafted');
    const events = await outbox.events(key);
    expect(events).toEqual([expect.objectContaining({ id: `${key}:0`, seq: 0, kind: 'drafted', jobId: job.id, draft: expect.objectContaining({ findings: draft.findings }) })]);
    const deliveries = await outbox.deliveriesOfJob(job.id);
    expect(deliveries.map((d) => [d.id, d.eventId, d.state, d.attempts])).toEqual([
      [`${key}:0>fhir`, `${key}:0`, 'pending', 0], [`${key}:0>hl7`, `${key}:0`, 'pending', 0],
    ]);
  });

  it('records nothing, and leaves the job where it was, when the draft event cannot be stored with the move', async () => {
    const { job } = await store.observe({ studyUid: '1.2.2', source: 'qido', stableAfter: Date.now() });
    await store.claim('w1', 60_000);
    await store.transition(job.id, 'w1', 'drafting');
    // The same output twice is a second delivery with the same id: the store refuses it after writing the event.
    await expect(store.transition(job.id, 'w1', 'drafted', { draft }, undefined, { event: drafted('1.2.2_m', job.id), outputs: ['fhir', 'fhir'] })).rejects.toThrow();
    expect((await store.get(job.id))?.state).toBe('drafting');
    expect(await outbox.events('1.2.2_m')).toEqual([]);
    expect(await outbox.deliveriesOfJob(job.id)).toEqual([]);
  });

  it('gives each event the next number and refuses one based on an event that is no longer the latest', async () => {
    const first = await outbox.record(drafted('1.3.1_m'), ['fhir'], -1);
    expect(first.event).toMatchObject({ id: '1.3.1_m:0', seq: 0 });
    const second = await outbox.record(signed('1.3.1_m'), ['fhir'], 0);
    expect(second.event).toMatchObject({ id: '1.3.1_m:1', seq: 1, kind: 'signed' });
    expect(second.deliveries).toEqual([expect.objectContaining({ id: '1.3.1_m:1>fhir', seq: 1, kind: 'signed', state: 'pending' })]);
    for (const after of [-1, 0, 5]) {
      const refused = outbox.record(signed('1.3.1_m', 'job-1', 'Practitioner/r2'), ['fhir'], after);
      await expect(refused).rejects.toBeInstanceOf(StaleEventError);
      await expect(refused).rejects.toMatchObject({ latest: { seq: 1, kind: 'signed' } });
    }
    expect((await outbox.events('1.3.1_m')).map((e) => e.seq)).toEqual([0, 1]);
  });

  it('refuses as stale all but one of several events recorded at the same moment on the same latest event', async () => {
    await outbox.record(drafted('1.3.2_m'), ['fhir'], -1);
    // Connections opened beforehand, so the writers below really overlap on PostgreSQL.
    await Promise.all(Array.from({ length: 8 }, () => outbox.events('1.3.2_m')));
    const results = await Promise.allSettled(['Practitioner/a', 'Practitioner/b', 'Practitioner/c']
      .map((signer) => outbox.record(signed('1.3.2_m', 'job-1', signer), ['fhir'], 0)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(StaleEventError);
    const fresh = await Promise.allSettled([1, 2, 3].map(() => outbox.record(drafted('1.3.3_m'), ['fhir'], -1)));
    expect(fresh.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected', 'rejected']);
    for (const r of fresh) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(StaleEventError);
    expect((await outbox.events('1.3.2_m')).map((e) => e.seq)).toEqual([0, 1]);
  });

  it('holds a later event back from an output while an earlier one to it is pending or dead', async () => {
    await outbox.record(drafted('1.4.1_m'), ['fhir'], -1);
    await outbox.record(signed('1.4.1_m'), ['fhir'], 0);
    expect((await outbox.claim('w1', 60_000))?.id).toBe('1.4.1_m:0>fhir');
    expect(await outbox.claim('w2', 60_000, Date.now() + 1000)).toBeUndefined();
    await outbox.finish('1.4.1_m:0>fhir', 'w1', { kind: 'permanent', reason: 'refused' }, Date.now());
    expect(await claimAll('w2')).toEqual([]);
    expect(await outbox.claimById('1.4.1_m:1>fhir', 'w2', 60_000)).toBeUndefined();
    await outbox.retryDelivery('1.4.1_m:0>fhir');
    expect(await claimAll('w2')).toEqual(['1.4.1_m:0>fhir']);
    await outbox.finish('1.4.1_m:0>fhir', 'w2', { kind: 'delivered', reference: 'DiagnosticReport/1/_history/1' }, Date.now());
    expect(await claimAll('w2')).toEqual(['1.4.1_m:1>fhir']);
  });

  it('does not hold up other outputs or other reports behind a report that is held back', async () => {
    await outbox.record(drafted('1.4.2_m'), ['fhir', 'hl7'], -1);
    await outbox.record(signed('1.4.2_m'), ['fhir', 'hl7'], 0);
    await outbox.record(drafted('1.4.3_m', 'job-2'), ['fhir'], -1);
    await settle('1.4.2_m:0>fhir', { kind: 'permanent', reason: 'refused' });
    expect(await claimAll('w1')).toEqual(['1.4.2_m:0>hl7', '1.4.3_m:0>fhir']);
    await outbox.finish('1.4.2_m:0>hl7', 'w1', { kind: 'delivered', reference: 'ORU^R01/42' }, Date.now());
    expect(await claimAll('w1')).toEqual(['1.4.2_m:1>hl7']);
  });

  it('lets a delivery go once the earlier ones to its output were delivered or cancelled', async () => {
    await outbox.record(drafted('1.4.4_m'), ['fhir'], -1);
    await outbox.record(signed('1.4.4_m'), ['fhir'], 0);
    await outbox.record(signed('1.4.4_m', 'job-1', 'Practitioner/r2'), ['fhir'], 1);
    await outbox.cancel('1.4.4_m:0', 'not wanted');
    expect((await outbox.delivery('1.4.4_m:0>fhir'))).toMatchObject({ state: 'cancelled', lastError: 'not wanted' });
    expect(await claimAll('w1')).toEqual(['1.4.4_m:1>fhir']);
    await outbox.finish('1.4.4_m:1>fhir', 'w1', { kind: 'delivered', reference: 'DiagnosticReport/4/_history/2' }, Date.now());
    expect(await claimAll('w1')).toEqual(['1.4.4_m:2>fhir']);
  });

  it('stores the receiver reference and counts the attempt when a delivery is delivered', async () => {
    await outbox.record(drafted('1.5.1_m'), ['fhir'], -1);
    const done = await settle('1.5.1_m:0>fhir', { kind: 'delivered', reference: 'DiagnosticReport/5/_history/1' });
    expect(done).toMatchObject({ state: 'delivered', reference: 'DiagnosticReport/5/_history/1', attempts: 1, leaseOwner: undefined, leaseUntil: undefined, nextAttemptAt: undefined });
    expect(await claimAll('w1')).toEqual([]);
  });

  it('uses an attempt per retry, waits until the next attempt time, and makes the delivery dead when the budget is spent', async () => {
    await outbox.record(drafted('1.5.2_m'), ['fhir'], -1);
    const id = '1.5.2_m:0>fhir';
    let t = Date.now();
    for (const attempts of [1, 2]) {
      await outbox.claim('w1', 60_000, t);
      const retried = await outbox.finish(id, 'w1', { kind: 'retry', reason: 'HTTP 503' }, t + 50_000);
      expect(retried).toMatchObject({ state: 'pending', attempts, nextAttemptAt: t + 50_000, lastError: 'HTTP 503', leaseOwner: undefined });
      expect(await outbox.claim('w1', 60_000, t + 49_999)).toBeUndefined();
      t += 50_000;
    }
    expect((await outbox.claim('w1', 60_000, t))?.id).toBe(id);
    const dead = await outbox.finish(id, 'w1', { kind: 'retry', reason: 'HTTP 503 again' }, t + 50_000);
    expect(dead).toMatchObject({ state: 'dead', attempts: 3, lastError: 'HTTP 503 again', nextAttemptAt: undefined });
    expect(await outbox.claim('w1', 60_000, t + 10 * 60_000)).toBeUndefined();
  });

  it('waits until the time the receiver gave without using an attempt', async () => {
    await outbox.record(drafted('1.5.3_m'), ['fhir'], -1);
    const until = Date.now() + 30_000;
    const waiting = await settle('1.5.3_m:0>fhir', { kind: 'wait', until, reason: 'HTTP 429' });
    expect(waiting).toMatchObject({ state: 'pending', attempts: 0, nextAttemptAt: until, lastError: 'HTTP 429', leaseOwner: undefined });
    expect(await outbox.claim('w1', 60_000, until - 1)).toBeUndefined();
    expect((await outbox.claim('w1', 60_000, until))?.id).toBe('1.5.3_m:0>fhir');
  });

  it('makes a delivery dead at once for a permanent fault, keeping the reason', async () => {
    await outbox.record(drafted('1.5.4_m'), ['fhir'], -1);
    const dead = await settle('1.5.4_m:0>fhir', { kind: 'permanent', reason: 'HTTP 422: the report has no subject' });
    expect(dead).toMatchObject({ state: 'dead', attempts: 1, lastError: 'HTTP 422: the report has no subject', leaseOwner: undefined });
  });

  it('changes nothing when a worker that does not hold the delivery finishes it, and names a delivery it cannot find', async () => {
    await outbox.record(drafted('1.5.5_m'), ['fhir'], -1);
    await outbox.claim('w1', 60_000);
    const untouched = await outbox.finish('1.5.5_m:0>fhir', 'w2', { kind: 'delivered', reference: 'DiagnosticReport/9' }, Date.now());
    expect(untouched).toMatchObject({ state: 'pending', leaseOwner: 'w1', attempts: 0, reference: undefined });
    await expect(outbox.finish('1.5.5_m:7>fhir', 'w1', { kind: 'retry', reason: 'x' }, Date.now())).rejects.toThrow('delivery 1.5.5_m:7>fhir is not in the outbox');
  });

  it('holds deliveries back until the hold time or their release, and leases the claimed one to its owner', async () => {
    const t = Date.now();
    const { event } = await outbox.record(drafted('1.6.1_m'), ['fhir', 'hl7'], -1, {
      holdUntil: t + 30_000, claimFor: { output: 'fhir', owner: 'request', leaseMs: 120_000 },
    });
    expect(await outbox.delivery('1.6.1_m:0>fhir')).toMatchObject({ leaseOwner: 'request', nextAttemptAt: undefined });
    expect(await outbox.claim('w1', 60_000, t + 29_000)).toBeUndefined();
    expect(await outbox.claimById('1.6.1_m:0>fhir', 'w1', 60_000)).toBeUndefined();
    expect((await outbox.claimById('1.6.1_m:0>fhir', 'request', 60_000))?.leaseOwner).toBe('request');
    await outbox.releaseHeld(event.id);
    expect(await claimAll('w1')).toEqual(['1.6.1_m:0>hl7']);
  });

  it('lets held deliveries go at the hold time without a release', async () => {
    const t = Date.now();
    await outbox.record(drafted('1.6.2_m'), ['fhir', 'hl7'], -1, { holdUntil: t + 30_000, claimFor: { output: 'fhir', owner: 'request', leaseMs: 120_000 } });
    expect(await claimAll('w1', t + 30_000)).toEqual(['1.6.2_m:0>hl7']);
    await outbox.finish('1.6.2_m:0>hl7', 'w1', { kind: 'delivered', reference: 'ORU^R01/3' }, Date.now());
    // The lease taken at record time runs from a moment after `t`.
    expect(await claimAll('w2', t + 125_000)).toEqual(['1.6.2_m:0>fhir']);
  });

  it('does not bring forward, on release, a held delivery that its receiver asked to wait', async () => {
    const t = Date.now();
    const { event } = await outbox.record(drafted('1.6.3_m'), ['fhir', 'hl7'], -1, { holdUntil: t + 30_000, claimFor: { output: 'fhir', owner: 'request', leaseMs: 120_000 } });
    await outbox.finish('1.6.3_m:0>fhir', 'request', { kind: 'wait', until: t + 90_000, reason: 'FHIR server unreachable' }, t);
    await outbox.releaseHeld(event.id);
    expect(await claimAll('w1')).toEqual(['1.6.3_m:0>hl7']);
    expect(await outbox.delivery('1.6.3_m:0>fhir')).toMatchObject({ nextAttemptAt: t + 90_000, attempts: 0 });
  });

  it('takes back an event no output has received, with its deliveries, so the next one takes its number', async () => {
    await outbox.record(drafted('1.7.1_m'), ['fhir'], -1);
    await settle('1.7.1_m:0>fhir', { kind: 'delivered', reference: 'DiagnosticReport/7/_history/1' });
    const { event } = await outbox.record(signed('1.7.1_m'), ['fhir', 'hl7'], 0);
    await outbox.withdraw(event.id);
    expect((await outbox.events('1.7.1_m')).map((e) => e.id)).toEqual(['1.7.1_m:0']);
    expect((await outbox.deliveriesOfJob('job-1')).map((d) => d.id)).toEqual(['1.7.1_m:0>fhir']);
    expect((await outbox.record(signed('1.7.1_m', 'job-1', 'Practitioner/r2'), ['fhir'], 0)).event.seq).toBe(1);
  });

  it('keeps an event some output has received and cancels its other deliveries when it is withdrawn', async () => {
    const { event } = await outbox.record(drafted('1.7.2_m'), ['fhir', 'hl7'], -1);
    await settle('1.7.2_m:0>hl7', { kind: 'delivered', reference: 'ORU^R01/1' });
    await outbox.withdraw(event.id);
    expect((await outbox.events('1.7.2_m')).map((e) => e.id)).toEqual(['1.7.2_m:0']);
    expect((await outbox.deliveriesOfJob('job-1')).map((d) => [d.output, d.state])).toEqual([['fhir', 'cancelled'], ['hl7', 'delivered']]);
  });

  it('requeues only a dead delivery, with a fresh budget', async () => {
    await outbox.record(drafted('1.8.1_m'), ['fhir', 'hl7'], -1);
    await settle('1.8.1_m:0>fhir', { kind: 'permanent', reason: 'refused' });
    const requeued = await outbox.retryDelivery('1.8.1_m:0>fhir');
    expect(requeued).toMatchObject({ state: 'pending', attempts: 0 });
    expect(await claimAll('w1', Date.now() + 1)).toEqual(['1.8.1_m:0>fhir', '1.8.1_m:0>hl7']);
    await outbox.finish('1.8.1_m:0>hl7', 'w1', { kind: 'delivered', reference: 'ORU^R01/2' }, Date.now());
    expect(await outbox.retryDelivery('1.8.1_m:0>hl7')).toMatchObject({ state: 'delivered', attempts: 1 });
    expect(await outbox.retryDelivery('1.8.1_m:0>fhir')).toMatchObject({ state: 'pending', leaseOwner: 'w1' });
    expect(await outbox.retryDelivery('no-such-delivery')).toBeUndefined();
  });

  it('lists, counts and finds deliveries and events by state, job and report', async () => {
    await outbox.record(drafted('1.9.1_a', 'job-9'), ['fhir', 'hl7'], -1);
    await outbox.record(drafted('1.9.1_b', 'job-9'), ['fhir'], -1);
    await outbox.record(signed('1.9.1_a', 'job-9'), ['fhir'], 0);
    await outbox.record(drafted('1.9.2_a', 'job-10'), ['fhir'], -1);
    await settle('1.9.1_a:0>fhir', { kind: 'delivered', reference: 'DiagnosticReport/1' });
    await settle('1.9.1_b:0>fhir', { kind: 'permanent', reason: 'refused' });
    expect((await outbox.eventsOfJob('job-9')).map((e) => e.id)).toEqual(['1.9.1_a:0', '1.9.1_a:1', '1.9.1_b:0']);
    expect((await outbox.deliveriesOfJob('job-9')).map((d) => d.id).sort()).toEqual(['1.9.1_a:0>fhir', '1.9.1_a:0>hl7', '1.9.1_a:1>fhir', '1.9.1_b:0>fhir']);
    expect((await outbox.listDeliveries({ state: 'pending' })).map((d) => d.id).sort()).toEqual(['1.9.1_a:0>hl7', '1.9.1_a:1>fhir', '1.9.2_a:0>fhir']);
    const all = await outbox.listDeliveries({});
    expect(all).toHaveLength(5);
    expect(await outbox.listDeliveries({ limit: 2, offset: 1 })).toEqual(all.slice(1, 3));
    const counts = (await outbox.countDeliveries()).sort((a, b) => `${a.output}${a.state}`.localeCompare(`${b.output}${b.state}`));
    expect(counts).toEqual([
      { output: 'fhir', state: 'dead', count: 1 }, { output: 'fhir', state: 'delivered', count: 1 },
      { output: 'fhir', state: 'pending', count: 2 }, { output: 'hl7', state: 'pending', count: 1 },
    ]);
  });

  it('finds a report by the reference its receiver gave, with or without a version', async () => {
    await outbox.record(drafted('1.10.1_m'), ['fhir'], -1);
    await outbox.record(drafted('1.10.2_m', 'job-2'), ['fhir', 'hl7'], -1);
    await outbox.record(drafted('1.10.3_m', 'job-3'), ['fhir'], -1);
    await settle('1.10.1_m:0>fhir', { kind: 'delivered', reference: 'DiagnosticReport/7/_history/1' });
    await settle('1.10.2_m:0>fhir', { kind: 'delivered', reference: 'DiagnosticReport/8' });
    await settle('1.10.2_m:0>hl7', { kind: 'delivered', reference: 'DiagnosticReport/9' });
    await settle('1.10.3_m:0>fhir', { kind: 'delivered', reference: 'DiagnosticReport/70/_history/3' });
    expect(await outbox.reportKeyByReference('fhir', 'DiagnosticReport/7')).toBe('1.10.1_m');
    expect(await outbox.reportKeyByReference('fhir', 'DiagnosticReport/7/_history/1')).toBe('1.10.1_m');
    expect(await outbox.reportKeyByReference('fhir', 'DiagnosticReport/8')).toBe('1.10.2_m');
    expect(await outbox.reportKeyByReference('fhir', 'DiagnosticReport/70')).toBe('1.10.3_m');
    expect(await outbox.reportKeyByReference('fhir', 'DiagnosticReport/9')).toBeUndefined();
    expect(await outbox.reportKeyByReference('fhir', 'DiagnosticReport/%')).toBeUndefined();
  });

  it('hands each delivery to exactly one of many claimers at once', async () => {
    for (let i = 0; i < 30; i++) await outbox.record(drafted(`1.11.${i}_m`, `job-${i}`), ['fhir'], -1);
    const claimed = (await Promise.all(Array.from({ length: 60 }, (_, i) => outbox.claim(`w${i}`, 60_000)))).flatMap((d) => (d ? [d.id] : []));
    expect(new Set(claimed).size).toBe(claimed.length);
    const rest = await claimAll('late');
    expect([...claimed, ...rest].sort()).toEqual(Array.from({ length: 30 }, (_, i) => `1.11.${i}_m:0>fhir`).sort());
  });

  it('never has a delivery both recorded as delivered by its former holder and claimed by a new one', async () => {
    // Connections opened beforehand, so the finish and the claim below really overlap on PostgreSQL.
    await Promise.all(Array.from({ length: 8 }, () => outbox.events('none')));
    for (let i = 0; i < 25; i++) {
      const key = `1.13.${i}_m`;
      await outbox.record(drafted(key), ['fhir'], -1);
      await outbox.claim('old', 1);
      const [finished, taken] = await Promise.all([
        outbox.finish(`${key}:0>fhir`, 'old', { kind: 'delivered', reference: `DiagnosticReport/${i}` }, Date.now()),
        outbox.claim('new', 60_000, Date.now() + 1000),
      ]);
      expect({ i, both: finished.state === 'delivered' && taken !== undefined }).toEqual({ i, both: false });
    }
  }, 30_000);

  it('frees the deliveries held by a worker that is gone, and only those', async () => {
    for (const key of ['1.12.1_m', '1.12.2_m', '1.12.3_m']) await outbox.record(drafted(key), ['fhir'], -1);
    const gone = 'host:99999999:aa';
    await outbox.claimById('1.12.1_m:0>fhir', gone, 60_000);
    await outbox.claimById('1.12.2_m:0>fhir', gone, 60_000);
    await outbox.claimById('1.12.3_m:0>fhir', 'alive', 60_000);
    expect(await outbox.claim('w1', 60_000)).toBeUndefined();
    expect(await outbox.expireDeliveryLeases((owner) => owner === gone)).toBe(2);
    expect(await claimAll('w1')).toEqual(['1.12.1_m:0>fhir', '1.12.2_m:0>fhir']);
  });
});
