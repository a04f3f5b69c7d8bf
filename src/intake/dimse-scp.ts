import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import dimse from 'dcmjs-dimse';
import type { association as Assoc, requests as Requests, responses as Responses, Dataset as DatasetType } from 'dcmjs-dimse';
import dcmjs from 'dcmjs';
import type { Logger } from '../log.js';
import { AbortReason, ConnectionGuard, refuseOverLimit } from './dimse-guard.js';
import { FailureCode, ReceiveError, type Received, type ReceivedStore } from './received-store.js';

const { Scp, Dataset, constants, responses } = dimse;
const { PresentationContextResult, RejectResult, RejectSource, RejectReason, Status, TransferSyntax } = constants;

const VERIFICATION = '1.2.840.10008.1.1';
const STORAGE_PREFIX = '1.2.840.10008.5.1.4.1.1.';
/** Preferred when offered: the syntaxes raddraft decodes itself, then whatever the sender proposed first. */
const PREFERRED = [TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ImplicitVRLittleEndian];

export interface DimseOptions {
  port: number;
  aet: string;
  /** Calling AE titles allowed to send, or '*' for any. */
  peers: Set<string> | '*';
  received: ReceivedStore;
  /** Called for every instance filed; the returned promise settles before the C-STORE response is sent. */
  onInstance: (received: Received) => Promise<void>;
  onRefused: (reason: string) => void;
  log: Logger;
  /** Largest PDU a sender may send, announced in the A-ASSOCIATE-AC (never more than the sender proposed). */
  maxPduBytes: number;
  /** ARTIM and idle timeout: how long raddraft waits for a sender to complete a PDU. */
  idleSeconds: number;
  /** Associations open at once; more are rejected as "local limit exceeded". */
  maxAssociations: number;
}

/** Part 10 preamble and meta header for a dataset about to arrive in `transferSyntaxUid`. */
function part10Header(sopClassUid: string, sopInstanceUid: string, transferSyntaxUid: string): Buffer {
  const meta = dcmjs.data.DicomMetaDictionary.denaturalizeDataset({
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: sopClassUid,
    MediaStorageSOPInstanceUID: sopInstanceUid,
    TransferSyntaxUID: transferSyntaxUid,
    ImplementationClassUID: '2.25.80302813137786398554742050926734630921',
    ImplementationVersionName: 'RADDRAFT',
  });
  return Buffer.from(new dcmjs.data.DicomDict(meta).write());
}

/** How often free space is looked at again while an instance streams in. */
const RESERVE_CHECK_BYTES = 4 * 2 ** 20;

/**
 * What the library streams one C-STORE dataset into: a spool file, refused as soon as the instance passes
 * RADDRAFT_MAX_INSTANCE_MB or free space falls below the reserve (looked at every few MiB), so a sender cannot fill
 * the disk before the size is known. It never emits 'error' (the library listens for none, so one would end the
 * process): a failure is kept, the partial file removed, the rest of the dataset dropped, and the C-STORE response
 * carries the failure's status.
 */
class SpoolWritable extends Writable {
  failure: Error | undefined;
  private out: WriteStream | undefined;
  private path: string | undefined;
  private written = 0;
  private sinceCheck = 0;
  private ended = false;

  constructor(
    private readonly received: ReceivedStore,
    private readonly label: string,
    private readonly header: Buffer,
  ) {
    super();
  }

  /** The spooled file, once the dataset is complete and nothing failed. */
  get file(): string | undefined {
    return this.ended && !this.failure ? this.path : undefined;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    void this.step(() => this.put(chunk)).then(done);
  }

  override _final(done: () => void): void {
    void this.step(async () => {
      const out = await this.open();
      out.end();
      await once(out, 'finish');
      this.ended = true;
    }).then(done);
  }

  /** Gives the instance up (its connection closed, or it failed): the partial file is removed. */
  discard(reason: Error = new Error(`${this.label}: the dataset was not complete`)): void {
    this.failure ??= reason;
    this.out?.destroy();
    if (this.path) void rm(this.path, { force: true });
  }

  private async step(work: () => Promise<void>): Promise<void> {
    if (this.failure) return;
    try {
      await work();
    } catch (err) {
      this.discard(err as Error);
    }
  }

