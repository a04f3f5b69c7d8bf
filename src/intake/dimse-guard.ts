import type { Socket } from 'node:net';
import type { Logger } from '../log.js';
import { PdvMeter } from './dimse-pdv.js';

/** PDU types of the DICOM upper layer (PS3.8 §9.3). */
export const PduType = {
  associateRq: 0x01,
  associateAc: 0x02,
  associateRj: 0x03,
  pData: 0x04,
  releaseRq: 0x05,
  releaseRp: 0x06,
  abort: 0x07,
} as const;

const PDU_NAMES: Record<number, string> = {
  [PduType.associateRq]: 'A-ASSOCIATE-RQ',
  [PduType.associateAc]: 'A-ASSOCIATE-AC',
  [PduType.associateRj]: 'A-ASSOCIATE-RJ',
  [PduType.pData]: 'P-DATA-TF',
  [PduType.releaseRq]: 'A-RELEASE-RQ',
  [PduType.releaseRp]: 'A-RELEASE-RP',
  [PduType.abort]: 'A-ABORT',
};

/** A-ABORT reasons when the service provider aborts (PS3.8 §9.3.8). */
export const AbortReason = { notSpecified: 0, unrecognizedPdu: 1, unexpectedPdu: 2, invalidParameterValue: 6 } as const;

/**
 * An A-ASSOCIATE-RQ carries AE titles, a few dozen presentation contexts and user information: a few KiB. 64 KiB
 * leaves room for hundreds of contexts while keeping what an unauthenticated peer can make raddraft hold small.
 */
export const MAX_ASSOCIATE_RQ_BYTES = 64 * 1024;
/** A-RELEASE and A-ABORT carry 4 bytes; anything much larger is not one. */
const MAX_CONTROL_PDU_BYTES = 1024;
const HEADER_BYTES = 6;

export class PduViolation extends Error {
  constructor(
    message: string,
    readonly reason: number,
  ) {
    super(message);
    this.name = 'PduViolation';
  }
}

const hex = (type: number) => `0x${type.toString(16).padStart(2, '0')}`;
const named = (type: number) => `${PDU_NAMES[type] ?? 'unknown'} (type ${hex(type)})`;

/**
 * Follows the PDU framing of one DICOM connection as its bytes arrive, keeping none of them but the 6-byte header
 * of the PDU in progress. Every header is judged before the library behind it buffers a byte of the PDU: its type
 * must be one a requestor may send at that point, and its announced length within what raddraft agreed to take.
 * Inside P-DATA-TF, what the library would gather in memory across PDUs is measured too (see PdvMeter).
 */
export class PduFramer {
  private readonly header = Buffer.alloc(HEADER_BYTES);
  private headerFill = 0;
  private remaining = 0;
  private inBody = false;
  private requested = false;
  /** The max PDU length raddraft announced in its A-ASSOCIATE-AC; 0 until it accepted the association. */
  private maxPData = 0;
  /** PDUs begun, for messages that say where the fault is. */
  private count = 0;
  private type = 0;
  private readonly pdv = new PdvMeter();

  /** Whether the A-ASSOCIATE-RQ has begun to arrive. */
  hasRequest(): boolean {
    return this.requested;
  }

  /** The association is accepted; P-DATA-TF may now come, each at most `maxPduLength` long. */
  accepted(maxPduLength: number): void {
    this.maxPData = maxPduLength;
  }

  /** Reads a chunk's framing; returns how many PDUs it completed, or throws a PduViolation. */
  feed(chunk: Buffer): number {
    let offset = 0;
    let completed = 0;
    while (offset < chunk.length) {
      if (!this.inBody) {
        const take = Math.min(HEADER_BYTES - this.headerFill, chunk.length - offset);
        chunk.copy(this.header, this.headerFill, offset, offset + take);
        this.headerFill += take;
        offset += take;
        if (this.headerFill < HEADER_BYTES) break;
        this.headerFill = 0;
        this.type = this.header.readUInt8(0);
        this.remaining = this.check(this.type, this.header.readUInt32BE(2));
        if (this.type === PduType.pData) this.pdv.startPdu(this.remaining);
        this.inBody = this.remaining > 0;
        if (!this.inBody) completed += this.ended();
        continue;
      }
      const take = Math.min(this.remaining, chunk.length - offset);
      if (this.type === PduType.pData) this.pdvFault(this.pdv.feed(chunk.subarray(offset, offset + take)));
      this.remaining -= take;
      offset += take;
      if (this.remaining === 0) {
        this.inBody = false;
        completed += this.ended();
      }
    }
    return completed;
  }

  /** A PDU is complete; counts 1. */
  private ended(): number {
    if (this.type === PduType.pData) this.pdvFault(this.pdv.endPdu());
    return 1;
  }

  private pdvFault(fault: string | undefined): void {
    if (fault) throw new PduViolation(`PDU ${this.count}, P-DATA-TF: ${fault}`, AbortReason.invalidParameterValue);
  }

