import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { freePort, waitFor } from '../../src/demo/ports.js';
import { startDimseScp, type DimseOptions } from '../../src/intake/dimse-scp.js';
import { ReceivedStore, type Received } from '../../src/intake/received-store.js';
import { createLogger } from '../../src/log.js';
import { cloneStudies } from '../harness/dcmtk.js';
import { fixture } from '../harness/peers.js';

jest.setTimeout(60_000);
const run = promisify(execFile);

const AET = 'RADDRAFT';
const GiB = 2 ** 30;
/** The A-ABORT raddraft sends: source 2 (service provider) and the reason. */
const abortWith = (reason: number) => Buffer.from([0x07, 0, 0, 0, 0, 4, 0, 0, 2, reason]);
/** A-ASSOCIATE-RJ: transient, service provider (presentation), local limit exceeded. */
const LIMIT_REJECT = Buffer.from([0x03, 0, 0, 0, 0, 4, 0, 2, 3, 2]);

function pduHeader(type: number, length: number): Buffer {
  const h = Buffer.alloc(6);
  h.writeUInt8(type, 0);
  h.writeUInt32BE(length, 2);
  return h;
}

/** A minimal, well-formed A-ASSOCIATE-RQ proposing Verification (PS3.8 §9.3.2). */
function associateRq(calling: string): Buffer {
  const ae = (t: string) => Buffer.from(t.padEnd(16, ' '), 'ascii');
  const item = (type: number, body: Buffer) => {
    const h = Buffer.alloc(4);
    h.writeUInt8(type, 0);
    h.writeUInt16BE(body.length, 2);
    return Buffer.concat([h, body]);
  };
  const uid = (type: number, value: string) => item(type, Buffer.from(value, 'ascii'));
  const maxLength = Buffer.alloc(4);
  maxLength.writeUInt32BE(16384);
  const body = Buffer.concat([
    Buffer.from([0, 1, 0, 0]), ae(AET), ae(calling), Buffer.alloc(32),
    uid(0x10, '1.2.840.10008.3.1.1.1'),
    item(0x20, Buffer.concat([Buffer.from([1, 0, 0, 0]), uid(0x30, '1.2.840.10008.1.1'), uid(0x40, '1.2.840.10008.1.2')])),
    item(0x50, Buffer.concat([item(0x51, maxLength), uid(0x52, '1.2.826.0.1.3680043.2.1143.107.104.103.115')])),
  ]);
  return Buffer.concat([pduHeader(0x01, body.length), body]);
}

/** A raw TCP peer that records what it is sent and when the connection closes. */
interface RawPeer {
  socket: Socket;
  received(): Buffer;
  /** Milliseconds from connecting until the connection closed. */
  closed: Promise<number>;
}

