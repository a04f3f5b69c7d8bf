import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request, type IncomingHttpHeaders } from 'node:http';
import { networkInterfaces, tmpdir } from 'node:os';
import path from 'node:path';
import { SignJWT } from 'jose';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { DiagnosticReport, Practitioner } from '@medplum/fhirtypes';
import { freePort } from '../../src/demo/ports.js';
import { launchChromium, screenshot } from '../harness/browser.js';
import { create, search } from '../harness/fhir-queries.js';
import { fixture, serviceEnv, startPeers, type Peers } from '../harness/peers.js';
import { runCli, startServe, waitForJobs, type ServeProcess } from '../harness/serve-process.js';
import { startTokenIssuer, type TokenIssuer } from '../harness/token-issuer.js';

jest.setTimeout(240_000);

/** This machine's own non-loopback address: a request sent to it arrives from it, as from another host on the LAN. */
const LAN = Object.values(networkInterfaces()).flat().find((i) => i?.family === 'IPv4' && !i.internal)?.address;

interface Reply { status: number; headers: IncomingHttpHeaders; body: string }

/** A plain HTTP request, so that Host and Origin are exactly what an attacker's browser would send. */
function raw(address: string, port: number, method: string, urlPath: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port, method, path: urlPath, headers, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

const diagnostics = (body: string) => (JSON.parse(body) as { issue?: { diagnostics: string }[] }).issue?.[0]?.diagnostics;

/** A session cookie sealed by someone who knows the session secret (e.g. a value published in a sample file). */
async function sealedCookie(secret: string, data: Record<string, string>): Promise<string> {
  const jwt = await new SignJWT({ ...data, purpose: 'session' }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('1h')
    .sign(new TextEncoder().encode(secret));
  return `raddraft_session=${jwt}`;
}

async function localSession(port: number): Promise<{ cookie: string; csrf: string }> {
  const page = await raw('127.0.0.1', port, 'GET', '/review', { host: `127.0.0.1:${port}` });
  expect(page.status).toBe(200);
  const setCookie = page.headers['set-cookie']?.[0];
  return { cookie: setCookie!.split(';')[0]!, csrf: /name="csrf-token" content="([^"]+)"/.exec(page.body)![1]! };
}

const reportOf = async (peers: Peers, id: string) => (await search<DiagnosticReport>(peers.fhir.url, `DiagnosticReport?_id=${id}`))[0]!;

describe('without sign-in: forged and stale sessions, DNS rebinding and the job API from the network', () => {
  const secret = randomBytes(32).toString('base64');
  const apiToken = randomBytes(32).toString('base64url');
  const study = fixture('chest-pa-lat');
  let peers: Peers;
  let serve: ServeProcess;
  let dataDir: string;
  let port: number;
  let reportId: string;
  let jobId: string;
  let browser: Browser;
  let context: BrowserContext;
  let firstReviewer: { cookie: string; csrf: string };
  let draftFindings: string;

  const start = async (extra: Record<string, string>) => {
    serve = await startServe(serviceEnv(peers, dataDir, { RADDRAFT_PORT: String(port), RADDRAFT_SESSION_SECRET: secret, ...extra }));
  };
  const restart = async (extra: Record<string, string>) => {
    await serve.kill('SIGTERM');
    await start(extra);
  };
  /** A signature of the current version, so that only authentication stands in its way. */
  const sign = async (headers: Record<string, string>) =>
    raw('127.0.0.1', port, 'POST', `/api/reports/${reportId}/sign`, { 'content-type': 'application/json', host: `127.0.0.1:${port}`, ...headers },
      JSON.stringify({ findings: 'Signed by an attacker.', impression: 'Forged.', version: (await reportOf(peers, reportId)).meta!.versionId }));

  beforeAll(async () => {
    expect(LAN).toBeDefined();
    peers = await startPeers();
    dataDir = await mkdtemp(path.join(tmpdir(), 'raddraft-security-local-'));
    port = await freePort();
    await peers.upload([study]);
    await start({ RADDRAFT_LOCAL_REVIEWER: 'Practitioner/local-1' });
    const [job] = await waitForJobs(serve, [study.studyUid], ['reported']);
    jobId = job!.id;
    reportId = job!.reportRef!.split('/')[1]!;
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  });

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await serve?.kill('SIGTERM');
    await peers?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('does not sign with a session cookie sealed as an OIDC sign-in when no sign-in is configured', async () => {
    const csrf = 'known-to-the-attacker';
    const cookie = await sealedCookie(secret, { practitioner: 'Practitioner/anyone', name: 'Forger', csrf, via: 'oidc' });
    const res = await sign({ cookie, 'x-csrf-token': csrf });
    expect({ status: res.status, diagnostics: diagnostics(res.body) }).toEqual({ status: 401, diagnostics: 'this session comes from a sign-in that is not configured here; sign in again' });
    expect((await reportOf(peers, reportId)).status).toBe('partial');
  });

  it('refuses pages, sessions and changes to a request addressed to another host name (DNS rebinding)', async () => {
    const page = await raw('127.0.0.1', port, 'GET', '/review', { host: 'attacker.example' });
    expect(page.status).toBe(403);
    expect(page.body).toContain('No sign-in is configured, so raddraft answers only requests addressed to this machine');
    expect(page.body).toContain('this one was addressed to &quot;attacker.example&quot;');
    expect(page.headers['set-cookie']).toBeUndefined();

    // A session from the real page does not sign when the request is addressed to the attacker's name.
    const { cookie, csrf } = await localSession(port);
    const res = await sign({ cookie, 'x-csrf-token': csrf, host: `attacker.example:${port}` });
    expect(res.status).toBe(401);
    expect(diagnostics(res.body)).toContain(`this one was addressed to "attacker.example:${port}"`);
    const jobs = await raw('127.0.0.1', port, 'GET', '/api/jobs', { host: 'attacker.example' });
    expect(jobs.status).toBe(403);
    expect(jobs.body).not.toContain(study.studyUid);
    const retry = await raw('127.0.0.1', port, 'POST', `/api/jobs/${jobId}/retry`, { host: `127.0.0.1:${port}`, origin: 'http://attacker.example' });
    expect(retry.status).toBe(403);
    expect(diagnostics(retry.body)).toContain('this one came from "http://attacker.example"');
    expect((await reportOf(peers, reportId)).status).toBe('partial');

    // The same requests addressed to this machine are served.
    expect((await raw('127.0.0.1', port, 'GET', '/api/jobs', { host: `localhost:${port}` })).status).toBe(200);
    expect((await raw('127.0.0.1', port, 'GET', '/review', { host: `[::1]:${port}` })).status).toBe(200);
  });

  it('answers the job and quality API to another machine only with a token', async () => {
    for (const [method, url] of [['GET', '/api/jobs'], ['GET', `/api/jobs/${jobId}`], ['GET', '/api/quality'], ['POST', `/api/jobs/${jobId}/retry`]] as const) {
      const res = await raw(LAN!, port, method, url, { host: `${LAN}:${port}` });
      expect({ method, url, status: res.status }).toEqual({ method, url, status: 401 });
      expect(res.body).not.toContain(study.studyUid);
      expect(diagnostics(res.body)).toBe('No sign-in is configured, so the job API answers other machines only with a token: send Authorization: Bearer <RADDRAFT_API_TOKEN>.');
    }
    expect((await raw(LAN!, port, 'GET', '/healthz')).status).toBe(200);
  });

  it('keeps unsaved edits per reviewer in the browser', async () => {
    firstReviewer = await localSession(port);
    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${port}/review/${reportId}`);
    draftFindings = await page.inputValue('#findings');
    expect(await page.getAttribute('body', 'data-user')).toBe('Practitioner/local-1');
    await page.fill('#findings', 'Unsaved edits of the first reviewer.');
    expect(await storedEdits(page)).toEqual([`raddraft:draft:${encodeURIComponent('Practitioner/local-1')}:${reportId}`]);
    await page.close();
  });

  it('does not sign with a local session, nor restore its edits, once RADDRAFT_LOCAL_REVIEWER has changed', async () => {
    await restart({ RADDRAFT_LOCAL_REVIEWER: 'Practitioner/local-2' });
    const res = await sign({ cookie: firstReviewer.cookie, 'x-csrf-token': firstReviewer.csrf });
    expect(res.status).toBe(401);
    expect(diagnostics(res.body)).toBe('this session was opened for another local reviewer (RADDRAFT_LOCAL_REVIEWER has changed since); reload the page');
    expect((await reportOf(peers, reportId)).status).toBe('partial');

    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${port}/review/${reportId}`);
    expect(await page.getAttribute('body', 'data-user')).toBe('Practitioner/local-2');
    expect(await page.inputValue('#findings')).toBe(draftFindings);
    expect(await page.textContent('#outcome')).toBe('');
    await page.fill('#impression', 'Unsaved edits of the second reviewer.');
    expect(await storedEdits(page)).toHaveLength(2);

    // Signing out forgets every unsaved edit this browser kept.
    await page.click('#sign-out');
    await page.waitForURL(`http://127.0.0.1:${port}/review/signed-out`, { timeout: 15_000 });
    expect(await storedEdits(page)).toEqual([]);
    expect(await page.textContent('main')).toContain('You are signed out of raddraft');
    await screenshot(page, 'signed-out');
    await page.close();
  });

  it('does not sign with a local session once RADDRAFT_LOCAL_REVIEWER is removed, and takes RADDRAFT_API_TOKEN from anywhere, in any case of "Bearer"', async () => {
    await restart({ RADDRAFT_API_TOKEN: apiToken });
    const res = await sign({ cookie: firstReviewer.cookie, 'x-csrf-token': firstReviewer.csrf });
    expect(res.status).toBe(401);
    expect((await reportOf(peers, reportId)).status).toBe('partial');

    const jobs = await raw(LAN!, port, 'GET', '/api/jobs', { host: `${LAN}:${port}`, authorization: `bearer ${apiToken}` });
    expect(jobs.status).toBe(200);
    expect(jobs.body).toContain(study.studyUid);
    const wrong = await raw(LAN!, port, 'GET', '/api/jobs', { authorization: `Bearer ${apiToken.slice(0, -1)}x` });
    expect(wrong.status).toBe(401);
    // The automation token reads and requeues jobs; it never signs.
    const signing = await raw(LAN!, port, 'POST', `/api/reports/${reportId}/sign`, { 'content-type': 'application/json', authorization: `Bearer ${apiToken}` }, JSON.stringify({ findings: 'x', impression: 'y', version: '1' }));
    expect(signing.status).toBe(401);
    expect((await reportOf(peers, reportId)).status).toBe('partial');
  });

  it('listens only on the address RADDRAFT_HOST names', async () => {
    await restart({ RADDRAFT_HOST: '127.0.0.1', RADDRAFT_LOCAL_REVIEWER: 'Practitioner/local-1' });
    expect((await raw('127.0.0.1', port, 'GET', '/healthz')).status).toBe(200);
    await expect(raw(LAN!, port, 'GET', '/healthz')).rejects.toThrow(/ECONNREFUSED/);
  });
});