  private async open(): Promise<WriteStream> {
    if (this.out) return this.out;
    this.path = await this.received.spoolFile();
    // The connection may have closed while the spool was being checked.
    if (this.failure) throw this.failure;
    const out = createWriteStream(this.path);
    out.on('error', (err) => this.discard(err));
    this.out = out;
    await this.writeTo(out, this.header);
    return out;
  }

  private async put(chunk: Buffer): Promise<void> {
    const out = await this.open();
    this.written += chunk.length;
    this.sinceCheck += chunk.length;
    if (this.written > this.received.maxInstanceBytes) {
      throw new ReceiveError(
        `${this.label} is larger than the ${Math.round(this.received.maxInstanceBytes / 2 ** 20)} MiB raddraft accepts for one instance (RADDRAFT_MAX_INSTANCE_MB); it was not kept`,
        FailureCode.outOfResources,
        true,
      );
    }
    if (this.sinceCheck >= RESERVE_CHECK_BYTES) {
      this.sinceCheck = 0;
      // spoolFile() checks the reserve and throws the store's "disk too full" error; its new path is not used.
      await this.received.spoolFile();
    }
    await this.writeTo(out, chunk);
  }

  private async writeTo(out: WriteStream, chunk: Buffer): Promise<void> {
    if (!out.write(chunk)) await once(out, 'drain');
  }
}

/**
 * The DICOM C-STORE SCP (dcmjs-dimse). Associations are accepted only for raddraft's AE title and from allowed
 * calling AE titles, and refused while the disk is too full. Each instance streams straight to a spool file as a
 * Part 10 file, is checked and filed by the received store, and only then answered with Success.
 */