async function rawPeer(port: number): Promise<RawPeer> {
  const socket = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  // Writes after raddraft closed the connection fail with EPIPE/ECONNRESET; that is the expected outcome.
  socket.on('error', () => undefined);
  const t0 = Date.now();
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - t0)));
  await once(socket, 'connect');
  return { socket, received: () => Buffer.concat(chunks), closed };
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the C-STORE SCP facing hostile peers', () => {
  let dir: string;
  let stop: (() => void) | undefined;
  let lines: string[];
  let refusals: string[];
  let filed: Received[];

  async function startScp(limits: Partial<Pick<DimseOptions, 'maxPduBytes' | 'idleSeconds' | 'maxAssociations'>> = {}, maxInstanceBytes?: number): Promise<number> {
    dir = await mkdtemp(path.join(tmpdir(), 'raddraft-dimse-'));
    lines = [];
    refusals = [];
    filed = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const port = await freePort();
    const scp = startDimseScp({
      port, aet: AET, peers: new Set(['STORESCU', 'MODALITY1']),
      received: new ReceivedStore(dir, 0, maxInstanceBytes),
      onInstance: (r) => {
        filed.push(r);
        return Promise.resolve();
      },
      onRefused: (why) => refusals.push(why),
      log: createLogger({ destination, level: 'info' }),
      maxPduBytes: 16384, idleSeconds: 30, maxAssociations: 4,
      ...limits,
    });
    stop = () => scp.stop();
    await waitFor('the C-STORE SCP to listen', async () => {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      const ok = await Promise.race([once(s, 'connect').then(() => true), once(s, 'error').then(() => false)]);
      s.destroy();
      return ok;
    }, 10_000);
    // The probe itself is a connection; let the SCP see it close before a test counts connections.
    await pause(100);
    return port;
  }

  afterEach(async () => {
    stop?.();
    stop = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it('aborts an association request announcing 1 GiB at its header, and keeps none of what the sender trickles after it', async () => {
    const port = await startScp();
    const rssBefore = process.memoryUsage().rss;
    const peer = await rawPeer(port);
    peer.socket.write(pduHeader(0x01, GiB));
    let sent = 0;
    let open = true;
    void peer.closed.then(() => (open = false));
    const chunk = Buffer.alloc(256 * 1024, 0x41);
    // Up to ~37 MiB over 3 s, unless raddraft cuts the connection first.
    for (let i = 0; i < 150 && open; i++) {
      if (peer.socket.write(chunk)) sent += chunk.length;
      await pause(20);
    }
    const closedAfter = await within(peer.closed, 10_000, 'raddraft to close the connection');
    const rssGrowth = process.memoryUsage().rss - rssBefore;
    console.info(`1 GiB A-ASSOCIATE-RQ header: closed after ${closedAfter} ms, ${sent} bytes written by the peer, RSS growth ${(rssGrowth / 2 ** 20).toFixed(1)} MiB`);
    expect(peer.received()).toEqual(abortWith(6));
    expect(rssGrowth).toBeLessThan(16 * 2 ** 20);
    expect(lines.join('')).toContain('PDU 1, A-ASSOCIATE-RQ (type 0x01) announces 1073741824 bytes, more than the 65536 allowed for an association request; association aborted');
  });

  it('aborts an accepted association whose P-DATA-TF header announces more than the maximum PDU length raddraft announced', async () => {
    const port = await startScp({ maxPduBytes: 16384 });
    const peer = await rawPeer(port);
    peer.socket.write(associateRq('MODALITY1'));
    await within(waitFor('the A-ASSOCIATE-AC', () => Promise.resolve(peer.received().length >= 6), 10_000), 11_000, 'the A-ASSOCIATE-AC');
    expect(peer.received()[0]).toBe(0x02);
    const accepted = peer.received().length;
    peer.socket.write(pduHeader(0x04, GiB));
    peer.socket.write(Buffer.alloc(64 * 1024));
    await within(peer.closed, 10_000, 'raddraft to close the connection');
    expect(peer.received().subarray(accepted)).toEqual(abortWith(6));
    expect(lines.join('')).toContain('PDU 2, P-DATA-TF (type 0x04) announces 1073741824 bytes, more than the 16384 allowed for the maximum PDU length raddraft announced (RADDRAFT_DIMSE_MAX_PDU_BYTES); association aborted');
    expect(refusals).toHaveLength(1);
  });

  it('aborts an association whose command set grows past 64 KiB over many PDUs, or whose PDV item overruns its PDU', async () => {
    const port = await startScp({ maxPduBytes: 16384 });
    const pdata = (value: Buffer, control: number, itemLength = value.length + 2) => {
      const item = Buffer.alloc(6);
      item.writeUInt32BE(itemLength, 0);
      item.writeUInt8(1, 4);
      item.writeUInt8(control, 5);
      return Buffer.concat([pduHeader(0x04, 6 + value.length), item, value]);
    };
    const associate = async () => {
      const peer = await rawPeer(port);
      peer.socket.write(associateRq('MODALITY1'));
      await within(waitFor('the A-ASSOCIATE-AC', () => Promise.resolve(peer.received().length >= 6), 10_000), 11_000, 'the A-ASSOCIATE-AC');
      expect(peer.received()[0]).toBe(0x02);
      return { peer, accepted: peer.received().length };
    };

    const endless = await associate();
    // Command fragments (bit 0 set, bit 1 "last" never set), each PDU well within the maximum.
    for (let i = 0; i < 12 && !endless.peer.socket.destroyed; i++) endless.peer.socket.write(pdata(Buffer.alloc(8000), 0x01));
    await within(endless.peer.closed, 10_000, 'raddraft to close the connection');
    expect(endless.peer.received().subarray(endless.accepted)).toEqual(abortWith(6));
    expect(lines.join('')).toContain('PDU 10, P-DATA-TF: a command set is longer than the 65536 bytes raddraft reads; association aborted');

    const overrun = await associate();
    overrun.peer.socket.write(pdata(Buffer.alloc(100), 0x03, 5000));
    await within(overrun.peer.closed, 10_000, 'raddraft to close the connection');
    expect(overrun.peer.received().subarray(overrun.accepted)).toEqual(abortWith(6));
    expect(lines.join('')).toContain('PDU 2, P-DATA-TF: a PDV item announces 5000 bytes, which does not fit its P-DATA-TF PDU; association aborted');
  });

  it('aborts a connection whose first PDU is of no DICOM type, or is data before any association', async () => {
    const port = await startScp();
    const junk = await rawPeer(port);
    junk.socket.write(Buffer.from('GET / HTTP/1.1\r\nHost: raddraft\r\n\r\n'));
    await within(junk.closed, 10_000, 'raddraft to close the connection');
    expect(junk.received()).toEqual(abortWith(1));
    expect(lines.join('')).toContain('PDU 1 has type 0x47, which is not a DICOM PDU type; association aborted');

    const early = await rawPeer(port);
    early.socket.write(Buffer.concat([pduHeader(0x04, 4), Buffer.alloc(4)]));
    await within(early.closed, 10_000, 'raddraft to close the connection');
    expect(early.received()).toEqual(abortWith(2));
    expect(lines.join('')).toContain('PDU 1, P-DATA-TF (type 0x04) came before an A-ASSOCIATE-RQ; association aborted');
  });

  it('closes a connection that sends nothing, and an association that goes silent, after the idle time', async () => {
    const port = await startScp({ idleSeconds: 2 });
    const silent = await rawPeer(port);
    const associated = await rawPeer(port);
    associated.socket.write(associateRq('MODALITY1'));
    const silentMs = await within(silent.closed, 15_000, 'raddraft to close the silent connection');
    const associatedMs = await within(associated.closed, 15_000, 'raddraft to close the silent association');
    console.info(`idle timeout 2 s: silent connection closed after ${silentMs} ms, silent association after ${associatedMs} ms`);
    expect(silent.received()).toEqual(abortWith(0));
    expect(associated.received()[0]).toBe(0x02);
    const text = lines.join('');
    expect(text).toContain('no A-ASSOCIATE-RQ within 2 s of connecting (ARTIM) (RADDRAFT_DIMSE_IDLE_SECONDS); connection closed');
    expect(text).toContain('no PDU completed for 2 s (RADDRAFT_DIMSE_IDLE_SECONDS); connection closed');
  });

  it('rejects associations beyond the limit as local limit exceeded, and accepts again once one closes', async () => {
    const port = await startScp({ maxAssociations: 2 });
    const held = [await rawPeer(port), await rawPeer(port)];
    const extra = await rawPeer(port);
    extra.socket.write(associateRq('MODALITY1'));
    await within(extra.closed, 10_000, 'raddraft to close the connection over the limit');
    expect(extra.received()).toEqual(LIMIT_REJECT);

    const file = fixture('chest-ap-mono1').files[0]!;
    const refused = await run('storescu', ['-aet', 'STORESCU', '-aec', AET, '127.0.0.1', String(port), file]).then(() => undefined, (e: unknown) => e as { stdout: string; stderr: string });
    expect(`${refused?.stdout}${refused?.stderr}`).toContain('Local Limit Exceeded');
    expect(lines.join('')).toContain('2 associations are open already (RADDRAFT_DIMSE_MAX_ASSOCIATIONS); rejected as local limit exceeded');

    held[0]!.socket.destroy();
    await within(held[0]!.closed, 5_000, 'the held connection to close');
    await pause(200);
    const clones = await cloneStudies(file, 1, dir);
    await within(run('storescu', ['-aet', 'STORESCU', '-aec', AET, '127.0.0.1', String(port), clones[0]!.file]), 30_000, 'storescu');
    expect(filed.map((r) => r.studyUid)).toEqual([clones[0]!.studyUid]);
    held[1]!.socket.destroy();
  });

  it('stores an instance sent by DCMTK storescu from an allowed AE title, in PDUs within the smallest maximum raddraft announces', async () => {
    const port = await startScp({ maxPduBytes: 4096 });
    const [study] = await cloneStudies(fixture('chest-ap-mono1').files[0]!, 1, dir);
    // storescu proposes 131072 for what it receives; what it sends must still keep to raddraft's 4096.
    const { stdout, stderr } = await within(run('storescu', ['-v', '-pdu', '131072', '-aet', 'STORESCU', '-aec', AET, '127.0.0.1', String(port), study!.file]), 30_000, 'storescu');
    expect(`${stdout}${stderr}`).toContain('Received Store Response (Success)');
    expect(filed.map((r) => r.studyUid)).toEqual([study!.studyUid]);
    expect(refusals).toEqual([]);
    expect(await readdir(path.join(dir, 'received'))).toContain(study!.studyUid);
  });

  it('stops writing an instance to disk once it passes the instance size limit, and answers the C-STORE with Out of Resources', async () => {
    const limit = 2 ** 20;
    const port = await startScp({}, limit);
    const spool = path.join(dir, 'received', '.spool');
    let largest = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const names = await readdir(spool).catch(() => [] as string[]);
        for (const name of names) largest = Math.max(largest, (await stat(path.join(spool, name)).catch(() => ({ size: 0 }))).size);
        await pause(2);
      }
    })();
    // A 12 MiB radiograph.
    const file = fixture('chest-ap-mono1').files[0]!;
    const { stdout, stderr } = await within(run('storescu', ['-v', '-aet', 'STORESCU', '-aec', AET, '127.0.0.1', String(port), file]).catch((e: unknown) => e as { stdout: string; stderr: string }), 50_000, 'storescu')
      .finally(() => (sampling = false));
    await sampler;
    console.info(`instance limit 1 MiB, 12 MiB sent: largest spool file seen ${largest} bytes`);
    expect(`${stdout}${stderr}`).toContain('Received Store Response (Refused: OutOfResources)');
    expect(largest).toBeLessThanOrEqual(limit + 64 * 1024);
    expect(await readdir(spool)).toEqual([]);
    expect(filed).toEqual([]);
    expect(refusals).toEqual([expect.stringMatching(/^C-STORE from STORESCU, instance [\d.]+ is larger than the 1 MiB raddraft accepts for one instance \(RADDRAFT_MAX_INSTANCE_MB\); it was not kept$/)]);
  });
});
