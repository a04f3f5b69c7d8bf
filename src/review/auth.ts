import type { Request, Response } from 'express';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import type { AuthConfig } from '../config/load.js';
import { OperationOutcomeError } from '../util/operation-outcome.js';
import { networkCause } from '../util/network-cause.js';
import type { Signer } from '../fhir/sign.js';
import { bearerToken, sameSecret } from './credentials.js';
import { isLoopback, localRequestProblem } from './loopback.js';
import { newCsrfToken, readCookie, SESSION_COOKIE, type SessionData, type SessionKeeper } from './session.js';
import { listProblem, signerProblem } from './signer-policy.js';

const PRACTITIONER = /(?:^|\/)((?:Practitioner|PractitionerRole)\/[A-Za-z0-9\-.]{1,64})$/;

const NOT_THIS_MACHINE_PAGE = 'No sign-in is configured, so the review pages are served only to this machine (127.0.0.1). Configure RADDRAFT_AUTH_ISSUER and RADDRAFT_AUTH_CLIENT_ID to review from other machines.';
const NOT_THIS_MACHINE_SESSION = 'a local session is valid only on this machine without sign-in configured';
const NOT_THIS_MACHINE_API = 'No sign-in is configured, so the job API answers other machines only with a token: send Authorization: Bearer <RADDRAFT_API_TOKEN>.';
const SIGN_IN_FIRST = 'sign in first: send a bearer token, or use the review pages';

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

