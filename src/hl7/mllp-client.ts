import net from 'node:net';
import tls from 'node:tls';
import { Hl7Message } from '@medplum/core';
import { Hl7Connection, ReturnAckCategory } from '@medplum/hl7';
import { WaitError } from '../util/faults.js';
import { readAck, type Ack } from './ack.js';

/** `mllp://host:port` or `mllps://host:port` (TLS). */
export interface MllpTarget {
  host: string;
  port: number;
  tls: boolean;
}

export interface MllpClientOptions {
  /** How long to wait for the receiver's application ACK once a message is sent. */
  ackTimeoutMs: number;
  connectTimeoutMs: number;
  /** The most a reply may hold before its end; a receiver that sends more is cut off. */
  maxReplyBytes: number;
  /** Extra TLS settings (a private CA); the system's CAs and host name checks apply otherwise. */
  tls?: tls.ConnectionOptions;
}

/** What the receiver answered: its application ACK, or only a commit ACK (CA) before the ACK timeout. */
export type MllpAnswer = { kind: 'ack'; ack: Ack } | { kind: 'committed'; ack: Ack };

/** The receiver took the message but did not answer in time, or closed the connection: worth another attempt. */
export class MllpReplyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MllpReplyError';
  }
}

export function parseMllpUrl(url: string): MllpTarget | undefined {
  const m = /^(mllps?):\/\/(\[[0-9A-Fa-f:.]+\]|[^\s:/[\]]+):(\d{1,5})\/?$/.exec(url.trim());
  if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) return undefined;
  return { tls: m[1] === 'mllps', host: m[2]!.replace(/^\[|\]$/g, ''), port: Number(m[3]) };
}

/**
 * One MLLP connection to a receiver, kept open between messages and opened again when it closed. Messages go one
 * at a time (a receiver answers in order); the MLLP framing and the ACK matching by control ID are @medplum/hl7's
 * Hl7Connection, over a socket raddraft opens (plain TCP or TLS) and bounds.
 */
export class MllpClient {
  private connection: Hl7Connection | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly target: MllpTarget,
    private readonly options: MllpClientOptions,
  ) {}

  /** Sends one message and waits for its ACK; a receiver that cannot be reached throws a WaitError. */
  send(message: string, signal?: AbortSignal): Promise<MllpAnswer> {
    const next = this.queue.then(() => this.sendNow(message, signal));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Opens a connection (TLS handshake included) and closes it: whether the receiver can be reached as configured. */
  async probe(): Promise<void> {
    const socket = await this.connect();
    socket.destroy();
  }

  async close(): Promise<void> {
    const c = this.connection;
    this.connection = undefined;
    await c?.close().catch(() => undefined);
  }

  private get where(): string {
    return `${this.target.tls ? 'mllps' : 'mllp'}://${this.target.host}:${this.target.port}`;
  }

  private async sendNow(text: string, signal?: AbortSignal): Promise<MllpAnswer> {
    signal?.throwIfAborted();
    const message = Hl7Message.parse(text);
    const controlId = message.getSegment('MSH')?.getField(10)?.toString() ?? '';
    const connection = await this.open();
    let committed: Ack | undefined;
    const onMessage = (e: Event) => {
      const ack = readAck((e as Event & { message: Hl7Message }).message);
      if (ack?.code === 'CA' && ack.controlId === controlId) committed = ack;
    };
    const onAbort = () => void this.close();
    connection.addEventListener('message', onMessage);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const closed = new Promise<never>((_, reject) => connection.addEventListener('close', () => reject(new MllpReplyError(`${this.where} closed the connection before it acknowledged the message`)), { once: true }));
      const reply = await Promise.race([connection.sendAndWait(message, { returnAck: ReturnAckCategory.APPLICATION, timeoutMs: this.options.ackTimeoutMs }), closed]);
      const ack = readAck(reply);
      if (!ack) throw new MllpReplyError(`${this.where} answered without an MSA acknowledgement code`);
      return { kind: 'ack', ack };
    } catch (err) {
      // The receiver may have taken a message whose answer never came: another attempt will send the same control ID.
      await this.close();
      if (committed) return { kind: 'committed', ack: committed };
      if (signal?.aborted) throw new MllpReplyError(`the attempt was stopped while ${this.where} had not answered`);
      if (err instanceof MllpReplyError) throw err;
      throw new MllpReplyError(`${this.where} did not acknowledge the message within ${Math.round(this.options.ackTimeoutMs / 1000)} s (${describe(err)})`);
    } finally {
      connection.removeEventListener('message', onMessage);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  private async open(): Promise<Hl7Connection> {
    if (this.connection && !this.connection.isClosed() && !this.connection.socket.destroyed) return this.connection;
    const socket = await this.connect();
    this.guard(socket);
    const connection = new Hl7Connection(socket, 'utf-8');
    // Errors reach the waiting send (as a timeout or a closed connection); the event only needs a listener.
    connection.addEventListener('error', () => undefined);
    connection.addEventListener('close', () => {
      if (this.connection === connection) this.connection = undefined;
    });
    this.connection = connection;
    return connection;
  }

  private connect(): Promise<net.Socket> {
    const { host, port } = this.target;
    return new Promise((resolve, reject) => {
      const socket = this.target.tls
        ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, ...this.options.tls })
        : net.connect({ host, port });
      const ready = this.target.tls ? 'secureConnect' : 'connect';
      const timer = setTimeout(() => fail(new Error(`no connection within ${Math.round(this.options.connectTimeoutMs / 1000)} s`)), this.options.connectTimeoutMs);
      const fail = (err: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(new WaitError(`cannot reach the HL7 receiver at ${this.where} (${describe(err)}); waiting for it`, undefined));
      };
      socket.once('error', fail);
      socket.once(ready, () => {
        clearTimeout(timer);
        socket.off('error', fail);
        socket.setNoDelay(true);
        resolve(socket);
      });
    });
  }

  /** A receiver that sends more than a reply may hold, with no end of block, is cut off. */
  private guard(socket: net.Socket): void {
    let pending = 0;
    socket.on('data', (data: Buffer) => {
      const end = data.lastIndexOf(0x1c);
      pending = end >= 0 ? data.length - end - 1 : pending + data.length;
      if (pending > this.options.maxReplyBytes) socket.destroy(new Error(`the reply exceeded ${this.options.maxReplyBytes} bytes`));
    });
  }
}

function describe(err: unknown): string {
  const e = err as { code?: string; message?: string; outcome?: { issue?: { diagnostics?: string; details?: { text?: string } }[] } };
  const issue = e.outcome?.issue?.[0];
  return e.code ?? issue?.diagnostics ?? issue?.details?.text ?? e.message ?? String(err);
}
