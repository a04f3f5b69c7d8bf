import type { Request, Response } from 'express';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import type { AuthConfig } from '../config/load.js';
import { OperationOutcomeError } from '../http/errors.js';
import { networkCause } from '../http/network-cause.js';
import type { Signer } from '../fhir/sign.js';
import { newCsrfToken, readCookie, SESSION_COOKIE, type SessionData, type SessionKeeper } from './session.js';

const PRACTITIONER = /(?:^|\/)((?:Practitioner|PractitionerRole)\/[A-Za-z0-9\-.]{1,64})$/;

export function isLoopback(req: Request): boolean {
  const a = req.socket.remoteAddress ?? '';
  return a === '127.0.0.1' || a === '::1' || a === '::ffff:127.0.0.1';
}

/** The signer named by token claims, or a refusal that says which claim is missing. */
export function signerFromClaims(claims: JWTPayload, claim: string): Signer {
  const value = claims[claim];
  const m = typeof value === 'string' ? PRACTITIONER.exec(value) : null;
  if (!m) {
    throw new OperationOutcomeError(
      403,
      'security',
      `your sign-in token has no "${claim}" claim naming your Practitioner record; ask the identity administrator to add it (raddraft reads RADDRAFT_AUTH_PRACTITIONER_CLAIM)`,
    );
  }
  const name = typeof claims.name === 'string' ? claims.name : typeof claims.preferred_username === 'string' ? claims.preferred_username : undefined;
  return { reference: m[1]!, display: name };
}

async function jwksUrlOf(auth: AuthConfig): Promise<string> {
  if (auth.jwksUrl) return auth.jwksUrl;
  const discovery = `${auth.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  let res: globalThis.Response;
  try {
    res = await fetch(discovery, { signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw new Error(`the sign-in issuer ${auth.issuer} cannot be reached (${networkCause(err)})`);
  }
  const doc: unknown = await res.json().catch(() => undefined);
  const uri = (doc as { jwks_uri?: unknown } | undefined)?.jwks_uri;
  if (!res.ok || typeof uri !== 'string') throw new Error(`the sign-in issuer ${auth.issuer} has no usable discovery document (HTTP ${res.status})`);
  return uri;
}

export type Access =
  | { kind: 'signer'; signer: Signer; session: SessionData | undefined }
  | { kind: 'viewer'; session: SessionData }
  | { kind: 'refused'; status: number; reason: string };

/**
 * Who is asking. API callers present a bearer token checked against the issuer's keys; people in a browser have a
 * session cookie from signing in (or, with no sign-in configured, a local session on this machine only). A change
 * made with a cookie must also carry the session's CSRF token. The signer always comes from the token or session.
 */
export class ReviewAuth {
  private jwks: ReturnType<typeof createRemoteJWKSet> | undefined;

  constructor(
    readonly auth: AuthConfig | undefined,
    readonly localReviewer: string | undefined,
    readonly sessions: SessionKeeper,
  ) {}

  get signInConfigured(): boolean {
    return !!this.auth?.clientId;
  }

  private async keys(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (!this.auth) throw new OperationOutcomeError(401, 'security', 'this raddraft has no sign-in configured, so it cannot check API tokens (set RADDRAFT_AUTH_ISSUER)');
    try {
      this.jwks ??= createRemoteJWKSet(new URL(await jwksUrlOf(this.auth)));
    } catch (err) {
      throw new OperationOutcomeError(503, 'transient', (err as Error).message);
    }
    return this.jwks;
  }

  async verifyBearer(token: string): Promise<Signer> {
    const keys = await this.keys();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        issuer: this.auth!.issuer,
        ...(this.auth!.audience ? { audience: this.auth!.audience } : {}),
      }));
    } catch (err) {
      throw new OperationOutcomeError(401, 'security', `the bearer token was refused: ${(err as Error).message}`);
    }
    return signerFromClaims(payload, this.auth!.practitionerClaim);
  }

  async session(req: Request): Promise<SessionData | undefined> {
    return this.sessions.open(readCookie(req.headers.cookie, SESSION_COOKIE));
  }

  /** For a change (sign, reject): a bearer token, or a session cookie with a matching X-CSRF-Token header. */
  async forChange(req: Request): Promise<Signer> {
    const header = req.headers.authorization;
    if (header?.startsWith('Bearer ')) return this.verifyBearer(header.slice('Bearer '.length).trim());
    const session = await this.session(req);
    if (!session) throw new OperationOutcomeError(401, 'security', 'sign in first: send a bearer token, or use the review pages');
    if (session.via === 'local' && (this.auth || !isLoopback(req))) {
      throw new OperationOutcomeError(401, 'security', 'a local session is valid only on this machine without sign-in configured');
    }
    if (req.headers['x-csrf-token'] !== session.csrf) {
      throw new OperationOutcomeError(403, 'security', 'the request lacks this session\'s CSRF token; reload the page and try again');
    }
    if (!session.practitioner) {
      throw new OperationOutcomeError(403, 'security', 'this session may read but not sign: no reviewer is configured (set RADDRAFT_LOCAL_REVIEWER, or configure sign-in)');
    }
    return { reference: session.practitioner, display: session.name };
  }

  /**
   * For a page: the session, creating a local one on this machine when no sign-in is configured. Returns a refusal
   * (or undefined after redirecting to sign-in) otherwise.
   */
  async forPage(req: Request, res: Response): Promise<SessionData | { status: number; reason: string } | undefined> {
    const session = await this.session(req);
    if (this.auth) {
      if (session?.via === 'oidc') return session;
      if (this.signInConfigured) {
        res.redirect(303, `/review/login?next=${encodeURIComponent(req.originalUrl)}`);
        return undefined;
      }
      return { status: 401, reason: 'Sign-in for the review pages is not configured (RADDRAFT_AUTH_CLIENT_ID). Use the API with a bearer token.' };
    }
    if (!isLoopback(req)) {
      return { status: 403, reason: 'No sign-in is configured, so the review pages are served only to this machine (127.0.0.1). Configure RADDRAFT_AUTH_ISSUER and RADDRAFT_AUTH_CLIENT_ID to review from other machines.' };
    }
    if (session?.via === 'local' && session.practitioner === this.localReviewer) return session;
    const fresh: SessionData = { practitioner: this.localReviewer, name: this.localReviewer ? `local reviewer (${this.localReviewer})` : undefined, csrf: newCsrfToken(), via: 'local' };
    await this.setSession(res, fresh, false);
    return fresh;
  }

  async setSession(res: Response, data: SessionData, secure: boolean): Promise<void> {
    res.cookie(SESSION_COOKIE, await this.sessions.seal(data), { httpOnly: true, sameSite: 'lax', secure, path: '/' });
  }
}
