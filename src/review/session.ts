import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { jwtVerify, SignJWT } from 'jose';

/** What a review session carries: who is signed in (if anyone) and the token that must accompany each change. */
export interface SessionData {
  /** Practitioner/<id> of the signed-in radiologist; absent for a read-only session. */
  practitioner: string | undefined;
  name: string | undefined;
  csrf: string;
  via: 'oidc' | 'local';
  /** For an OIDC session: the issuer and client it was signed in through, and the signer role it was granted under. */
  issuer?: string | undefined;
  clientId?: string | undefined;
  role?: string | undefined;
}

const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export const SESSION_COOKIE = 'raddraft_session';
const SESSION_HOURS = 10;

/**
 * Sessions are HS256-signed cookies: nothing is kept on the server, so any replica with the same key can read
 * them. The key is RADDRAFT_SESSION_SECRET, or one generated once and kept in the data directory.
 */
export class SessionKeeper {
  private constructor(private readonly key: Uint8Array) {}

  static async open(secret: string | undefined, dataDir: string): Promise<SessionKeeper> {
    if (secret) return new SessionKeeper(new TextEncoder().encode(secret));
    const file = path.join(dataDir, 'session.key');
    try {
      return new SessionKeeper(new Uint8Array(await readFile(file)));
    } catch {
      await mkdir(dataDir, { recursive: true });
      const key = randomBytes(32);
      // Another replica may have written it first; theirs is then the key.
      await writeFile(file, key, { mode: 0o600, flag: 'wx' }).catch(() => undefined);
      await chmod(file, 0o600).catch(() => undefined);
      return new SessionKeeper(new Uint8Array(await readFile(file)));
    }
  }

  async seal(data: SessionData, purpose = 'session', hours = SESSION_HOURS): Promise<string> {
    return new SignJWT({ ...data, purpose })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt()
      .setExpirationTime(`${hours}h`)
      .sign(this.key);
  }

  async open(token: string | undefined, purpose = 'session'): Promise<SessionData | undefined> {
    if (!token) return undefined;
    try {
      const { payload } = await jwtVerify(token, this.key, { algorithms: ['HS256'] });
      if (payload.purpose !== purpose || typeof payload.csrf !== 'string') return undefined;
      if (payload.via !== 'oidc' && payload.via !== 'local') return undefined;
      return {
        practitioner: text(payload.practitioner),
        name: text(payload.name),
        csrf: payload.csrf,
        via: payload.via,
        issuer: text(payload.issuer),
        clientId: text(payload.clientId),
        role: text(payload.role),
      };
    } catch {
      return undefined;
    }
  }

  /** Short-lived signed state for the sign-in round trip (PKCE verifier, state, nonce, where to return). */
  async sealState(state: Record<string, string>): Promise<string> {
    return new SignJWT({ ...state, purpose: 'login' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('10m').sign(this.key);
  }

  async openState(token: string | undefined): Promise<Record<string, string> | undefined> {
    if (!token) return undefined;
    try {
      const { payload } = await jwtVerify(token, this.key, { algorithms: ['HS256'] });
      if (payload.purpose !== 'login') return undefined;
      return Object.fromEntries(Object.entries(payload).filter((e): e is [string, string] => typeof e[1] === 'string'));
    } catch {
      return undefined;
    }
  }
}

export function newCsrfToken(): string {
  return randomBytes(24).toString('base64url');
}

/** Reads one cookie from a Cookie header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return decodeURIComponent(part.slice(i + 1).trim());
  }
  return undefined;
}
