import net from 'node:net';
import tls from 'node:tls';
import { Hl7Message } from '@medplum/core';
import { WaitError } from '../util/faults.js';
import { readAck, type Ack } from './ack.js';
import { MllpDeframer } from './mllp-frames.js';

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

/** A connection and the ACKs read from it that nobody has taken yet. */
interface Connection {
  socket: net.Socket;
  acks: Ack[];
  /** Called when an ACK arrives or the connection ends. */
  wake: (() => void) | undefined;
  ended: Error | undefined;
}

const frame = (text: string) => Buffer.concat([Buffer.from([0x0b]), Buffer.from(text, 'utf8'), Buffer.from([0x1c, 0x0d])]);

/**
 * One MLLP connection to a receiver, kept open between messages and opened again when it closed. Messages go one
 * at a time (a receiver answers in order) and each waits for the ACK that names its control ID. Replies are read
 * through the same bounded deframer as the listener's: @medplum/hl7's Hl7Connection reads a TCP chunk that holds two
 * ACKs (a commit ACK and the application ACK sent together) as one message and loses the second.
 */
export class MllpClient {
  private connection: Connection | undefined;
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

  close(): Promise<void> {
    this.connection?.socket.destroy();
    this.connection = undefined;
    return Promise.resolve();
  }

  private get where(): string {
    return `${this.target.tls ? 'mllps' : 'mllp'}://${this.target.host}:${this.target.port}`;
  }

  private async sendNow(text: string, signal?: AbortSignal): Promise<MllpAnswer> {
    signal?.throwIfAborted();
    const controlId = Hl7Message.parse(text).getSegment('MSH')?.getField(10)?.toString() ?? '';
    const connection = await this.open();
    connection.acks = [];
    connection.socket.write(frame(text));
    const deadline = Date.now() + this.options.ackTimeoutMs;
    let committed: Ack | undefined;
    const onAbort = () => connection.wake?.();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        const ack = connection.acks.shift();
        // An ACK for another control ID is a late answer to an earlier attempt: not this message's.
        if (ack?.controlId === controlId) {
          if (ack.code !== 'CA') return { kind: 'ack', ack };
          committed = ack;
          continue;
        }
        if (ack) continue;
        const why = connection.ended ? `${this.where} closed the connection before it acknowledged the message`
          : signal?.aborted ? `the attempt was stopped while ${this.where} had not answered`
            : Date.now() >= deadline ? `${this.where} did not acknowledge the message within ${Math.round(this.options.ackTimeoutMs / 1000)} s` : undefined;
        if (why) {
          // The receiver may have taken a message whose answer never came: another attempt sends the same control ID.
          await this.close();
          if (committed) return { kind: 'committed', ack: committed };
          throw new MllpReplyError(why);
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, deadline - Date.now());
          connection.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    } finally {
      connection.wake = undefined;
      signal?.removeEventListener('abort', onAbort);
    }
  }

  private async open(): Promise<Connection> {
    const current = this.connection;
    if (current && !current.ended && !current.socket.destroyed) return current;
    const socket = await this.connect();
    const connection: Connection = { socket, acks: [], wake: undefined, ended: undefined };
    const deframer = new MllpDeframer(this.options.maxReplyBytes);
    socket.on('data', (data: Buffer) => {
      for (const event of deframer.push(data)) {
        if (event.kind !== 'frame') {
          socket.destroy(new Error(event.kind === 'oversize' ? `a reply exceeded ${this.options.maxReplyBytes} bytes` : 'the reply is not MLLP-framed'));
          return;
        }
        const ack = parseAck(event.bytes);
        if (ack) connection.acks.push(ack);
      }
      connection.wake?.();
    });
    const end = (err?: Error) => {
      connection.ended ??= err ?? new Error('closed');
      if (this.connection === connection) this.connection = undefined;
      connection.wake?.();
    };
    socket.on('error', end);
    socket.on('close', () => end());
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
}

/** An ACK from a reply's bytes (UTF-8), or undefined for a reply that is not one. */
function parseAck(bytes: Buffer): Ack | undefined {
  try {
    return readAck(Hl7Message.parse(bytes.toString('utf8').replace(/\r?\n/g, '\r')));
  } catch {
    return undefined;
  }
}

function describe(err: unknown): string {
  const e = err as { code?: string; message?: string; outcome?: { issue?: { diagnostics?: string; details?: { text?: string } }[] } };
  const issue = e.outcome?.issue?.[0];
  return e.code ?? issue?.diagnostics ?? issue?.details?.text ?? e.message ?? String(err);
}
