/**
 * The HL7 v2 peer of raddraft's tests: test/harness/hl7_peer.py on Debian's python3-hl7, an implementation
 * independent of raddraft's. `startHl7Peer` runs its MLLP server (the RIS raddraft sends ORU^R01 to); `sendHl7`
 * runs its client (the RIS sending final reports to raddraft's listener).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { waitFor } from '../../src/demo/ports.js';
import { ROOT } from './peers.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = path.join(ROOT, 'test', 'harness', 'hl7_peer.py');

/** One message as the peer parsed and logged it. */
export interface PeerEntry {
  control_id: string;
  type: string;
  version: string;
  segments: string[][];
  obr25?: string;
  obr32?: string;
  obx11: string[];
  obx5: string[];
  pid3: string[];
  answer: string;
  copy: number;
  /** Which TCP connection (numbered from 1) brought it. */
  connection: number;
  at: number;
  raw: string;
}

/** An ACK as the peer's client parsed it. */
export interface PeerAnswer {
  raw: string;
  msa?: string[];
  err?: string[][];
  closed?: boolean;
  sent?: string;
}

export interface Hl7Peer {
  port: number;
  log: string;
  received(): PeerEntry[];
  /** How the peer answers from now on: the n-th copy of a control ID gets answers[n] (the last repeats). */
  answer(answers: string[], text?: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startHl7Peer(dir: string, options: { answers?: string[]; text?: string; tls?: { cert: string; key: string }; port?: number } = {}): Promise<Hl7Peer> {
  const log = path.join(dir, `peer-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.jsonl`);
  const control = `${log}.control.json`;
  const answer = (answers: string[], text = '') => writeFile(control, JSON.stringify({ answers, text }));
  await answer(options.answers ?? ['AA'], options.text);
  const args = [SCRIPT, 'serve', '--port', String(options.port ?? 0), '--log', log, '--control', control];
  if (options.tls) args.push('--tls-cert', options.tls.cert, '--tls-key', options.tls.key);
  const child: ChildProcess = spawn(PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  let port = 0;
  await waitFor('the python3-hl7 peer to listen', () => {
    if (child.exitCode !== null) throw new Error(`the HL7 peer exited: ${out}`);
    port = Number(/listening (\d+)/.exec(out)?.[1] ?? 0);
    return Promise.resolve(port > 0);
  }, 15_000, 50);
  return {
    port,
    log,
    received: () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as PeerEntry) : []),
    answer,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * Sends messages (segments separated by CR or LF) to an MLLP listener with python3-hl7's MLLPClient, or `raw` bytes
 * as they are, and returns each answer as the peer parsed it; the exchange is appended to `log` when given.
 */
export async function sendHl7(port: number, dir: string, payload: { messages: string[] } | { raw: Buffer }, options: { timeoutSeconds?: number; log?: string } = {}): Promise<PeerAnswer[]> {
  const file = path.join(dir, `send-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.hl7`);
  const raw = 'raw' in payload;
  await writeFile(file, raw ? payload.raw : payload.messages.map((m) => m.replace(/\r/g, '\n')).join('\n\n'));
  const args = [SCRIPT, 'send', '--port', String(port), '--file', file, '--timeout', String(options.timeoutSeconds ?? 10)];
  if (raw) args.push('--raw');
  if (options.log) args.push('--log', options.log);
  const child = spawn(PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`the HL7 sender failed (${code}): ${err}`);
  return JSON.parse(out) as PeerAnswer[];
}
