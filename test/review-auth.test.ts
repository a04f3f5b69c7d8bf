import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from '../src/config/load.js';
import { bearerToken, sameSecret } from '../src/review/credentials.js';
import { isLoopbackAddress, localRequestProblem } from '../src/review/loopback.js';
import { rolesOf, signerProblem, type SignerPolicy } from '../src/review/signer-policy.js';

const BASE = {
  RADDRAFT_DICOMWEB_URL: 'http://orthanc:8042/dicom-web',
  RADDRAFT_FHIR_URL: 'http://fhir:8080/fhir/R4',
  RADDRAFT_LINGSHU_URL: 'http://vllm:8000/v1',
};
const ISSUER = { RADDRAFT_AUTH_ISSUER: 'https://login.hospital.example/realms/radiology' };
const GOOD_SECRET = 'q3Vx9Lr2TbWm0Zk7Hc4Ns8Pe1Yd6Ua5Gf+Jo/Ri=';

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

describe('bearer tokens', () => {
  it('accepts the scheme in any case, as RFC 7235 requires, and nothing but a bearer token', () => {
    expect(bearerToken('Bearer abc.def')).toBe('abc.def');
    expect(bearerToken('bearer abc.def')).toBe('abc.def');
    expect(bearerToken('BEARER  abc.def ')).toBe('abc.def');
    expect(bearerToken('Basic dXNlcjpwYXNz')).toBeUndefined();
    expect(bearerToken('Bearer')).toBeUndefined();
    expect(bearerToken('Bearer a b')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });

  it('compares secrets of any length without throwing', () => {
    expect(sameSecret('a-token', 'a-token')).toBe(true);
    expect(sameSecret('a-token', 'a-token-longer')).toBe(false);
    expect(sameSecret('', 'a-token')).toBe(false);
    expect(sameSecret(undefined, 'a-token')).toBe(false);
  });
});

describe('requests from this machine without sign-in', () => {
  it('knows the loopback addresses, IPv4-mapped ones included', () => {
    expect(['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1'].map(isLoopbackAddress)).toEqual([true, true, true, true]);
    expect(['192.0.2.2', '::ffff:192.0.2.2', '10.0.0.1', '', undefined].map(isLoopbackAddress)).toEqual([false, false, false, false, false]);
  });

  it('accepts only loopback names with raddraft\'s port as Host', () => {
    for (const host of ['127.0.0.1:8080', 'localhost:8080', 'LOCALHOST:8080', '[::1]:8080']) expect({ host, problem: localRequestProblem(host, undefined, 8080) }).toEqual({ host, problem: undefined });
    expect(localRequestProblem('attacker.example:8080', undefined, 8080)).toBe(
      'No sign-in is configured, so raddraft answers only requests addressed to this machine (http://127.0.0.1:8080 or http://localhost:8080); this one was addressed to "attacker.example:8080".',
    );
    for (const host of ['attacker.example', '127.0.0.1:9999', '127.0.0.1', 'localhost.attacker.example:8080', '127.0.0.1.nip.io:8080', '', undefined]) {
      expect({ host, refused: localRequestProblem(host, undefined, 8080) !== undefined }).toEqual({ host, refused: true });
    }
    expect(localRequestProblem('localhost', undefined, 80)).toBeUndefined();
  });

  it('refuses an Origin that is not raddraft\'s own page', () => {
    expect(localRequestProblem('127.0.0.1:8080', 'http://127.0.0.1:8080', 8080)).toBeUndefined();
    expect(localRequestProblem('127.0.0.1:8080', 'http://localhost:8080', 8080)).toBeUndefined();
    expect(localRequestProblem('127.0.0.1:8080', 'https://attacker.example', 8080)).toBe(
      'No sign-in is configured, so raddraft accepts requests only from its own pages (http://127.0.0.1:8080 or http://localhost:8080); this one came from "https://attacker.example".',
    );
    for (const origin of ['null', 'http://127.0.0.1:9999', 'file://', 'http://attacker.example:8080']) {
      expect({ origin, refused: localRequestProblem('127.0.0.1:8080', origin, 8080) !== undefined }).toEqual({ origin, refused: true });
    }
  });
});

describe('who may sign', () => {
  const byRole: SignerPolicy = { signerRole: 'radiologist', roleClaim: 'roles', signers: undefined };
  const byList: SignerPolicy = { signerRole: undefined, roleClaim: 'roles', signers: ['Practitioner/1'] };

  it('finds the role in the roles claim, in scope, or in a nested claim', () => {
    expect(signerProblem(byRole, { roles: ['radiologist'] }, 'Practitioner/9')).toBeUndefined();
    expect(signerProblem(byRole, { scope: 'openid radiologist' }, 'Practitioner/9')).toBeUndefined();
    expect(signerProblem(byRole, { roles: 'nurse radiologist' }, 'Practitioner/9')).toBeUndefined();
    expect([...rolesOf({ realm_access: { roles: ['radiologist'] } }, 'realm_access.roles')]).toEqual(['radiologist']);
  });

  it('refuses a Practitioner of the identity provider without the role or not on the list, saying which setting decides', () => {
    expect(signerProblem(byRole, { roles: ['nurse'], scope: 'openid' }, 'Practitioner/9')).toBe(
      'your sign-in token does not carry the role "radiologist" that signing needs (in its "roles" claim or scope; RADDRAFT_AUTH_SIGNER_ROLE); ask the identity administrator',
    );
    expect(signerProblem(byRole, { roles: ['radiologist-trainee'] }, 'Practitioner/9')).toBeDefined();
    expect(signerProblem(byList, {}, 'Practitioner/1')).toBeUndefined();
    expect(signerProblem(byList, {}, 'Practitioner/2')).toBe('Practitioner/2 is not among the Practitioners allowed to sign here (RADDRAFT_AUTH_SIGNERS); ask the raddraft administrator');
    expect(signerProblem({ ...byList, signerRole: 'radiologist' }, { roles: ['radiologist'] }, 'Practitioner/2')).toBeDefined();
  });
});

describe('start-up settings that guard signing', () => {
  it('refuses a known placeholder or a short session secret, saying how to generate one', () => {
    expect(problems({ ...BASE, RADDRAFT_SESSION_SECRET: 'change-this-to-a-long-random-string-shared-by-replicas' })).toEqual([
      'RADDRAFT_SESSION_SECRET looks like a placeholder, not a random secret (anyone who knows it could forge review sessions); generate one with: openssl rand -base64 32',
    ]);
    expect(problems({ ...BASE, RADDRAFT_SESSION_SECRET: 'short-key' })).toEqual([
      'RADDRAFT_SESSION_SECRET is too short (9 characters; at least 32 are needed); generate one with: openssl rand -base64 32',
    ]);
    expect(problems({ ...BASE, RADDRAFT_SESSION_SECRET: 'a'.repeat(40) })[0]).toMatch(/^RADDRAFT_SESSION_SECRET looks like a placeholder/);
    expect(problems({ ...BASE, RADDRAFT_SESSION_SECRET: GOOD_SECRET })).toEqual([]);
    expect(problems({ ...BASE, RADDRAFT_API_TOKEN: 'tok' })[0]).toMatch(/^RADDRAFT_API_TOKEN is too short/);
  });

  it('requires an audience with an issuer, taking the client id when none is set', () => {
    expect(problems({ ...BASE, ...ISSUER, RADDRAFT_AUTH_SIGNER_ROLE: 'radiologist' })).toEqual([
      'RADDRAFT_AUTH_AUDIENCE is missing: with RADDRAFT_AUTH_ISSUER set, tokens are accepted only for raddraft\'s audience; set the audience your identity provider puts in raddraft\'s tokens, for example RADDRAFT_AUTH_AUDIENCE=raddraft (or set RADDRAFT_AUTH_CLIENT_ID, which is then the audience)',
    ]);
    const c = loadConfig({ ...BASE, ...ISSUER, RADDRAFT_AUTH_CLIENT_ID: 'raddraft-review', RADDRAFT_PUBLIC_URL: 'https://raddraft.example', RADDRAFT_AUTH_SIGNER_ROLE: 'radiologist' });
    expect(c.auth).toMatchObject({ audience: 'raddraft-review', signerRole: 'radiologist', roleClaim: 'roles', signers: undefined });
  });

  it('requires a signer role or a list of signers with an issuer', () => {
    expect(problems({ ...BASE, ...ISSUER, RADDRAFT_AUTH_AUDIENCE: 'raddraft' })).toEqual([
      'RADDRAFT_AUTH_SIGNER_ROLE or RADDRAFT_AUTH_SIGNERS is missing: with RADDRAFT_AUTH_ISSUER set, raddraft must know who of the identity provider\'s users may sign; for example RADDRAFT_AUTH_SIGNER_ROLE=radiologist (a value the token carries in its roles claim or scope) or RADDRAFT_AUTH_SIGNERS=Practitioner/123,Practitioner/456',
    ]);
    const c = loadConfig({ ...BASE, ...ISSUER, RADDRAFT_AUTH_AUDIENCE: 'raddraft', RADDRAFT_AUTH_SIGNERS: 'Practitioner/1, PractitionerRole/r-2' });
    expect(c.auth?.signers).toEqual(['Practitioner/1', 'PractitionerRole/r-2']);
    expect(problems({ ...BASE, ...ISSUER, RADDRAFT_AUTH_AUDIENCE: 'raddraft', RADDRAFT_AUTH_SIGNERS: 'Patient/1' })).toEqual([
      'RADDRAFT_AUTH_SIGNERS="Patient/1" is not a comma list of Practitioner/<id> references; for example RADDRAFT_AUTH_SIGNERS=Practitioner/123,Practitioner/456',
    ]);
  });

  it('binds to RADDRAFT_HOST, all addresses by default', () => {
    expect(loadConfig(BASE).host).toBe('0.0.0.0');
    expect(loadConfig({ ...BASE, RADDRAFT_HOST: '127.0.0.1' }).host).toBe('127.0.0.1');
    expect(problems({ ...BASE, RADDRAFT_HOST: 'http://x/' })).toEqual(['RADDRAFT_HOST="http://x/" is not an IP address or host name; for example RADDRAFT_HOST=127.0.0.1']);
  });
});
