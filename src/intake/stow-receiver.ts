import { createHash, timingSafeEqual } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import type { HttpAuth } from '../config/load.js';
import { boundaryOf, splitMultipart, type PartSink } from '../dicom/multipart.js';
import { isUid } from '../dicom/tags.js';
import { OperationOutcomeError } from '../util/operation-outcome.js';
import type { Logger } from '../log.js';
import { FailureCode, ReceiveError, type Received, type ReceivedStore, type SpoolSink } from './received-store.js';

export interface StowOptions {
  received: ReceivedStore;
  auth: HttpAuth;
  onInstance: (received: Received) => Promise<void>;
  onRefused: (reason: string) => void;
  log: Logger;
  /** A sender that sends nothing for this long is dropped and what it sent is removed. */
  idleMs?: number;
}

/** Parts in one request; a study raddraft drafts has a handful, a whole CT study a few thousand. */
const MAX_PARTS = 10_000;
const IDLE_MS = 60_000;

/** Equal-time comparison whatever the lengths: both sides are hashed to the same size first. */
function sameSecret(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** True when the Authorization header carries the configured credentials (scheme names are case-insensitive). */
export function credentialsMatch(header: string | undefined, auth: HttpAuth): boolean {
  if (auth.kind === 'none') return true;
  const m = /^([A-Za-z]+)[ \t]+(.*)$/.exec(header ?? '');
  const scheme = m?.[1]?.toLowerCase() ?? '';
  const value = m?.[2]?.trim() ?? '';
  const ok = auth.kind === 'bearer'
    ? sameSecret(value, auth.token)
    : sameSecret(Buffer.from(value, 'base64').toString('utf8'), `${auth.user}:${auth.password}`);
  return ok && scheme === auth.kind;
}

/** Header values may hold visible ASCII only; anything else a sender put in a reason becomes '?'. */
export function headerSafe(text: string, max = 300): string {
  const clean = text.replace(/[^\x20-\x7e]/g, '?').replace(/["\\]/g, "'");
  return clean.length > max ? `${clean.slice(0, max - 3)}...` : clean;
}

interface Failure {
  sopClassUid?: string;
  sopUid?: string;
  code: number;
  why: string;
}

const ui = (v: string) => ({ vr: 'UI', Value: [v] });

function stowBody(stored: Received[], failed: Failure[]): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (stored.length) {
    body['00081199'] = { vr: 'SQ', Value: stored.map((s) => ({ '00081150': ui(s.sopClassUid ?? ''), '00081155': ui(s.sopUid) })) };
  }
  if (failed.length) {
    body['00081198'] = {
      vr: 'SQ',
      Value: failed.map((f) => ({
        ...(f.sopClassUid ? { '00081150': ui(f.sopClassUid) } : {}),
        ...(f.sopUid ? { '00081155': ui(f.sopUid) } : {}),
        '00081197': { vr: 'US', Value: [f.code] },
      })),
    };
  }
  return body;
}

class IdleError extends Error {
  constructor(ms: number) {
    super(`the sender sent nothing for ${Math.round(ms / 1000)} s`);
    this.name = 'IdleError';
  }
}

/** The request body with an idle limit, and a way to throw away the rest of it after an early refusal. */
interface Body extends AsyncIterable<Uint8Array> {
  /**
   * Reads and discards what is left, so a sender still uploading can read the refusal (most clients cannot while
   * their upload is blocked); past `limit` bytes, or when the sender goes idle, the connection is cut instead.
   */
  discardRest(limit: number): void;
}

/**
 * The iterator has no `return`, so leaving the loop early does not destroy the request: the connection stays open
 * to carry the answer back.
 */
function bodyOf(req: Request, idleMs: number): Body {
  const it = req[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
  const next = async () => {
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new IdleError(idleMs)), idleMs);
    });
    try {
      return await Promise.race([it.next(), idle]);
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    [Symbol.asyncIterator]: () => ({ next }),
    discardRest(limit) {
      void (async () => {
        for (let left = limit; left >= 0;) {
          const r = await next();
          if (r.done) return;
          left -= r.value.length;
        }
        req.destroy();
      })().catch(() => req.destroy());
    },
  };
}

/** Bytes of a refused upload read and thrown away so the sender gets the answer, before the connection is cut. */
const DISCARD_LIMIT = 64 * 2 ** 20;
const EPILOGUE_LIMIT = 64 * 1024;

/**
 * STOW-RS receiver (`POST /dicom-web/studies[/{study}]`, PS3.18 10.5) for PACS and routers that push. Senders must
 * present RADDRAFT_STOW_AUTH. Parts stream to disk as they arrive, each bounded by RADDRAFT_MAX_INSTANCE_MB and the
 * free-space reserve; each is then checked and filed, and the answer lists stored and failed instances with DICOM
 * failure codes (200 all stored, 202 some failed, 409 none stored) plus a Warning header saying why in words.
 */
