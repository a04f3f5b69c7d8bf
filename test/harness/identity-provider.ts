import { createServer, type Server } from 'node:https';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Provider from 'oidc-provider';
import { freePort } from '../../src/demo/ports.js';

const run = promisify(execFile);

export interface IdentityProvider {
  issuer: string;
  /** The provider's certificate, to be trusted by raddraft through NODE_EXTRA_CA_CERTS. */
  caFile: string;
  clientId: string;
  clientSecret: string;
  stop(): Promise<void>;
}

/**
 * A real OpenID Connect provider (node-oidc-provider) over HTTPS with a fresh self-signed certificate. Its
 * development login page accepts any user name and password; every account it signs in carries the given
 * `fhirUser` claim and name.
 */
export async function startIdentityProvider(opts: { redirectUri: string; fhirUser: string; name: string }): Promise<IdentityProvider> {
  const dir = await mkdtemp(path.join(tmpdir(), 'raddraft-idp-'));
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
  const port = await freePort();
  const issuer = `https://127.0.0.1:${port}`;
  const clientId = 'raddraft-review';
  const clientSecret = 'a-test-client-secret';
  const provider = new Provider(issuer, {
    clients: [{ client_id: clientId, client_secret: clientSecret, redirect_uris: [opts.redirectUri], grant_types: ['authorization_code'], response_types: ['code'] }],
    findAccount: (_ctx, id) => Promise.resolve({ accountId: id, claims: () => ({ sub: id, name: opts.name, fhirUser: opts.fhirUser }) }),
    claims: { openid: ['sub'], profile: ['name'], fhirUser: ['fhirUser'] },
    scopes: ['openid', 'profile', 'fhirUser'],
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
  });
  const handler = provider.callback();
  const server: Server = createServer({ key: await readFile(key), cert: await readFile(cert) }, (req, res) => void handler(req, res));
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    issuer,
    caFile: cert,
    clientId,
    clientSecret,
    stop: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await rm(dir, { recursive: true, force: true });
    },
  };
}
