import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { timingSafeEqual } from 'node:crypto';
import { Router, type Request } from 'express';
import type { HttpAuth } from '../config/load.js';
import { boundaryOf, splitMultipart } from '../dicom/multipart.js';
import { isUid } from '../dicom/tags.js';
import { authorizationHeader } from '../http/auth-header.js';
import { OperationOutcomeError } from '../http/errors.js';
import type { Logger } from '../log.js';
import { FailureCode, ReceiveError, type Received, type ReceivedStore } from './received-store.js';

export interface StowOptions {
  received: ReceivedStore;
  auth: HttpAuth;
  onInstance: (received: Received) => Promise<void>;
  onRefused: (reason: string) => void;
  log: Logger;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

const ui = (v: string) => ({ vr: 'UI', Value: [v] });

/**
 * STOW-RS receiver (`POST /dicom-web/studies[/{study}]`, PS3.18 10.5) for PACS and modalities that push. Parts stream
 * to disk as they arrive; each is checked and filed, and the answer lists stored and failed instances with DICOM
 * failure codes (200 all stored, 202 some failed, 409 none stored) plus a Warning header saying why in words.
 */
export function stowRouter(options: StowOptions): Router {
  const router = Router();
  const expected = authorizationHeader(options.auth).authorization;

  const handler = async (req: Request, res: import('express').Response) => {
    if (expected && !sameSecret(req.headers.authorization ?? '', expected)) {
      options.onRefused('STOW-RS request without valid credentials');
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

    const stored: Received[] = [];
    const failed: { sopClassUid?: string; sopUid?: string; code: number; why: string }[] = [];
    const spooled: { file: string; label: string }[] = [];
    let index = 0;
    try {
      await splitMultipart(req, boundary, async (headers) => {
        index += 1;
        const label = `part ${index}`;
        const partType = headers['content-type'] ?? '';
        if (!/^application\/dicom\b/i.test(partType)) {
          failed.push({ code: FailureCode.cannotUnderstand, why: `${label}: Content-Type ${JSON.stringify(partType)} is not application/dicom` });
          return { write: () => Promise.resolve(), end: () => Promise.resolve() };
        }
        const file = await options.received.spoolFile();
        spooled.push({ file, label });
        const out = createWriteStream(file);
        await once(out, 'open');
        return {
          async write(chunk) {
            if (!out.write(chunk)) await once(out, 'drain');
          },
          async end() {
            out.end();
            await once(out, 'finish');
          },
        };
      });
    } catch (err) {
      await Promise.all(spooled.map(({ file }) => rm(file, { force: true })));
      if (err instanceof ReceiveError) {
        options.onRefused(err.message);
        res.set('Retry-After', '300');
        throw new OperationOutcomeError(503, 'transient', `STOW-RS: ${err.message}`);
      }
      throw new OperationOutcomeError(400, 'invalid', `STOW-RS: the request body is not valid multipart/related: ${(err as Error).message}`);
    }
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
    for (const f of failed) {
      options.log.warn({ status: `0x${f.code.toString(16)}`, err: f.why }, 'STOW-RS part refused');
      options.onRefused(f.why);
    }
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
      // RFC 7234 Warning header, as PS3.18 allows, with the reasons in words (no patient data: UIDs and part numbers).
      res.set('Warning', failed.map((f) => `299 raddraft "${f.why.replace(/["\\]/g, "'")}"`).join(', '));
    }
    const status = failed.length === 0 ? 200 : stored.length === 0 ? 409 : 202;
    res.status(status).type('application/dicom+json').send(JSON.stringify(body));
  };

  router.post('/dicom-web/studies', handler);
  router.post('/dicom-web/studies/:study', handler);
  return router;
}
