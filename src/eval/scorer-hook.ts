import { spawn } from 'node:child_process';
import { request } from 'undici';

/**
 * Metrics that need neural models — SembScore (CheXbert embeddings), RadGraph F1 and RadCliQ
 * (rajpurkarlab/CXR-Report-Metric), RaTEScore (MAGIC-AI4Med/RaTEScore), GREEN (Stanford-AIMI/GREEN, a 7B model) —
 * are not computed by raddraft. A site that runs them supplies a scorer: an HTTP endpoint (POST) or a command,
 * called once per pair with {"id", "hypothesis", "reference"} as JSON and answering a JSON object of named numbers,
 * e.g. {"SembScore": 0.41, "RaTEScore": 0.55}. Its figures join the summary table and the per-study rows.
 */
export const NEURAL_METRICS = [
  { name: 'SembScore', needs: 'CheXbert (rajpurkarlab/CXR-Report-Metric)' },
  { name: 'RadGraph F1', needs: 'RadGraph (rajpurkarlab/CXR-Report-Metric)' },
  { name: 'RadCliQ-v1', needs: 'BERTScore, CheXbert and RadGraph (rajpurkarlab/CXR-Report-Metric)' },
  { name: 'RaTEScore', needs: 'RaTE-NER-DeBERTa and BioLORD (MAGIC-AI4Med/RaTEScore)' },
  { name: 'GREEN', needs: 'GREEN-RadLlama2-7b (Stanford-AIMI/GREEN)' },
] as const;

export interface ScorerPair {
  id: string;
  hypothesis: string;
  reference: string;
}

export type ExternalScorer = (pair: ScorerPair) => Promise<Record<string, number>>;

export class ScorerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScorerError';
  }
}

/** The scorer's answer must be an object of finite numbers (optionally under "scores"); anything else is named. */
export function readScores(body: unknown, who: string): Record<string, number> {
  const obj = body && typeof body === 'object' && 'scores' in body ? (body).scores : body;
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw new ScorerError(`${who} did not answer a JSON object of scores`);
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ScorerError(`${who} answered ${JSON.stringify(k)}: ${JSON.stringify(v)}, which is not a finite number`);
    if (!k.trim() || k.length > 60) throw new ScorerError(`${who} answered a score name that is empty or longer than 60 characters`);
    out[k] = v;
  }
  if (Object.keys(out).length === 0) throw new ScorerError(`${who} answered no scores`);
  return out;
}

export function httpScorer(url: string, timeoutMs = 120_000): ExternalScorer {
  return async (pair) => {
    const who = `the scorer at ${url}`;
    let res;
    try {
      res = await request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(pair),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
    } catch (err) {
      throw new ScorerError(`${who} cannot be reached (${(err as Error).message})`);
    }
    const text = await res.body.text();
    if (res.statusCode >= 300) throw new ScorerError(`${who} answered HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new ScorerError(`${who} did not answer JSON`);
    }
    return readScores(body, who);
  };
}

export function commandScorer(command: string, timeoutMs = 120_000): ExternalScorer {
  return (pair) =>
    new Promise((resolve, reject) => {
      const who = `the scorer command "${command}"`;
      const child = spawn('/bin/sh', ['-c', command], { stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
      child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
      child.on('error', (e) => reject(new ScorerError(`${who} cannot be run (${e.message})`)));
      child.on('close', (code, signal) => {
        if (code !== 0) {
          reject(new ScorerError(`${who} exited with ${signal ?? `code ${code}`}${err.trim() ? `: ${err.trim().split('\n').pop()!.slice(0, 200)}` : ''}`));
          return;
        }
        try {
          resolve(readScores(JSON.parse(out), who));
        } catch (e) {
          reject(e instanceof ScorerError ? e : new ScorerError(`${who} did not print JSON`));
        }
      });
      child.stdin.on('error', () => undefined);
      child.stdin.end(JSON.stringify(pair));
    });
}
