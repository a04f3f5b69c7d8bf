import { readFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { importJWK, importPKCS8, SignJWT, type CryptoKey, type JWK } from 'jose';
import { networkCause } from '../util/network-cause.js';

export interface SmartBackendAuth {
  clientId: string;
  keyFile: string;
  tokenUrl: string;
}

/** Why a SMART token could not be had, in words an administrator can act on. */
export class SmartAuthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SmartAuthError';
  }
}

async function loadKey(file: string): Promise<{ key: CryptoKey | Uint8Array; alg: string; kid: string | undefined }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new SmartAuthError(`RADDRAFT_FHIR_AUTH: the SMART key file ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    if (text.trimStart().startsWith('{')) {
      const jwk = JSON.parse(text) as JWK;
      const alg = jwk.alg ?? (jwk.kty === 'EC' ? 'ES384' : 'RS384');
      return { key: await importJWK(jwk, alg), alg, kid: jwk.kid };
    }
    const alg = /EC PRIVATE KEY/.test(text) ? 'ES384' : 'RS384';
    return { key: await importPKCS8(text, alg), alg, kid: undefined };
  } catch (err) {
    throw new SmartAuthError(`RADDRAFT_FHIR_AUTH: the SMART key file ${file} is not a PKCS#8 PEM or JWK private key (${(err as Error).message})`);
  }
}

/**
 * SMART Backend Services (client-credentials with a signed JWT assertion, RS384 or ES384). Tokens are cached until
 * a minute before they expire.
 */
export class SmartTokenSource {
  private cached: { token: string; until: number } | undefined;

  constructor(
    private readonly auth: SmartBackendAuth,
    private readonly scope = 'system/DiagnosticReport.cruds system/Provenance.cruds system/Task.cruds system/Device.cruds system/DocumentReference.cruds system/Patient.rs system/ImagingStudy.rs system/ServiceRequest.rs',
  ) {}

  async token(): Promise<string> {
    if (this.cached && this.cached.until > Date.now()) return this.cached.token;
    const { key, alg, kid } = await loadKey(this.auth.keyFile);
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg, typ: 'JWT', ...(kid ? { kid } : {}) })
      .setIssuer(this.auth.clientId)
      .setSubject(this.auth.clientId)
      .setAudience(this.auth.tokenUrl)
      .setJti(randomUUID())
      .setExpirationTime('5m')
      .sign(key);
    const body = new URLSearchParams({
      grant_type: 'client_credentials',
      scope: this.scope,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
    });
    let res: Response;
    try {
      res = await fetch(this.auth.tokenUrl, { method: 'POST', body, signal: AbortSignal.timeout(30_000) });
    } catch (err) {
      throw new SmartAuthError(`SMART token endpoint ${this.auth.tokenUrl} cannot be reached (${networkCause(err)})`);
    }
    const json: unknown = await res.json().catch(() => undefined);
    const token = (json as { access_token?: unknown })?.access_token;
    if (!res.ok || typeof token !== 'string') {
      const error = (json as { error?: unknown })?.error;
      throw new SmartAuthError(`SMART token endpoint ${this.auth.tokenUrl} refused client ${this.auth.clientId} (HTTP ${res.status}${typeof error === 'string' ? `, ${error}` : ''})`);
    }
    const expiresIn = Number((json as { expires_in?: unknown }).expires_in ?? 300);
    this.cached = { token, until: Date.now() + Math.max(0, expiresIn - 60) * 1000 };
    return token;
  }
}
