import net from 'node:net';
import type { Hl7Message } from '@medplum/core';
import { ErrorCode } from '../hl7/ack.js';
import { MllpDeframer } from '../hl7/mllp-frames.js';
import { receiveBlock, refuseBlock, type FinalReportDeps } from './hl7-final-reports.js';

export interface Hl7ListenerOptions extends FinalReportDeps {
  port: number;
  host: string;
  maxMessageBytes: number;
  /** A connection that sends nothing for this long (a message begun included) is closed. */
  idleMs: number;
  /** Connections open at once; more are closed as they come. */
  maxConnections?: number;
}

export interface Hl7Listener {
  port: number;
  stop(): Promise<void>;
}

const frame = (ack: Hl7Message): Buffer => Buffer.concat([Buffer.from([0x0b]), Buffer.from(ack.toString(), 'utf8'), Buffer.from([0x1c, 0x0d])]);

/**
 * The MLLP listener for final reports from the RIS. Each connection is read through a bounded deframer, answered one
 * block at a time in order, timed out when idle, and closed when its stream loses its place (bytes outside a block,
 * a block past the size limit) after the sender has been told why.
 */
export function startHl7Listener(options: Hl7ListenerOptions): Promise<Hl7Listener> {
  const { log } = options;
  const sockets = new Set<net.Socket>();
  // Half-open: a sender that ends its side right after a message still gets the ACK before the connection closes.
  const server = net.createServer({ allowHalfOpen: true }, (socket) => serve(socket, options, sockets));
  server.maxConnections = options.maxConnections ?? 32;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      server.on('error', (err) => log.error({ err: err.message }, 'the HL7 listener failed'));
      const port = (server.address() as net.AddressInfo).port;
      log.info({ hl7Port: port }, 'HL7 listener is accepting final reports');
      resolve({
        port,
        stop: () => new Promise<void>((done) => {
          for (const s of sockets) s.destroy();
          server.close(() => done());
        }),
      });
    });
  });
}

function serve(socket: net.Socket, options: Hl7ListenerOptions, sockets: Set<net.Socket>): void {
  const { log } = options;
  const address = socket.remoteAddress ?? '';
  const deframer = new MllpDeframer(options.maxMessageBytes);
  let queue: Promise<void> = Promise.resolve();
  let ending = false;
  sockets.add(socket);
  socket.setTimeout(options.idleMs);
  socket.on('timeout', () => {
    log.info({ address, partial: deframer.partial }, 'closed an idle HL7 connection');
    socket.destroy();
  });
  socket.on('error', (err) => log.debug({ err: err.message, address }, 'HL7 connection error'));
  socket.on('close', () => sockets.delete(socket));
  socket.on('end', () => {
    queue = queue.then(() => {
      socket.end();
    });
  });
  const answer = (work: () => Promise<Hl7Message>, thenClose: boolean) => {
    socket.pause();
    queue = queue.then(async () => {
      const ack = await work().catch((err: unknown) => {
        log.error({ err: (err as Error).message, address }, 'cannot answer an HL7 message');
        return undefined;
      });
      if (ack && !socket.destroyed) socket.write(frame(ack));
      if (thenClose) socket.end();
      else if (!socket.destroyed) socket.resume();
    });
  };
  socket.on('data', (data: Buffer) => {
    if (ending) return;
    for (const event of deframer.push(data)) {
      if (event.kind === 'frame') {
        answer(() => receiveBlock({ bytes: event.bytes, address }, options), false);
        continue;
      }
      // The stream has lost its place: the sender is told why, and the connection ends.
      ending = true;
      const problem = event.kind === 'oversize'
        ? { code: ErrorCode.applicationError, message: `the message is larger than ${options.maxMessageBytes} bytes, the most this listener takes` }
        : { code: ErrorCode.segmentSequence, message: 'bytes outside an MLLP block: each message must be framed as <VT> message <FS><CR>' };
      answer(() => refuseBlock({ bytes: event.kind === 'oversize' ? event.head : event.bytes, address }, options, problem), true);
      return;
    }
  });
}