export function stowRouter(options: StowOptions): Router {
  const router = Router();
  const idleMs = options.idleMs ?? IDLE_MS;

  const checkRequest = (req: Request, res: Response): { boundary: string; study: string | undefined } => {
    if (!credentialsMatch(req.headers.authorization, options.auth)) {
      options.onRefused('STOW-RS request without valid credentials');
      res.set('WWW-Authenticate', `${options.auth.kind === 'basic' ? 'Basic' : 'Bearer'} realm="raddraft STOW-RS"`);
      throw new OperationOutcomeError(401, 'security', 'STOW-RS: missing or wrong credentials (raddraft checks RADDRAFT_STOW_AUTH)');
    }
    const contentType = req.headers['content-type'];
    const boundary = boundaryOf(contentType);
    const type = /;\s*type="?([^";]+)"?/i.exec(contentType ?? '')?.[1];
    if (!boundary || !/^multipart\/related/i.test(contentType ?? '') || (type && type.toLowerCase() !== 'application/dicom')) {
      throw new OperationOutcomeError(415, 'invalid', `STOW-RS: Content-Type ${JSON.stringify(contentType ?? '')} is not supported; send multipart/related; type="application/dicom" with a boundary`);
    }
    const study = typeof req.params.study === 'string' ? req.params.study : undefined;
    if (study !== undefined && !isUid(study)) throw new OperationOutcomeError(400, 'invalid', `STOW-RS: ${JSON.stringify(study)} in the URL is not a Study Instance UID`);
    return { boundary, study };
  };

  /** Streams every part to the spool; on any failure removes all of them and answers for the whole request. */
  const spoolAll = async (req: Request, res: Response, boundary: string, failed: Failure[]) => {
    const spooled: { sink: SpoolSink; label: string }[] = [];
    const body = bodyOf(req, idleMs);
    try {
      await splitMultipart(body, boundary, async (headers, index): Promise<PartSink> => {
        const label = `part ${index + 1}`;
        if (index >= MAX_PARTS) throw new ReceiveError(`the request has more than ${MAX_PARTS} parts; send the instances in several requests`, FailureCode.outOfResources, true);
        const partType = headers['content-type'] ?? '';
        if (!/^application\/dicom\b/i.test(partType)) {
          failed.push({ code: FailureCode.cannotUnderstand, why: `${label}: Content-Type '${headerSafe(partType, 100)}' is not application/dicom` });
          return { write: () => Promise.resolve(), end: () => Promise.resolve() };
        }
        const sink = await options.received.openSpool(label);
        spooled.push({ sink, label });
        return sink;
      });
      // An epilogue after the closing boundary is read too, so the connection is left clean for the next request.
      body.discardRest(EPILOGUE_LIMIT);
      return spooled.map(({ sink, label }) => ({ file: sink.file, label }));
    } catch (err) {
      await Promise.all(spooled.map(({ sink }) => sink.discard()));
      if (err instanceof IdleError) {
        res.set('Connection', 'close');
        throw new OperationOutcomeError(408, 'transient', `STOW-RS: ${err.message}; nothing in this request was stored`);
      }
      body.discardRest(DISCARD_LIMIT);
      if (!(err instanceof ReceiveError)) {
        throw new OperationOutcomeError(400, 'invalid', `STOW-RS: the request body is not valid multipart/related: ${(err as Error).message}`);
      }
      options.onRefused(err.message);
      if (err.tooLarge) throw new OperationOutcomeError(413, 'processing', `STOW-RS: ${err.message}; nothing in this request was stored`);
      res.set('Retry-After', '300');
      throw new OperationOutcomeError(503, 'transient', `STOW-RS: ${err.message}`);
    }
  };

  const handler = async (req: Request, res: Response) => {
    const { boundary, study } = checkRequest(req, res);
    const failed: Failure[] = [];
    const spooled = await spoolAll(req, res, boundary, failed);
    const stored: Received[] = [];
    for (const { file, label } of spooled) {
      try {
        const filed = await options.received.accept(file, label, study);
        await options.onInstance(filed);
        stored.push(filed);
      } catch (err) {
        const code = err instanceof ReceiveError ? err.code : FailureCode.processingFailure;
        failed.push({ code, why: (err as Error).message });
      }
    }
    // From here on instances may be stored: nothing below may turn the answer into an error that hides them.
    for (const f of failed) {
      options.log.warn({ status: `0x${f.code.toString(16)}`, err: f.why }, 'STOW-RS part refused');
      options.onRefused(f.why);
    }
    if (failed.length) {
      // RFC 7234 Warning header, as PS3.18 allows, with the reasons in words (no patient data: UIDs and part numbers).
      const shown = failed.slice(0, 20).map((f) => `299 raddraft "${headerSafe(f.why)}"`);
      if (failed.length > shown.length) shown.push(`299 raddraft "and ${failed.length - shown.length} more failure(s)"`);
      res.set('Warning', shown.join(', '));
    }
    const status = failed.length === 0 ? 200 : stored.length === 0 ? 409 : 202;
    res.status(status).type('application/dicom+json').send(JSON.stringify(stowBody(stored, failed)));
  };

  router.post('/dicom-web/studies', handler);
  router.post('/dicom-web/studies/:study', handler);
  return router;
}