async function storedEdits(page: Page): Promise<string[]> {
  return page.evaluate("Object.keys(localStorage).filter((k) => k.startsWith('raddraft:draft:'))");
}

describe('with sign-in configured: audience, expiry, signer role, sessions and the job API', () => {
  const secret = randomBytes(32).toString('base64');
  const apiToken = randomBytes(32).toString('base64url');
  const studies = [fixture('chest-pa-lat'), fixture('chest-ap-mono1')];
  const CLIENT = 'raddraft-review';
  let peers: Peers;
  let issuer: TokenIssuer;
  let serve: ServeProcess;
  let dataDir: string;
  let reportIds: string[];
  let radiologist: Practitioner & { id: string };

  beforeAll(async () => {
    peers = await startPeers();
    issuer = await startTokenIssuer();
    dataDir = await mkdtemp(path.join(tmpdir(), 'raddraft-security-oidc-'));
    radiologist = await create<Practitioner>(peers.fhir.url, { resourceType: 'Practitioner', name: [{ family: 'Example', given: ['Ada'] }] });
    await peers.upload(studies);
    const port = await freePort();
    serve = await startServe(serviceEnv(peers, dataDir, {
      RADDRAFT_PORT: String(port),
      RADDRAFT_PUBLIC_URL: `http://127.0.0.1:${port}`,
      RADDRAFT_AUTH_ISSUER: issuer.issuer,
      RADDRAFT_AUTH_JWKS_URL: issuer.jwksUrl,
      RADDRAFT_AUTH_CLIENT_ID: CLIENT,
      RADDRAFT_AUTH_SIGNER_ROLE: 'radiologist',
      RADDRAFT_SESSION_SECRET: secret,
      RADDRAFT_API_TOKEN: apiToken,
    }));
    const jobs = await waitForJobs(serve, studies.map((s) => s.studyUid), ['reported']);
    reportIds = studies.map((s) => jobs.find((j) => j.studyInstanceUid === s.studyUid)!.reportRef!.split('/')[1]!);
  });

  afterAll(async () => {
    await serve?.kill('SIGTERM');
    await issuer?.stop();
    await peers?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const claims = (extra: Record<string, unknown> = {}) => ({ sub: 'ada', name: 'Dr Ada Example', fhirUser: `Practitioner/${radiologist.id}`, ...extra });
  const post = async (id: string, headers: Record<string, string>) => {
    const res = await serve.api(`/api/reports/${id}/sign`, {
      method: 'POST', headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ findings: 'The lungs are clear.', impression: 'No acute disease.', version: (await reportOf(peers, id)).meta!.versionId }),
    });
    return { status: res.status, diagnostics: diagnostics(await res.text()) };
  };

  it('refuses a token for another audience although RADDRAFT_AUTH_AUDIENCE is unset (the client id is the audience)', async () => {
    const res = await post(reportIds[0]!, { authorization: `Bearer ${await issuer.token(claims({ roles: ['radiologist'] }), 'another-app')}` });
    expect(res).toEqual({ status: 401, diagnostics: 'the bearer token was refused: unexpected "aud" claim value' });
    expect((await reportOf(peers, reportIds[0]!)).status).toBe('partial');
  });

  it('refuses a token without an expiry', async () => {
    const res = await post(reportIds[0]!, { authorization: `Bearer ${await issuer.unending(claims({ roles: ['radiologist'] }), CLIENT)}` });
    expect(res).toEqual({ status: 401, diagnostics: 'the bearer token was refused: missing required "exp" claim' });
  });

  it('refuses a Practitioner of the identity provider who lacks the signer role', async () => {
    const res = await post(reportIds[0]!, { authorization: `Bearer ${await issuer.token(claims({ roles: ['nurse'], scope: 'openid fhirUser' }), CLIENT)}` });
    expect(res.status).toBe(403);
    expect(res.diagnostics).toContain('your sign-in token does not carry the role "radiologist" that signing needs');
    expect((await reportOf(peers, reportIds[0]!)).status).toBe('partial');
  });

  it('refuses session cookies from another issuer or client, and local sessions', async () => {
    const csrf = 'known-to-the-attacker';
    const base = { practitioner: `Practitioner/${radiologist.id}`, name: 'Forger', csrf, role: 'radiologist' };
    const otherIssuer = await sealedCookie(secret, { ...base, via: 'oidc', issuer: 'https://attacker.example', clientId: CLIENT });
    expect(await post(reportIds[0]!, { cookie: otherIssuer, 'x-csrf-token': csrf })).toEqual({
      status: 401, diagnostics: 'this session was signed in through another identity provider or client than the one configured now; sign in again',
    });
    const otherClient = await sealedCookie(secret, { ...base, via: 'oidc', issuer: issuer.issuer, clientId: 'another-app' });
    expect((await post(reportIds[0]!, { cookie: otherClient, 'x-csrf-token': csrf })).status).toBe(401);
    const local = await sealedCookie(secret, { ...base, via: 'local' });
    expect(await post(reportIds[0]!, { cookie: local, 'x-csrf-token': csrf })).toEqual({ status: 401, diagnostics: 'a local session is valid only on this machine without sign-in configured' });
    expect((await reportOf(peers, reportIds[0]!)).status).toBe('partial');
  });

  it('signs with a token for raddraft that carries the signer role, under a lower-case "bearer" scheme', async () => {
    const res = await post(reportIds[0]!, { authorization: `bearer ${await issuer.token(claims({ roles: ['radiologist'] }), CLIENT)}` });
    expect(res.status).toBe(200);
    const signed = await reportOf(peers, reportIds[0]!);
    expect(signed).toMatchObject({ status: 'final', resultsInterpreter: [{ reference: `Practitioner/${radiologist.id}` }] });
  });

  it('asks for a token or session on the job API even from this machine', async () => {
    const anonymous = await serve.api('/api/jobs');
    expect(anonymous.status).toBe(401);
    const text = await anonymous.text();
    expect(text).not.toContain(studies[0]!.studyUid);
    expect(diagnostics(text)).toBe('sign in first: send a bearer token (from the sign-in issuer, or RADDRAFT_API_TOKEN), or use the review pages');
    expect((await serve.api('/api/quality')).status).toBe(401);
    expect((await serve.api('/api/jobs', { headers: { authorization: `Bearer ${apiToken}` } })).status).toBe(200);
    expect((await serve.api('/api/jobs', { headers: { authorization: `Bearer ${await issuer.token(claims({ scope: 'openid radiologist' }), CLIENT)}` } })).status).toBe(200);
    expect((await serve.api('/api/jobs', { headers: { authorization: `Bearer ${await issuer.token(claims({ roles: ['nurse'] }), CLIENT)}` } })).status).toBe(403);
    // The token lets the retry through to its own check: the job is not failed, so it is not requeued.
    const jobs = (await (await serve.api('/api/jobs', { headers: serve.jobsHeaders })).json()) as { jobs: { id: string }[] };
    const retry = await serve.api(`/api/jobs/${jobs.jobs[0]!.id}/retry`, { method: 'POST', headers: { authorization: `Bearer ${apiToken}` } });
    expect(retry.status).toBe(409);
    expect((await serve.api('/healthz')).status).toBe(200);
    expect((await serve.api('/metrics')).status).toBe(200);
  });
});

