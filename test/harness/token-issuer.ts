import express from 'express';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { listen } from '../../src/http/listen.js';

export interface TokenIssuer {
  issuer: string;
  jwksUrl: string;
  /** A token signed with the published key. */
  token(claims: JWTPayload, audience?: string): Promise<string>;
  /** A token signed with the published key that never expires (no `exp` claim). */
  unending(claims: JWTPayload, audience?: string): Promise<string>;
  /** A token with the same claims, signed with a key that is not published. */
  forged(claims: JWTPayload, audience?: string): Promise<string>;
  stop(): Promise<void>;
}

/** A local JWKS endpoint and the keys to sign API tokens with, as an identity provider would issue them. */
export async function startTokenIssuer(): Promise<TokenIssuer> {
  const real = await generateKeyPair('RS256');
  const other = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(real.publicKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };
  const app = express();
  app.get('/jwks', (_req, res) => res.json({ keys: [jwk] }));
  const http = await listen(app, 0, '127.0.0.1');
  const issuer = `http://127.0.0.1:${http.port}`;
  const sign = (key: CryptoKey, claims: JWTPayload, audience = 'raddraft') =>
    new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'test-key' }).setIssuer(issuer).setAudience(audience)
      .setIssuedAt().setExpirationTime('5m').sign(key);
  return {
    issuer,
    jwksUrl: `${issuer}/jwks`,
    token: (claims, audience) => sign(real.privateKey, claims, audience),
    unending: (claims, audience = 'raddraft') =>
      new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'test-key' }).setIssuer(issuer).setAudience(audience).setIssuedAt().sign(real.privateKey),
    forged: (claims, audience) => sign(other.privateKey, claims, audience),
    stop: () => http.close(),
  };
}