/** The signer named by token claims if the signer policy (role, allow-list) lets them sign; a 403 otherwise. */
export function permittedSigner(auth: AuthConfig, claims: JWTPayload): Signer {
  const signer = signerFromClaims(claims, auth.practitionerClaim);
  const problem = signerProblem(auth, claims, signer.reference);
  if (problem) throw new OperationOutcomeError(403, 'security', problem);
  return signer;
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

function csrfMatches(req: Request, session: SessionData): boolean {
  const header = req.headers['x-csrf-token'];
  return sameSecret(typeof header === 'string' ? header : undefined, session.csrf);
}

/**
 * Who is asking. API callers present a bearer token checked against the issuer's keys; people in a browser have a
 * session cookie from signing in (or, with no sign-in configured, a local session on this machine only). A session
 * counts only if the sign-in configured now made it, for the reviewer configured now. A change made with a cookie
 * must also carry the session's CSRF token. The signer always comes from the token or session.
 */
export class ReviewAuth {
  private jwks: ReturnType<typeof createRemoteJWKSet> | undefined;

  constructor(
    readonly auth: AuthConfig | undefined,
    readonly localReviewer: string | undefined,
    readonly sessions: SessionKeeper,
    private readonly apiToken?: string,
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

  /** A token from the configured issuer, for raddraft's audience, with an expiry, held by a permitted signer. */
  async verifyBearer(token: string): Promise<Signer> {
    const keys = await this.keys();
    const auth = this.auth!;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys, { issuer: auth.issuer, audience: auth.audience, requiredClaims: ['exp'] }));
    } catch (err) {
      throw new OperationOutcomeError(401, 'security', `the bearer token was refused: ${(err as Error).message}`);
    }
    return permittedSigner(auth, payload);
  }

  /** With no sign-in configured: why this request is not one from this machine addressed to raddraft, or undefined. */
  private localProblem(req: Request): string | undefined {
    if (!isLoopback(req)) return NOT_THIS_MACHINE_PAGE;
    return localRequestProblem(req.headers.host, req.headers.origin, req.socket.localPort ?? 0);
  }

  private oidcSessionProblem(session: SessionData): string | undefined {
    const auth = this.auth;
    if (!auth?.clientId) return 'this session comes from a sign-in that is not configured here; sign in again';
    if (session.issuer !== auth.issuer || session.clientId !== auth.clientId) {
      return 'this session was signed in through another identity provider or client than the one configured now; sign in again';
    }
    if (!session.practitioner) return 'this session names no Practitioner; sign in again';
    if (auth.signerRole !== undefined && session.role !== auth.signerRole) {
      return `this session was not granted the signer role "${auth.signerRole}" (RADDRAFT_AUTH_SIGNER_ROLE); sign in again`;
    }
    return listProblem(auth, session.practitioner);
  }

  private localSessionProblem(req: Request, session: SessionData): string | undefined {
    if (this.auth || !isLoopback(req)) return NOT_THIS_MACHINE_SESSION;
    const problem = localRequestProblem(req.headers.host, req.headers.origin, req.socket.localPort ?? 0);
    if (problem) return problem;
    if (session.practitioner !== this.localReviewer) {
      return 'this session was opened for another local reviewer (RADDRAFT_LOCAL_REVIEWER has changed since); reload the page';
    }
    return undefined;
  }

  /** The request's session if it is valid under the sign-in configured now; a refusal reason if not; undefined if none. */
  async session(req: Request): Promise<SessionData | string | undefined> {
    const session = await this.sessions.open(readCookie(req.headers.cookie, SESSION_COOKIE));
    if (!session) return undefined;
    const problem = session.via === 'oidc' ? this.oidcSessionProblem(session) : this.localSessionProblem(req, session);
    return problem ?? session;
  }

  /** For a change (sign, reject): a bearer token, or a session cookie with a matching X-CSRF-Token header. */
  async forChange(req: Request): Promise<Signer> {
    const token = bearerToken(req.headers.authorization);
    if (token !== undefined) return this.verifyBearer(token);
    if (req.headers.authorization) throw new OperationOutcomeError(401, 'security', 'the Authorization header must be a bearer token (Authorization: Bearer <token>)');
    const session = await this.session(req);
    if (session === undefined) throw new OperationOutcomeError(401, 'security', SIGN_IN_FIRST);
    if (typeof session === 'string') throw new OperationOutcomeError(401, 'security', session);
    if (!csrfMatches(req, session)) {
      throw new OperationOutcomeError(403, 'security', 'the request lacks this session\'s CSRF token; reload the page and try again');
    }
    if (!session.practitioner) {
      throw new OperationOutcomeError(403, 'security', 'this session may read but not sign: no reviewer is configured (set RADDRAFT_LOCAL_REVIEWER, or configure sign-in)');
    }
    return { reference: session.practitioner, display: session.name };
  }

  /**
   * For the job API: RADDRAFT_API_TOKEN, a bearer token or a review session (with its CSRF token for a change);
   * without sign-in configured, also any request from this machine addressed to raddraft.
   */
  async forApi(req: Request, change: boolean): Promise<void> {
    const token = bearerToken(req.headers.authorization);
    if (token !== undefined) {
      if (this.apiToken !== undefined && sameSecret(token, this.apiToken)) return;
      if (this.auth) {
        await this.verifyBearer(token);
        return;
      }
      throw new OperationOutcomeError(401, 'security', 'the bearer token was refused: it is not RADDRAFT_API_TOKEN, and no sign-in issuer is configured to check it');
    }
    const session = await this.session(req);
    if (session !== undefined && typeof session !== 'string') {
      if (change && !csrfMatches(req, session)) {
        throw new OperationOutcomeError(403, 'security', 'the request lacks this session\'s CSRF token; reload the page and try again');
      }
      return;
    }
    if (!this.auth) {
      if (!isLoopback(req)) throw new OperationOutcomeError(401, 'security', NOT_THIS_MACHINE_API);
      const problem = localRequestProblem(req.headers.host, req.headers.origin, req.socket.localPort ?? 0);
      if (problem) throw new OperationOutcomeError(403, 'security', problem);
      return;
    }
    throw new OperationOutcomeError(401, 'security', 'sign in first: send a bearer token (from the sign-in issuer, or RADDRAFT_API_TOKEN), or use the review pages');
  }

  /**
   * For a page: the session, creating a local one on this machine when no sign-in is configured. Returns a refusal
   * (or undefined after redirecting to sign-in) otherwise.
   */
  async forPage(req: Request, res: Response): Promise<SessionData | { status: number; reason: string } | undefined> {
    if (this.auth) {
      const session = await this.session(req);
      if (session !== undefined && typeof session !== 'string') return session;
      if (this.signInConfigured) {
        res.redirect(303, `/review/login?next=${encodeURIComponent(req.originalUrl)}`);
        return undefined;
      }
      return { status: 401, reason: 'Sign-in for the review pages is not configured (RADDRAFT_AUTH_CLIENT_ID). Use the API with a bearer token.' };
    }
    const problem = this.localProblem(req);
    if (problem) return { status: 403, reason: problem };
    const session = await this.session(req);
    if (session !== undefined && typeof session !== 'string') return session;
    const fresh: SessionData = { practitioner: this.localReviewer, name: this.localReviewer ? `local reviewer (${this.localReviewer})` : undefined, csrf: newCsrfToken(), via: 'local' };
    await this.setSession(res, fresh, false);
    return fresh;
  }

  async setSession(res: Response, data: SessionData, secure: boolean): Promise<void> {
    res.cookie(SESSION_COOKIE, await this.sessions.seal(data), { httpOnly: true, sameSite: 'lax', secure, path: '/' });
  }

  clearSession(res: Response, secure: boolean): void {
    res.clearCookie(SESSION_COOKIE, { httpOnly: true, sameSite: 'lax', secure, path: '/' });
  }
}
