import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Bundle, DiagnosticReport, Practitioner, Provenance } from '@medplum/fhirtypes';
import { create, search } from '../harness/fhir-queries.js';
import { fixture, serviceEnv, startPeers, type Peers } from '../harness/peers.js';
import { startServe, waitForJobs, type ApiJob, type ServeProcess } from '../harness/serve-process.js';
import { startTokenIssuer, type TokenIssuer } from '../harness/token-issuer.js';

jest.setTimeout(120_000);

const text = (r: DiagnosticReport, i = 0) => Buffer.from(r.presentedForm![i]!.data!, 'base64').toString('utf8');

describe('a signed report corrected and given an addendum through the API', () => {
  let peers: Peers;
  let issuer: TokenIssuer;
  let serve: ServeProcess;
  let dataDir: string;
  let jobs: ApiJob[];
  let radiologist: Practitioner & { id: string };
  let colleague: Practitioner & { id: string };
  let signedVersion: string;
  const study = fixture('chest-pa-lat');

  beforeAll(async () => {
    peers = await startPeers();
    issuer = await startTokenIssuer();
    dataDir = await mkdtemp(path.join(tmpdir(), 'raddraft-lifecycle-'));
    radiologist = await create<Practitioner>(peers.fhir.url, { resourceType: 'Practitioner', name: [{ family: 'Example', given: ['Ada'] }] });
    colleague = await create<Practitioner>(peers.fhir.url, { resourceType: 'Practitioner', name: [{ family: 'Example', given: ['Ben'] }] });
    await peers.upload([study]);
    serve = await startServe(serviceEnv(peers, dataDir, {
      RADDRAFT_AUTH_ISSUER: issuer.issuer,
      RADDRAFT_AUTH_AUDIENCE: 'raddraft',
      RADDRAFT_AUTH_JWKS_URL: issuer.jwksUrl,
      RADDRAFT_AUTH_SIGNER_ROLE: 'radiologist',
      RADDRAFT_API_TOKEN: randomBytes(32).toString('base64url'),
    }));
    jobs = await waitForJobs(serve, [study.studyUid], ['reported']);
  });

  afterAll(async () => {
    await serve?.kill('SIGTERM');
    await issuer?.stop();
    await peers?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const reportId = () => jobs.find((j) => j.studyInstanceUid === study.studyUid)!.reportRef!.split('/')[1]!;
  const current = async () => (await search<DiagnosticReport>(peers.fhir.url, `DiagnosticReport?_id=${reportId()}`))[0]!;
  const tokenFor = (who: Practitioner & { id: string }, name: string) =>
    issuer.token({ sub: who.id, name, fhirUser: `https://fhir.hospital.example/Practitioner/${who.id}`, roles: ['radiologist'] });
  const post = async (action: string, body: unknown, token: string) =>
    serve.api(`/api/reports/${reportId()}/${action}`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body),
    });
  const diagnostics = async (res: Response) => ((await res.json()) as { issue: { diagnostics: string }[] }).issue[0]!.diagnostics;
  const history = async () => {
    const res = await fetch(`${peers.fhir.url}/DiagnosticReport/${reportId()}/_history`);
    return ((await res.json()) as Bundle<DiagnosticReport>).entry!.map((e) => e.resource!);
  };
  /** Provenances point at versions of the report: those of every version in its history. */
  const provenances = async () => {
    const targets = [`DiagnosticReport/${reportId()}`, ...(await history()).map((v) => `DiagnosticReport/${reportId()}/_history/${v.meta!.versionId}`)];
    return (await Promise.all(targets.map((t) => search<Provenance>(peers.fhir.url, `Provenance?target=${t}`)))).flat();
  };
  const verifierProvenances = async () => (await provenances()).filter((p) => p.agent.some((a) => a.type?.coding?.[0]?.code === 'verifier'));

  it('refuses a correction of a draft nobody has signed, pointing to signing', async () => {
    const draft = await current();
    const res = await post('correct', { findings: 'x', impression: 'y', reason: 'typo', version: draft.meta!.versionId }, await tokenFor(radiologist, 'Dr Ada Example'));
    expect(res.status).toBe(409);
    expect(await diagnostics(res)).toBe(`DiagnosticReport/${reportId()} is ${draft.status}; only a signed report can be corrected: sign the draft instead`);
  });

  it('corrects a signed report: status corrected, a second verifier provenance, both versions in the history', async () => {
    const draft = await current();
    const signed = await post('sign', { findings: 'Lungs are clear.', impression: 'Normal chest.', version: draft.meta!.versionId }, await tokenFor(radiologist, 'Dr Ada Example'));
    expect(signed.status).toBe(200);
    signedVersion = (await current()).meta!.versionId!;

    const res = await post('correct', {
      findings: 'Lungs are clear. Small left pleural effusion.', impression: 'Small left pleural effusion.', reason: 'Effusion missed at first reading', version: signedVersion,
    }, await tokenFor(colleague, 'Dr Ben Example'));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'corrected', reportRef: `DiagnosticReport/${reportId()}` });

    const corrected = await current();
    expect(corrected.status).toBe('corrected');
    expect(corrected.conclusion).toBe('Small left pleural effusion.');
    expect(corrected.resultsInterpreter).toEqual([{ reference: `Practitioner/${colleague.id}`, display: 'Dr Ben Example' }]);
    expect(text(corrected)).toContain('CORRECTED by Dr Ben Example');
    expect(text(corrected)).toContain('Reason: Effusion missed at first reading');

    const versions = await history();
    const signedOne = versions.find((v) => v.meta!.versionId === signedVersion)!;
    expect(signedOne.status).toBe('final');
    expect(text(signedOne)).toContain('Lungs are clear.');
    expect(text(signedOne)).not.toContain('effusion');
    expect(versions.some((v) => v.meta!.versionId === corrected.meta!.versionId && v.status === 'corrected')).toBe(true);

    const verifiers = await verifierProvenances();
    expect(verifiers.map((p) => p.agent.find((a) => a.type?.coding?.[0]?.code === 'verifier')!.who.reference).sort())
      .toEqual([`Practitioner/${radiologist.id}`, `Practitioner/${colleague.id}`].sort());
    const correction = verifiers.find((p) => p.entity?.some((e) => e.role === 'revision' && e.what.reference === `DiagnosticReport/${reportId()}/_history/${signedVersion}`))!;
    expect(correction.target).toEqual([{ reference: `DiagnosticReport/${reportId()}/_history/${corrected.meta!.versionId}` }]);
    expect(correction.reason).toContainEqual({ text: 'Effusion missed at first reading' });
  });

  it('answers a correction sent again (its answer lost) as before, and makes no second version', async () => {
    const before = await current();
    const res = await post('correct', {
      findings: 'Lungs are clear. Small left pleural effusion.', impression: 'Small left pleural effusion.', reason: 'Effusion missed at first reading', version: signedVersion,
    }, await tokenFor(colleague, 'Dr Ben Example'));
    expect(res.status).toBe(200);
    expect((await current()).meta!.versionId).toBe(before.meta!.versionId);
    expect(await verifierProvenances()).toHaveLength(2);
  });

  it('refuses to sign a corrected report again with other text, pointing to a correction', async () => {
    const now = await current();
    const res = await post('sign', { findings: 'Other.', impression: 'Other.', version: now.meta!.versionId }, await tokenFor(radiologist, 'Dr Ada Example'));
    expect(res.status).toBe(409);
    expect(await diagnostics(res)).toContain('a signed report is changed by a correction, not by signing it again');
  });

  it('appends an addendum: status appended, the corrected text unchanged, the addendum after it, its own verifier provenance', async () => {
    const before = await current();
    const res = await post('addendum', { addendum: 'Compared with the prior study: effusion is new.', reason: 'Prior study became available', version: before.meta!.versionId }, await tokenFor(radiologist, 'Dr Ada Example'));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'appended' });
    const appended = await current();
    expect(appended.status).toBe('appended');
    expect(appended.conclusion).toBe(before.conclusion);
    expect(text(appended)).toContain('Lungs are clear. Small left pleural effusion.');
    expect(text(appended)).toMatch(/ADDENDUM 1:\nCompared with the prior study: effusion is new\./);
    expect(appended.resultsInterpreter!.map((r) => r.reference)).toEqual([`Practitioner/${colleague.id}`, `Practitioner/${radiologist.id}`]);
    expect(await verifierProvenances()).toHaveLength(3);
  });

  it('refuses a correction made on a version that is no longer current, and changes nothing', async () => {
    const now = await current();
    const res = await post('correct', { findings: 'a', impression: 'b', reason: 'stale edit', version: '1' }, await tokenFor(radiologist, 'Dr Ada Example'));
    expect(res.status).toBe(409);
    expect(await diagnostics(res)).toContain(`you reviewed version 1, it is now version ${now.meta!.versionId}`);
    expect((await current()).meta!.versionId).toBe(now.meta!.versionId);
  });

  it('refuses a correction without a reason', async () => {
    const now = await current();
    const res = await post('correct', { findings: 'a', impression: 'b', version: now.meta!.versionId }, await tokenFor(radiologist, 'Dr Ada Example'));
    expect(res.status).toBe(400);
    expect(await diagnostics(res)).toBe("the request body is not valid: body must have required property 'reason'");
  });
});
