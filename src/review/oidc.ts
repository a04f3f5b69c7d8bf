import type { Request, Response } from 'express';
import * as oidc from 'openid-client';
import type { AuthConfig } from '../config/load.js';
import { OperationOutcomeError } from '../util/operation-outcome.js';
import { permittedSigner, type ReviewAuth } from './auth.js';
import { newCsrfToken, readCookie } from './session.js';

const LOGIN_COOKIE = 'raddraft_login';

/** Only same-site paths are followed after sign-in. */
function safeNext(next: unknown): string {
  return typeof next === 'string' && next.startsWith('/review') && !next.startsWith('//') ? next : '/review';
}

/**
 * Sign-in for the review pages: OpenID Connect authorization code flow with PKCE (openid-client). The signer's
 * Practitioner comes from the ID token's claims and is kept in the session.
 */
export class OidcLogin {
  private config: Promise<oidc.Configuration> | undefined;

  constructor(
    private readonly auth: AuthConfig & { clientId: string },
    private readonly publicUrl: string,
    private readonly reviewAuth: ReviewAuth,
  ) {}

  private get redirectUri(): string {
    return `${this.publicUrl}/review/callback`;
  }

  private discover(): Promise<oidc.Configuration> {
    this.config ??= oidc
      .discovery(
        new URL(this.auth.issuer),
        this.auth.clientId,
        this.auth.clientSecret,
        this.auth.clientSecret ? undefined : oidc.None(),
      )
      .catch((err: unknown) => {
        this.config = undefined;
        throw new OperationOutcomeError(503, 'transient', `the sign-in issuer ${this.auth.issuer} cannot be used: ${(err as Error).message}`);
      });
    return this.config;
  }

  async start(req: Request, res: Response): Promise<void> {
    const config = await this.discover();
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.redirectUri,
      scope: 'openid profile fhirUser',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    const sealed = await this.reviewAuth.sessions.sealState({ verifier, state, nonce, next: safeNext(req.query.next) });
    res.cookie(LOGIN_COOKIE, sealed, { httpOnly: true, sameSite: 'lax', secure: this.publicUrl.startsWith('https:'), path: '/review', maxAge: 600_000 });
    res.redirect(303, url.href);
  }

  async callback(req: Request, res: Response): Promise<void> {
    const config = await this.discover();
    const pending = await this.reviewAuth.sessions.openState(readCookie(req.headers.cookie, LOGIN_COOKIE));
    if (!pending?.verifier || !pending.state || !pending.nonce) {
      throw new OperationOutcomeError(400, 'security', 'the sign-in took too long or was started elsewhere; sign in again');
    }
    let claims;
    try {
      const tokens = await oidc.authorizationCodeGrant(config, new URL(req.originalUrl, this.publicUrl), {
        pkceCodeVerifier: pending.verifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
      });
      claims = tokens.claims();
    } catch (err) {
      throw new OperationOutcomeError(401, 'security', `sign-in failed: ${(err as Error).message}`);
    }
    if (!claims) throw new OperationOutcomeError(401, 'security', 'sign-in returned no ID token');
    res.clearCookie(LOGIN_COOKIE, { path: '/review' });
    // The same rule as for API tokens: a user of the identity provider who may not sign gets no session at all.
    const signer = permittedSigner(this.auth, claims);
    const session = {
      practitioner: signer.reference, name: signer.display, csrf: newCsrfToken(), via: 'oidc' as const,
      issuer: this.auth.issuer, clientId: this.auth.clientId, role: this.auth.signerRole,
    };
    await this.reviewAuth.setSession(res, session, this.publicUrl.startsWith('https:'));
    res.redirect(303, safeNext(pending.next));
  }
}