  /** Judges one PDU header; returns its length. */
  private check(type: number, length: number): number {
    this.count += 1;
    const where = `PDU ${this.count}, ${named(type)}`;
    if (!(type in PDU_NAMES)) throw new PduViolation(`PDU ${this.count} has type ${hex(type)}, which is not a DICOM PDU type`, AbortReason.unrecognizedPdu);
    if (type === PduType.abort) return this.bounded(where, length, MAX_CONTROL_PDU_BYTES, 'an A-ABORT');
    if (!this.requested) {
      if (type !== PduType.associateRq) throw new PduViolation(`${where} came before an A-ASSOCIATE-RQ`, AbortReason.unexpectedPdu);
      this.requested = true;
      return this.bounded(where, length, MAX_ASSOCIATE_RQ_BYTES, 'an association request');
    }
    switch (type) {
      case PduType.pData:
        if (this.maxPData === 0) throw new PduViolation(`${where} came before the association was accepted`, AbortReason.unexpectedPdu);
        return this.bounded(where, length, this.maxPData, 'the maximum PDU length raddraft announced (RADDRAFT_DIMSE_MAX_PDU_BYTES)');
      case PduType.releaseRq:
        return this.bounded(where, length, MAX_CONTROL_PDU_BYTES, 'an A-RELEASE-RQ');
      default:
        throw new PduViolation(`${where} is not one a calling AE may send to raddraft at this point`, AbortReason.unexpectedPdu);
    }
  }

  private bounded(where: string, length: number, max: number, what: string): number {
    if (length > max) throw new PduViolation(`${where} announces ${length} bytes, more than the ${max} allowed for ${what}`, AbortReason.invalidParameterValue);
    return length;
  }
}

/** A-ABORT from the service provider (source 2) with `reason`. */
export function abortPdu(reason: number): Buffer {
  return Buffer.from([PduType.abort, 0, 0, 0, 0, 4, 0, 0, 2, reason]);
}

/** A-ASSOCIATE-RJ: rejected-transient (2), service-provider presentation related (3), local-limit-exceeded (2). */
export function limitRejectPdu(): Buffer {
  return Buffer.from([PduType.associateRj, 0, 0, 0, 0, 4, 0, 2, 3, 2]);
}

export interface GuardOptions {
  socket: Socket;
  /** How long raddraft waits for the peer to complete a PDU (ARTIM for the association request, idle afterwards). */
  idleMs: number;
  /** Where the connection comes from, for messages (an address, never anything about a patient). */
  peer: string;
  log: Logger;
  onRefused: (why: string) => void;
}

/**
 * One guarded DICOM connection. The library's data listeners are moved behind the framer, so a chunk reaches them
 * only once its headers have been judged; a fault aborts the association (A-ABORT) and closes the socket. A timer
 * runs whenever raddraft is waiting for the peer — from the connection until the A-ASSOCIATE-RQ is in (DICOM's
 * ARTIM), and between PDUs afterwards — and closes the connection when no PDU completes in time. It is held while
 * raddraft itself is working on a request, so a slow disk never counts against the peer.
 */
export class ConnectionGuard {
  readonly framer = new PduFramer();
  private timer: NodeJS.Timeout | undefined;
  private holds = 0;
  private closed = false;

  constructor(private readonly options: GuardOptions) {
    options.socket.once('close', () => {
      this.closed = true;
      this.clearTimer();
    });
  }

  /**
   * Puts the framer in front of the data listeners registered so far (the library's, added by its constructor).
   * Fails loudly if there are none, since the guard would then be guarding nothing.
   */
  interpose(): void {
    const { socket } = this.options;
    const behind = socket.listeners('data') as ((chunk: Buffer) => void)[];
    if (behind.length === 0) throw new Error('the DICOM library registered no data listener on the socket; the PDU guard cannot be put in front of it');
    socket.removeAllListeners('data');
    socket.on('data', (chunk: Buffer) => {
      if (this.closed) return;
      let completed: number;
      try {
        completed = this.framer.feed(chunk);
      } catch (err) {
        if (!(err instanceof PduViolation)) throw err;
        this.abort(`${err.message}; association aborted`, err.reason);
        return;
      }
      if (completed > 0) this.restart();
      for (const listener of behind) listener.call(socket, chunk);
    });
    this.restart();
  }

  /** Stops the timer while raddraft works; the returned function starts it again. */
  hold(): () => void {
    this.holds += 1;
    this.clearTimer();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds -= 1;
      this.restart();
    };
  }

  /**
   * Sends an A-ABORT and closes raddraft's side. What the peer still sends is read and dropped for a second at most:
   * destroying the socket while its data arrives would answer with a reset, which can discard the A-ABORT before
   * the peer has read it.
   */
  abort(why: string, reason: number): void {
    if (this.closed) return;
    this.closed = true;
    this.clearTimer();
    const { socket, log, peer } = this.options;
    log.warn({ peer }, `DICOM connection from ${peer}: ${why}`);
    this.options.onRefused(why);
    socket.end(abortPdu(reason));
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  private restart(): void {
    this.clearTimer();
    if (this.closed || this.holds > 0) return;
    this.timer = setTimeout(() => {
      const seconds = this.options.idleMs / 1000;
      const what = this.framer.hasRequest() ? `no PDU completed for ${seconds} s` : `no A-ASSOCIATE-RQ within ${seconds} s of connecting (ARTIM)`;
      this.abort(`${what} (RADDRAFT_DIMSE_IDLE_SECONDS); connection closed`, AbortReason.notSpecified);
    }, this.options.idleMs);
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/**
 * Turns away a connection over the association limit with an A-ASSOCIATE-RJ (transient, local limit exceeded), so
 * the sender's log says why and it tries again later. The socket stays readable until the sender has closed it or
 * a second has passed: closing while its A-ASSOCIATE-RQ is still arriving would reset the connection and could
 * lose the rejection.
 */
export function refuseOverLimit(socket: Socket): void {
  socket.on('data', () => undefined);
  socket.on('error', () => undefined);
  socket.end(limitRejectPdu());
  setTimeout(() => socket.destroy(), 1000).unref();
}