export function startDimseScp(options: DimseOptions): { stop(): void } {
  const { received, log } = options;

  // raddraft's own timer (the connection guard) governs; the library's stay only as a far backstop.
  const libraryTimeoutMs = options.idleSeconds * 1000 * 10;

  class RaddraftScp extends Scp {
    private calling = '';
    private readonly files = new Map<string, SpoolWritable>();

    constructor(
      socket: Socket,
      private readonly guard: ConnectionGuard,
    ) {
      super(socket, { connectTimeout: libraryTimeoutMs, associationTimeout: libraryTimeoutMs, pduTimeout: libraryTimeoutMs });
    }

    override associationRequested(association: Assoc.Association): void {
      const release = this.guard.hold();
      void this.decide(association)
        .catch((err: unknown) => this.guard.abort(`the association request could not be answered (${(err as Error).message})`, AbortReason.notSpecified))
        .finally(release);
    }

    private async decide(association: Assoc.Association): Promise<void> {
      const called = association.getCalledAeTitle().trim();
      this.calling = association.getCallingAeTitle().trim();
      const refuse = (reason: number, why: string, result = RejectResult.Permanent, source = RejectSource.ServiceUser) => {
        log.warn({ calling: this.calling, called }, `C-STORE association refused: ${why}`);
        options.onRefused(why);
        this.sendAssociationReject(result, source, reason);
      };
      if (called !== options.aet) return refuse(RejectReason.CalledAeNotRecognized, `called AE title ${called} is not raddraft's (${options.aet})`);
      if (options.peers !== '*' && !options.peers.has(this.calling)) {
        return refuse(RejectReason.CallingAeNotRecognized, `calling AE title ${this.calling} is not in RADDRAFT_DIMSE_PEERS`);
      }
      try {
        await rm(await received.spoolFile(), { force: true });
      } catch (err) {
        return refuse(RejectReason.LocalLimitExceeded, (err as Error).message, RejectResult.Transient, RejectSource.ServiceProviderPresentation);
      }
      for (const { id } of association.getPresentationContexts()) {
        const context = association.getPresentationContext(id);
        const abstract = context.getAbstractSyntaxUid();
        const offered = context.getTransferSyntaxUids();
        if (abstract === VERIFICATION || abstract.startsWith(STORAGE_PREFIX)) {
          const chosen = PREFERRED.find((ts) => offered.includes(ts)) ?? offered[0];
          context.setResult(PresentationContextResult.Accept, chosen);
        } else {
          context.setResult(PresentationContextResult.RejectAbstractSyntaxNotSupported);
        }
      }
      // A proposal of 0 means "no limit" for what the sender receives; what it sends raddraft is always bounded.
      const proposed = association.getMaxPduLength();
      association.setMaxPduLength(proposed === 0 ? options.maxPduBytes : Math.min(proposed, options.maxPduBytes));
      this.sendAssociationAccept();
      this.guard.framer.accepted(association.getMaxPduLength());
    }

    override cEchoRequest(request: Requests.CEchoRequest, callback: (response: Responses.CEchoResponse) => void): void {
      const response = responses.CEchoResponse.fromRequest(request);
      response.setStatus(Status.Success);
      callback(response);
    }

    override createStoreWritableStream(context: Assoc.PresentationContext, request: Requests.CStoreRequest): Writable {
      const sop = request.getAffectedSopInstanceUid();
      const header = part10Header(request.getAffectedSopClassUid(), sop, context.getAcceptedTransferSyntaxUid() ?? TransferSyntax.ImplicitVRLittleEndian);
      const out = new SpoolWritable(received, `C-STORE from ${this.calling}, instance ${sop}`, header);
      this.files.get(sop)?.discard();
      this.files.set(sop, out);
      return out;
    }

    override createDatasetFromStoreWritableStream(writable: Writable, context: Assoc.PresentationContext, callback: (dataset: DatasetType) => void): void {
      // The instance is on disk; the pipeline reads it from there, so no dataset is built in memory. The writer is
      // already ended by the library; a failure while writing is answered in cStoreRequest.
      let called = false;
      const done = () => {
        if (called) return;
        called = true;
        callback(new Dataset({}, context.getAcceptedTransferSyntaxUid()));
      };
      writable.once('finish', done);
      writable.once('error', done);
    }

    override cStoreRequest(request: Requests.CStoreRequest, callback: (response: Responses.CStoreResponse) => void): void {
      const response = responses.CStoreResponse.fromRequest(request);
      const sop = request.getAffectedSopInstanceUid();
      const spooled = this.files.get(sop);
      this.files.delete(sop);
      const label = `C-STORE from ${this.calling}, instance ${sop}`;
      const release = this.guard.hold();
      void (async () => {
        try {
          if (spooled?.failure) throw spooled.failure;
          if (!spooled?.file) throw new ReceiveError(`${label}: no data arrived`, FailureCode.processingFailure);
          const filed = await received.accept(spooled.file, label);
          await options.onInstance(filed);
          response.setStatus(Status.Success);
        } catch (err) {
          const code = err instanceof ReceiveError ? err.code : FailureCode.processingFailure;
          log.warn({ calling: this.calling, sopUid: sop, status: `0x${code.toString(16)}`, err: (err as Error).message }, 'C-STORE refused');
          options.onRefused((err as Error).message);
          response.setStatus(code);
        }
        callback(response);
        release();
      })();
    }

    override associationReleaseRequested(): void {
      this.sendAssociationReleaseResponse();
    }

    /** Instances cut off by the connection closing are removed from the spool. */
    discardUnfinished(): void {
      for (const out of this.files.values()) out.discard();
      this.files.clear();
    }
  }

  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    const peer = socket.remoteAddress ?? 'an unknown address';
    if (sockets.size >= options.maxAssociations) {
      const why = `${options.maxAssociations} associations are open already (RADDRAFT_DIMSE_MAX_ASSOCIATIONS); rejected as local limit exceeded`;
      log.warn({ peer }, `DICOM connection from ${peer}: ${why}`);
      options.onRefused(why);
      refuseOverLimit(socket);
      return;
    }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const guard = new ConnectionGuard({ socket, idleMs: options.idleSeconds * 1000, peer, log, onRefused: options.onRefused });
    const scp = new RaddraftScp(socket, guard);
    guard.interpose();
    socket.once('close', () => scp.discardUnfinished());
    scp.on('networkError', (e: unknown) => {
      log.warn({ peer, err: (e as Error).message }, 'DICOM network error');
      socket.destroy();
    });
  });
  server.on('error', (e: Error) => log.error({ err: e.message, port: options.port }, 'the C-STORE SCP cannot listen'));
  server.listen(options.port);
  log.info({ port: options.port, aet: options.aet, maxPduBytes: options.maxPduBytes, idleSeconds: options.idleSeconds, maxAssociations: options.maxAssociations }, 'C-STORE SCP listening');
  return {
    stop: () => {
      server.close();
      for (const socket of sockets) socket.destroy();
    },
  };
}
