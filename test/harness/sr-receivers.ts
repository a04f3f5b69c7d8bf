/**
 * Receivers and checkers for the SRs raddraft stores: DCMTK's storescp as an independent C-STORE SCP, raddraft's own
 * C-STORE SCP and STOW-RS intake made to refuse every instance as a full archive does (C-STORE failure status
 * 0xA700, STOW-RS 409 with failure reason 0xA700), and dicom3tools' dciodvfy and DCMTK's dsrdump/dsr2html as independent readers.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import dimse from 'dcmjs-dimse';
import type { association as Assoc, requests as Requests, responses as Responses } from 'dcmjs-dimse';
import express from 'express';
import { freePort, waitFor } from '../../src/demo/ports.js';
import { errorHandler } from '../../src/http/errors.js';
import { startDimseScp } from '../../src/intake/dimse-scp.js';
import { FailureCode, ReceiveError, ReceivedStore } from '../../src/intake/received-store.js';
import { stowRouter } from '../../src/intake/stow-receiver.js';
import { createLogger } from '../../src/log.js';

const run = promisify(execFile);
/** What a full archive says of every instance once it has arrived: out of resources (0xA700). */
const refuse = () => Promise.reject(new ReceiveError('the archive is full', FailureCode.outOfResources));

async function listening(port: number): Promise<void> {
  await waitFor(`a C-STORE SCP on port ${port}`, async () => {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    const ok = await Promise.race([once(s, 'connect').then(() => true), once(s, 'error').then(() => false)]);
    s.destroy();
    return ok;
  }, 10_000);
}

export interface Receiver {
  port: number;
  dir: string;
  stop(): Promise<void>;
}

/** DCMTK storescp writing what it receives into a temporary folder. */
export async function startStorescp(aet = 'STORESCP'): Promise<Receiver & { child: ChildProcess }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'raddraft-storescp-'));
  const port = await freePort();
  const child = spawn('storescp', ['-aet', aet, '-od', dir, '-uf', String(port)], { stdio: 'ignore' });
  await listening(port);
  return {
    port, dir, child,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** raddraft's C-STORE SCP answering every instance with failure status 0xA700 (out of resources). */
export async function startRefusingScp(aet = 'FULLPACS'): Promise<Receiver> {
  const dir = await mkdtemp(path.join(tmpdir(), 'raddraft-full-scp-'));
  const port = await freePort();
  const scp = startDimseScp({
    port, aet, peers: '*', received: new ReceivedStore(dir, 0),
    onInstance: refuse, onRefused: () => undefined, log: createLogger({ level: 'silent' }),
    maxPduBytes: 65536, idleSeconds: 10, maxAssociations: 4,
  });
  await listening(port);
  return { port, dir, stop: async () => {
    scp.stop();
    await rm(dir, { recursive: true, force: true });
  } };
}

/** raddraft's STOW-RS intake answering every store 409 with failure reason 0xA700 (out of resources). */
export async function startRefusingStow(): Promise<Receiver & { url: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'raddraft-full-stow-'));
  const app = express();
  app.use(stowRouter({
    received: new ReceivedStore(dir, 0), auth: { kind: 'none' },
    onInstance: refuse, onRefused: () => undefined, log: createLogger({ level: 'silent' }),
  }));
  app.use(errorHandler(createLogger({ level: 'silent' })));
  const server: Server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    port, dir, url: `http://127.0.0.1:${port}/dicom-web`,
    stop: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A C-STORE SCP (dcmjs-dimse) that refuses every instance with status 0xA700 and an error comment of its own words,
 * as archives that explain themselves do.
 */
export async function startTalkativeScp(words: string): Promise<Receiver> {
  const { Scp, Server, responses, constants } = dimse;
  const { PresentationContextResult, TransferSyntax } = constants;
  class TalkativeScp extends Scp {
    override associationRequested(association: Assoc.Association): void {
      for (const c of association.getPresentationContexts()) {
        const context = association.getPresentationContext(c.id);
        const syntax = context.getTransferSyntaxUids().find((t) => t === TransferSyntax.ExplicitVRLittleEndian || t === TransferSyntax.ImplicitVRLittleEndian);
        context.setResult(syntax ? PresentationContextResult.Accept : PresentationContextResult.RejectTransferSyntaxesNotSupported, syntax);
      }
      this.sendAssociationAccept();
    }

    override cStoreRequest(request: Requests.CStoreRequest, callback: (response: Responses.CStoreResponse) => void): void {
      const response = responses.CStoreResponse.fromRequest(request);
      response.setStatus(0xa700);
      response.setErrorComment(words);
      callback(response);
    }

    override associationReleaseRequested(): void {
      this.sendAssociationReleaseResponse();
    }
  }
  const port = await freePort();
  const server = new Server(TalkativeScp);
  server.listen(port);
  await listening(port);
  return { port, dir: '', stop: () => Promise.resolve(server.close()) };
}

/** dciodvfy's complaints about a file: its error lines (warnings are left out), and everything it said. */
export async function dciodvfy(file: string): Promise<{ errors: string[]; output: string }> {
  let output: string;
  try {
    const r = await run('dciodvfy', [file]);
    output = `${r.stdout}${r.stderr}`;
  } catch (err) {
    // dciodvfy exits non-zero when it finds errors; its findings are still the answer.
    output = `${(err as { stdout?: string }).stdout ?? ''}${(err as { stderr?: string }).stderr ?? ''}`;
  }
  return { errors: output.split('\n').filter((l) => /^Error/.test(l)), output };
}

export async function dsrdump(file: string): Promise<string> {
  return (await run('dsrdump', ['+Pl', file])).stdout;
}

export async function dsr2html(file: string): Promise<string> {
  return (await run('dsr2html', [file], { maxBuffer: 8 * 2 ** 20 })).stdout;
}
