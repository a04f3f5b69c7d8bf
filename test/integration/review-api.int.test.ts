import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import path from 'node:path';
import type { DiagnosticReport, Practitioner, Provenance, Task } from '@medplum/fhirtypes';
import { create, search } from '../harness/fhir-queries.js';
import { fixture, serviceEnv, startPeers, type Peers } from '../harness/peers.js';
import { problemsAgainst } from '../harness/profiles.js';
import { startServe, waitForJobs, type ApiJob, type ServeProcess } from '../harness/serve-process.js';
import { startTokenIssuer, type TokenIssuer } from '../harness/token-issuer.js';

jest.setTimeout(120_000);

describe('sign and reject through the API with tokens from the hospital identity provider', () => {
  let peers: Peers;
  let issuer: TokenIssuer;
  let serve: ServeProcess;
  let dataDir: string;
  let jobs: ApiJob[];
  let radiologist: Practitioner & { id: string };
  const studies = [fixture('chest-pa-lat'), fixture('chest-ap-mono1')];

  beforeAll(async () => {
    peers = await startPeers();
    issuer = await startTokenIssuer();
    dataDir = await mkdtemp(path.join(tmpdir(), 'raddraft-review-api-'));
    radiologist = await create<Practitioner>(peers.fhir.url, { resourceType: 'Practitioner', name: [{ family: 'Example', given: ['Ada'] }] });
    await peers.upload(studies);
    serve = await startServe(serviceEnv(peers, dataDir, {
      RADDRAFT_AUTH_ISSUER: issuer.issuer,
      RADDRAFT_AUTH_AUDIENCE: 'raddraft',
      RADDRAFT_AUTH_JWKS_URL: issuer.jwksUrl,
      RADDRAFT_AUTH_SIGNER_ROLE: 'radiologist',
      RADDRAFT_API_TOKEN: randomBytes(32).toString('base64url'),
    }));
    jobs = await waitForJobs(serve, studies.map((s) => s.studyUid), ['reported']);
  });

  afterAll(async () => {
    await serve?.kill('SIGTERM');
    await issuer?.stop();
    await peers?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const reportOf = async (uid: string) => {
    const id = jobs.find((j) => j.studyInstanceUid === uid)!.reportRef!.split('/')[1]!;
    return (await search<DiagnosticReport>(peers.fhir.url, `DiagnosticReport?_id=${id}`))[0]!;
  };
  const claims = () => ({ sub: 'ada', name: 'Dr Ada Example', fhirUser: `https://fhir.hospital.example/Practitioner/${radiologist.id}`, roles: ['radiologist'] });
  const post = (id: string, action: string, body: unknown, token?: string) =>
    serve.api(`/api/reports/${id}/${action}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
  const diagnostics = async (res: Response) => ((await res.json()) as { issue: { diagnostics: string }[] }).issue[0]!.diagnostics;

  it('refuses a forged token, a token for another audience, and no token at all', async () => {
    const report = await reportOf(studies[0]!.studyUid);
    const body = { findings: 'x', impression: 'y', version: report.meta!.versionId };
    const forged = await post(report.id!, 'sign', body, await issuer.forged(claims()));
    expect(forged.status).toBe(401);
    expect(await diagnostics(forged)).toBe('the bearer token was refused: signature verification failed');
    const other = await post(report.id!, 'sign', body, await issuer.token(claims(), 'another-app'));
    expect(other.status).toBe(401);
    expect(await diagnostics(other)).toContain('the bearer token was refused: unexpected "aud" claim value');
    const none = await post(report.id!, 'sign', body);
    expect(none.status).toBe(401);
    expect(await diagnostics(none)).toBe('sign in first: send a bearer token, or use the review pages');
    expect((await reportOf(studies[0]!.studyUid)).status).toBe('partial');
  });

  it('refuses a token that does not name the signer\'s Practitioner, and a body that tries to', async () => {
    const report = await reportOf(studies[0]!.studyUid);
    const anonymous = await post(report.id!, 'sign', { findings: 'x', impression: 'y', version: report.meta!.versionId }, await issuer.token({ sub: 'ada' }));
    expect(anonymous.status).toBe(403);
    expect(await diagnostics(anonymous)).toContain('your sign-in token has no "fhirUser" claim naming your Practitioner record');
    const smuggled = await post(report.id!, 'sign', { findings: 'x', impression: 'y', version: report.meta!.versionId, resultsInterpreter: 'Practitioner/evil' }, await issuer.token(claims()));
    expect(smuggled.status).toBe(400);
    expect(await diagnostics(smuggled)).toBe('the request body is not valid: body must NOT have additional properties');
  });

  it('says someone changed the draft when the reviewed version is stale, and changes nothing', async () => {
    const report = await reportOf(studies[0]!.studyUid);
    const res = await post(report.id!, 'sign', { findings: 'edited', impression: 'edited', version: 'an-older-version' }, await issuer.token(claims()));
    expect(res.status).toBe(409);
    expect(await diagnostics(res)).toBe(
      `Someone changed this draft after you opened it (you reviewed version an-older-version, it is now version ${report.meta!.versionId}). Nothing was saved and your text is kept on the page: reload the draft, compare, and sign again.`,
    );
    expect((await reportOf(studies[0]!.studyUid)).meta!.versionId).toBe(report.meta!.versionId);
  });

  it('turns the FHIR server\'s 412 into the same message when the change lands while raddraft is signing', async () => {
    const report = await reportOf(studies[0]!.studyUid);
    // raddraft's read of the draft is answered late, after another system has updated the report.
    peers.fhir.delayNext(1, 1500, (method, url) => method === 'GET' && url === `DiagnosticReport/${report.id}`);
    const signing = post(report.id!, 'sign', { findings: 'mine', impression: 'mine', version: report.meta!.versionId }, await issuer.token(claims()));
    await new Promise((r) => setTimeout(r, 500));
    const theirs = { ...report, conclusion: 'Edited by the RIS.' };
    const put = await fetch(`${peers.fhir.url}/DiagnosticReport/${report.id}`, {
      method: 'PUT', headers: { 'content-type': 'application/fhir+json', 'if-match': `W/"${report.meta!.versionId}"` }, body: JSON.stringify(theirs),
    });
    expect(put.status).toBe(200);
    const res = await signing;
    expect(res.status).toBe(409);
    expect(await diagnostics(res)).toContain(`Someone changed this draft after you opened it (you reviewed version ${report.meta!.versionId}`);
    const now = await reportOf(studies[0]!.studyUid);
    expect(now).toMatchObject({ status: 'partial', conclusion: 'Edited by the RIS.' });
  });

  it('signs: final report with the signer from the token, a verifier provenance, the task completed, all valid', async () => {
    const report = await reportOf(studies[0]!.studyUid);
    const res = await post(report.id!, 'sign', {
      findings: 'The lungs are clear. Heart size is normal. No pleural effusion.',
      impression: 'No acute cardiopulmonary process.',
      version: report.meta!.versionId,
    }, await issuer.token(claims()));
    expect(res.status).toBe(200);
    const body = (await res.json()) as { status: string; editDistance: number };
    expect(body.status).toBe('final');
    expect(body.editDistance).toBeGreaterThan(0);

    const signed = await reportOf(studies[0]!.studyUid);
    expect(signed.status).toBe('final');
    expect(signed.resultsInterpreter).toEqual([{ reference: `Practitioner/${radiologist.id}`, display: 'Dr Ada Example' }]);
    expect(signed.meta!.security!.map((c) => c.code)).toContain('AIAST');
    expect(Buffer.from(signed.presentedForm![0]!.data!, 'base64').toString()).toContain('No pleural effusion.');
    expect(problemsAgainst(signed, 'raddraft-signed-report')).toEqual([]);

    const provenances = await search<Provenance>(peers.fhir.url, `Provenance?target=DiagnosticReport/${signed.id}/_history/${signed.meta!.versionId}`);
    const signature = provenances.find((p) => p.agent.some((a) => a.type?.coding?.[0]?.code === 'verifier'))!;
    expect(signature.agent.find((a) => a.type?.coding?.[0]?.code === 'verifier')!.who.reference).toBe(`Practitioner/${radiologist.id}`);
    expect(signature.agent.find((a) => a.type?.coding?.[0]?.code === 'author')!.who.reference).toMatch(/^Device\//);
    expect(problemsAgainst(signature, 'raddraft-signature-provenance')).toEqual([]);

    const [task] = await search<Task>(peers.fhir.url, `Task?focus=DiagnosticReport/${signed.id}`);
    expect(task).toMatchObject({ status: 'completed', owner: { reference: `Practitioner/${radiologist.id}` } });
    expect(problemsAgainst(task!, 'raddraft-review-task')).toEqual([]);

    // The same signature sent again (a retry after a lost answer) is accepted and changes nothing.
    const again = await post(signed.id!, 'sign', {
      findings: 'The lungs are clear. Heart size is normal. No pleural effusion.',
      impression: 'No acute cardiopulmonary process.',
      version: report.meta!.versionId,
    }, await issuer.token(claims()));
    expect(again.status).toBe(200);
    expect(await search(peers.fhir.url, `Provenance?target=DiagnosticReport/${signed.id}/_history/${signed.meta!.versionId}`)).toHaveLength(1);
    expect((await reportOf(studies[0]!.studyUid)).meta!.versionId).toBe(signed.meta!.versionId);
  });

  it('refuses to sign a final report again with different text, pointing to a correction, and keeps the signed text', async () => {
    const signed = await reportOf(studies[0]!.studyUid);
    expect(signed.status).toBe('final');
    const res = await post(signed.id!, 'sign', { findings: 'A new finding.', impression: 'Changed my mind.', version: signed.meta!.versionId }, await issuer.token(claims()));
    expect(res.status).toBe(409);
    expect(await diagnostics(res)).toBe(
      `DiagnosticReport/${signed.id} is already signed (final) with different text. Nothing was saved: a signed report is changed by a correction, not by signing it again.`,
    );
    const now = await reportOf(studies[0]!.studyUid);
    expect(now.meta!.versionId).toBe(signed.meta!.versionId);
    expect(Buffer.from(now.presentedForm![0]!.data!, 'base64').toString()).toContain('No pleural effusion.');
    expect(Buffer.from(now.presentedForm![0]!.data!, 'base64').toString()).not.toContain('Changed my mind.');
  });

  it('rejects: the draft is cancelled and its task rejected with the reason', async () => {
    const report = await reportOf(studies[1]!.studyUid);
    const res = await post(report.id!, 'reject', { reason: 'Wrong patient positioning; repeat the study.', version: report.meta!.versionId }, await issuer.token(claims()));
    expect(res.status).toBe(200);
    expect((await reportOf(studies[1]!.studyUid)).status).toBe('cancelled');
    const [task] = await search<Task>(peers.fhir.url, `Task?focus=DiagnosticReport/${report.id}`);
    expect(task).toMatchObject({ status: 'rejected', statusReason: { text: 'Wrong patient positioning; repeat the study.' } });
    expect(problemsAgainst(task!, 'raddraft-review-task')).toEqual([]);
  });

  it('keeps quality figures by model and prompt version', async () => {
    const q = (await (await serve.api('/api/quality', { headers: serve.jobsHeaders })).json()) as { byModel: { model: string; signed: number; rejected: number; signedUnchanged: number; meanEditDistance: number }[] };
    expect(q.byModel).toEqual([expect.objectContaining({ model: 'lingshu-medical-mllm/Lingshu-7B', signed: 1, rejected: 1, signedUnchanged: 0 })]);
    expect(q.byModel[0]!.meanEditDistance).toBeGreaterThan(10);
  });

  it('lets worklists find signed reports with an ordinary FHIR query', async () => {
    const signed = await search<DiagnosticReport>(peers.fhir.url, `DiagnosticReport?status=final,corrected,appended&_security=${encodeURIComponent('http://terminology.hl7.org/CodeSystem/v3-ObservationValue|AIAST')}`);
    expect(signed.map((r) => r.id)).toEqual([(await reportOf(studies[0]!.studyUid)).id]);
    expect(await search(peers.fhir.url, 'Task?code=approve&status=requested')).toHaveLength(0);
  });
});

describe('review pages without sign-in configured', () => {
  let peers: Peers;
  let serve: ServeProcess;
  let dataDir: string;
  const lanAddress = Object.values(networkInterfaces()).flat().find((i) => i?.family === 'IPv4' && !i.internal)?.address;

  beforeAll(async () => {
    peers = await startPeers();
    dataDir = await mkdtemp(path.join(tmpdir(), 'raddraft-review-local-'));
    serve = await startServe(serviceEnv(peers, dataDir, { RADDRAFT_LOCAL_REVIEWER: 'Practitioner/local-1' }));
  });

  afterAll(async () => {
    await serve?.kill('SIGTERM');
    await peers?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('serves the pages on 127.0.0.1 and says on the page that no sign-in is configured', async () => {
    const res = await serve.api('/review');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await res.text()).toContain('No sign-in is configured: these pages are served only on this machine, and you sign as Practitioner/local-1.');
  });

  it('refuses the pages and the sign API to any other address', async () => {
    expect(lanAddress).toBeDefined();
    const page = await fetch(`http://${lanAddress}:${serve.port}/review`);
    expect(page.status).toBe(403);
    expect(await page.text()).toContain('No sign-in is configured, so the review pages are served only to this machine (127.0.0.1).');
    const local = await serve.api('/review');
    const cookie = local.headers.get('set-cookie')!.split(';')[0]!;
    const csrf = /name="csrf-token" content="([^"]+)"/.exec(await local.text())![1]!;
    const sign = await fetch(`http://${lanAddress}:${serve.port}/api/reports/x/sign`, {
      method: 'POST', headers: { 'content-type': 'application/json', cookie, 'x-csrf-token': csrf },
      body: JSON.stringify({ findings: 'x', impression: 'y', version: '1' }),
    });
    expect(sign.status).toBe(401);
    expect(await sign.text()).toContain('a local session is valid only on this machine without sign-in configured');
  });

  it('refuses a change that carries the session cookie but not its CSRF token', async () => {
    const local = await serve.api('/review');
    const cookie = local.headers.get('set-cookie')!.split(';')[0]!;
    const res = await serve.api('/api/reports/x/sign', {
      method: 'POST', headers: { 'content-type': 'application/json', cookie },
      body: JSON.stringify({ findings: 'x', impression: 'y', version: '1' }),
    });
    expect(res.status).toBe(403);
    expect(await res.text()).toContain("the request lacks this session's CSRF token; reload the page and try again");
  });
});
