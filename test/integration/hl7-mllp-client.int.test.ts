import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MllpClient, MllpReplyError } from '../../src/hl7/mllp-client.js';
import { outcomeOfAnswer } from '../../src/outputs/hl7.js';
import { WaitError } from '../../src/util/faults.js';
import { startHl7Peer, type Hl7Peer } from '../harness/hl7-peer.js';

jest.setTimeout(60_000);

const message = (control: string) => `MSH|^~\\&|RADDRAFT|RAD|RIS|HOSP|20261201090000+0000||ORU^R01^ORU_R01|${control}|P|2.5.1\rPID|1||123\rOBR|1||ACC1|^XR CHEST|||||||||||||||||||||R\rOBX|1|TX|18782-3^Findings^LN|1|Lungs clear.||||||R\r`;

describe('the MLLP client against python3-hl7\'s MLLP server', () => {
  let dir: string;
  let ris: Hl7Peer;
  let client: MllpClient;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'raddraft-mllp-'));
    ris = await startHl7Peer(dir);
    client = new MllpClient({ host: '127.0.0.1', port: ris.port, tls: false }, { ackTimeoutMs: 1500, connectTimeoutMs: 5000, maxReplyBytes: 65536 });
  });

  afterAll(async () => {
    await client?.close();
    await ris?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps one connection for message after message, and waits past a commit ACK (CA) for the application ACK', async () => {
    await ris.answer(['AA']);
    expect(await client.send(message('K-1'))).toMatchObject({ kind: 'ack', ack: { code: 'AA', controlId: 'K-1' } });
    await ris.answer(['CA+AA']);
    expect(await client.send(message('K-2'))).toMatchObject({ kind: 'ack', ack: { code: 'AA', controlId: 'K-2' } });
    const got = ris.received().filter((e) => e.control_id.startsWith('K-'));
    expect(new Set(got.map((e) => e.connection)).size).toBe(1);
  });

  it('counts a commit ACK with no application ACK within the timeout as delivered, noting it', async () => {
    await ris.answer(['CA']);
    const answer = await client.send(message('C-1'));
    expect(answer).toMatchObject({ kind: 'committed', ack: { code: 'CA', controlId: 'C-1' } });
    expect(outcomeOfAnswer(answer, 'C-1')).toEqual({ kind: 'delivered', reference: 'hl7/C-1', note: 'the receiver committed it (CA) and sent no application ACK in time' });
  });

  it('reads AE and CE as worth another attempt, AR and CR as refusals, each with the receiver\'s text', async () => {
    const outcomes = [];
    for (const code of ['AE', 'CE', 'AR', 'CR']) {
      await ris.answer([code], `receiver says ${code}`);
      outcomes.push(outcomeOfAnswer(await client.send(message(`E-${code}`)), `E-${code}`));
    }
    expect(outcomes).toEqual([
      { kind: 'retry', reason: 'the HL7 receiver answered AE (error): receiver says AE' },
      { kind: 'retry', reason: 'the HL7 receiver answered CE (error): receiver says CE' },
      { kind: 'permanent', reason: 'the HL7 receiver answered AR (rejected): receiver says AR' },
      { kind: 'permanent', reason: 'the HL7 receiver answered CR (rejected): receiver says CR' },
    ]);
  });

  it('gives up on an ACK that does not come in time, and opens a new connection for the next attempt', async () => {
    await ris.answer(['none', 'AA']);
    await expect(client.send(message('T-1'))).rejects.toThrow(new MllpReplyError(`mllp://127.0.0.1:${ris.port} did not acknowledge the message within 2 s`));
    expect(await client.send(message('T-1'))).toMatchObject({ kind: 'ack', ack: { code: 'AA' } });
    const copies = ris.received().filter((e) => e.control_id === 'T-1');
    expect(copies.map((e) => e.copy)).toEqual([1, 2]);
    expect(copies[1]!.connection).toBeGreaterThan(copies[0]!.connection);
  });

  it('says a receiver that is not listening cannot be reached (a wait, not an attempt)', async () => {
    const nowhere = new MllpClient({ host: '127.0.0.1', port: 1, tls: false }, { ackTimeoutMs: 1000, connectTimeoutMs: 2000, maxReplyBytes: 1024 });
    const err = await nowhere.send(message('W-1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WaitError);
    expect((err as Error).message).toBe('cannot reach the HL7 receiver at mllp://127.0.0.1:1 (ECONNREFUSED); waiting for it');
  });
});