describe('start-up with unsafe sign-in settings', () => {
  it('refuses to start with a placeholder session secret, no audience and no signer rule, naming each setting', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'raddraft-security-config-'));
    const cli = runCli(['serve'], {
      RADDRAFT_DICOMWEB_URL: 'http://127.0.0.1:9/dicom-web', RADDRAFT_FHIR_URL: 'http://127.0.0.1:9/fhir', RADDRAFT_LINGSHU_URL: 'http://127.0.0.1:9/v1',
      RADDRAFT_DATA_DIR: dataDir, RADDRAFT_PORT: '0', RADDRAFT_HOST: '127.0.0.1',
      RADDRAFT_AUTH_ISSUER: 'https://login.hospital.example/realms/radiology',
      RADDRAFT_SESSION_SECRET: 'change-this-to-a-long-random-string-shared-by-replicas',
    });
    const timer = setTimeout(() => cli.child.kill('SIGKILL'), 30_000);
    const code = await cli.exited;
    clearTimeout(timer);
    await rm(dataDir, { recursive: true, force: true });
    expect(code).toBe(78);
    const out = cli.output();
    expect(out).toContain('RADDRAFT_AUTH_AUDIENCE is missing');
    expect(out).toContain('RADDRAFT_AUTH_SIGNER_ROLE or RADDRAFT_AUTH_SIGNERS is missing');
    expect(out).toContain('RADDRAFT_SESSION_SECRET looks like a placeholder, not a random secret (anyone who knows it could forge review sessions); generate one with: openssl rand -base64 32');
    expect(out).not.toContain('change-this-to-a-long-random-string');
  });
});
