import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AuditEvent, Bundle, Device, DiagnosticReport, Practitioner, Provenance, Task } from '@medplum/fhirtypes';
import { waitFor } from '../../src/demo/ports.js';
import { DicomWebClient } from '../../src/dicom/dicomweb.js';
import { PacsSource } from '../../src/dicom/study-source.js';
import { FhirGateway } from '../../src/fhir/client.js';
import { fhirOutput } from '../../src/outputs/fhir.js';
import type { DraftedEvent } from '../../src/report/report.js';
import { stowFiles } from '../../src/demo/stow.js';
import { cloneStudies } from '../harness/dcmtk.js';
import { problemsAgainst } from '../harness/profiles.js';
import { schemaProblems, unmetInvariants } from '../harness/second-validators.js';
import { create, search } from '../harness/fhir-queries.js';
import { fixture, serviceEnv, startPeers, type Peers } from '../harness/peers.js';
import { startServe, waitForJobs, type ApiJob, type ServeProcess } from '../harness/serve-process.js';
import { startTokenIssuer, type TokenIssuer } from '../harness/token-issuer.js';

jest.setTimeout(120_000);

const text = (r: DiagnosticReport, i = 0) => Buffer.from(r.presentedForm![i]!.data!, 'base64').toString('utf8');

// One FHIR server and Orthanc for the file; raddraft runs twice on the same data directory, first with sign-in by
// bearer tokens (two radiologists), then restarted with a local reviewer for the review page.
let peers: Peers;
let dataDir: string;

beforeAll(async () => {
  // Compiling the FHIR R4 JSON schema takes seconds of CPU: done before any server is listening in this process.
  schemaProblems({ resourceType: 'AuditEvent' } as AuditEvent);
  peers = await startPeers();
  dataDir = await mkdtemp(path.join(tmpdir(), 'raddraft-lifecycle-'));
});

afterAll(async () => {
  await peers?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

const historyOf = async (id: string) => {
  const res = await fetch(`${peers.fhir.url}/DiagnosticReport/${id}/_history`);
  return ((await res.json()) as Bundle<DiagnosticReport>).entry!.map((e) => e.resource!);
};
/** Provenances point at versions of the report: those of every version in its history. */
const provenancesOf = async (id: string) => {
  const targets = [`DiagnosticReport/${id}`, ...(await historyOf(id)).map((v) => `DiagnosticReport/${id}/_history/${v.meta!.versionId}`)];
  return (await Promise.all(targets.map((t) => search<Provenance>(peers.fhir.url, `Provenance?target=${t}`)))).flat();
};
const auditsOf = async (id: string) =>
  (await search<AuditEvent>(peers.fhir.url, 'AuditEvent?_count=500')).filter((a) => a.entity?.some((e) => e.what?.reference?.startsWith(`DiagnosticReport/${id}`)));
/** The first version of a report: the AI's own (version ids need not be numbers; the times say the order). */
const aiVersionOf = async (id: string) => (await historyOf(id)).sort((a, b) => Date.parse(a.meta!.lastUpdated!) - Date.parse(b.meta!.lastUpdated!))[0]!;

describe('a signed report corrected and given an addendum through the API', () => {
  let issuer: TokenIssuer;
  let serve: ServeProcess;
  let jobs: ApiJob[];
  let radiologist: Practitioner & { id: string };
  let colleague: Practitioner & { id: string };
  let signedVersion: string;
  const study = fixture('chest-pa-lat');

  beforeAll(async () => {
    issuer = await startTokenIssuer();
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
  const history = () => historyOf(reportId());
  const verifierProvenances = async () => (await provenancesOf(reportId())).filter((p) => p.agent.some((a) => a.type?.coding?.[0]?.code === 'verifier'));

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
    // The signature points at the signed version and names the AI's version as the one it revises.
    const aiVersion = (await aiVersionOf(reportId())).meta!.versionId!;
    const [signature] = await verifierProvenances();
    expect(signature!.target).toEqual([{ reference: `DiagnosticReport/${reportId()}/_history/${signedVersion}` }]);
    expect(signature!.entity).toEqual([{ role: 'revision', what: { reference: `DiagnosticReport/${reportId()}/_history/${aiVersion}`, display: 'the AI-generated draft' } }]);
    expect(problemsAgainst(signature!, 'raddraft-signature-provenance')).toEqual([]);
    expect(unmetInvariants(signature!, 'raddraft-signature-provenance')).toEqual([]);

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
    expect(unmetInvariants(correction, 'raddraft-signature-provenance')).toEqual([]);
    expect(problemsAgainst(corrected, 'raddraft-signed-report')).toEqual([]);
    expect(unmetInvariants(corrected, 'raddraft-signed-report')).toEqual([]);
    expect(schemaProblems(corrected)).toEqual([]);
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

  it('audits the draft, the signature, the correction and the addendum, each once, as IHE BALP AuditEvents', async () => {
    const audits = await auditsOf(reportId());
    const byAction = (kind: string) => audits.filter((a) => a.meta?.tag?.some((t) => t.code?.startsWith(`${kind}-`)));
    expect(byAction('drafted')).toHaveLength(1);
    expect(byAction('signed')).toHaveLength(1);
    expect(byAction('corrected')).toHaveLength(2);
    const signed = byAction('signed')[0]!;
    expect(signed).toMatchObject({ action: 'U', subtype: [{ code: 'update' }], meta: { profile: ['https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientUpdate'] } });
    expect(signed.agent.find((a) => a.requestor)!.who).toEqual({ reference: `Practitioner/${radiologist.id}`, display: 'Dr Ada Example' });
    expect(signed.entity!.map((e) => e.role?.code)).toEqual(['4', '1']);
    expect(byAction('drafted')[0]!.agent.find((a) => a.requestor)!.who!.reference).toMatch(/^Device\//);
    for (const a of audits) expect(schemaProblems(a)).toEqual([]);
  });

  it('refuses a correction made on a version that is no longer current, and changes nothing', async () => {
    const now = await current();
    const res = await post('correct', { findings: 'a', impression: 'b', reason: 'stale edit', version: '1' }, await tokenFor(radiologist, 'Dr Ada Example'));
    expect(res.status).toBe(409);
    expect(await diagnostics(res)).toContain(`you reviewed version 1, it is now version ${now.meta!.versionId}`);
    expect((await current()).meta!.versionId).toBe(now.meta!.versionId);
  });

  it('refuses a correction or addendum without a token, and one whose text is over the limit', async () => {
    const now = await current();
    const anonymous = await serve.api(`/api/reports/${reportId()}/correct`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ findings: 'a', impression: 'b', reason: 'why not', version: now.meta!.versionId }),
    });
    expect(anonymous.status).toBe(401);
    const huge = await post('addendum', { addendum: 'x'.repeat(20_001), reason: 'too long', version: now.meta!.versionId }, await tokenFor(radiologist, 'Dr Ada Example'));
    expect(huge.status).toBe(400);
    expect(await diagnostics(huge)).toBe('the request body is not valid: addendum must NOT have more than 20000 characters');
    expect((await current()).meta!.versionId).toBe(now.meta!.versionId);
  });

  it('refuses a correction without a reason', async () => {
    const now = await current();
    const res = await post('correct', { findings: 'a', impression: 'b', version: now.meta!.versionId }, await tokenFor(radiologist, 'Dr Ada Example'));
    expect(res.status).toBe(400);
    expect(await diagnostics(res)).toBe("the request body is not valid: body must have required property 'reason'");
  });
});

describe('raddraft restarted with a local reviewer: drafts, the review page, rejection, and a study it cannot attach to a patient', () => {
  let serve: ServeProcess;
  let jobs: ApiJob[];
  let noPatient: string;
  let cloneDir: string;
  const study = fixture('chest-ap-mono1');
  const reviewer = 'Practitioner/local-reader';

  beforeAll(async () => {
    cloneDir = await mkdtemp(path.join(tmpdir(), 'raddraft-lifecycle-nopid-'));
    // The same image without a Patient ID (and with fresh UIDs), so nothing can say whose it is.
    const [clone] = await cloneStudies(study.files[0]!, 1, cloneDir, ['(0010,0020)=']);
    noPatient = clone!.studyUid;
    await peers.upload([study]);
    await stowFiles(peers.orthanc.dicomWebUrl, [clone!.file]);
    serve = await startServe(serviceEnv(peers, dataDir, { RADDRAFT_LOCAL_REVIEWER: reviewer }));
    jobs = await waitForJobs(serve, [study.studyUid], ['reported']);
  });

  afterAll(async () => {
    await serve?.kill('SIGTERM');
    await rm(cloneDir, { recursive: true, force: true });
  });

  const reportId = () => jobs.find((j) => j.studyInstanceUid === study.studyUid)!.reportRef!.split('/')[1]!;
  const current = async () => (await search<DiagnosticReport>(peers.fhir.url, `DiagnosticReport?_id=${reportId()}`))[0]!;
  const taskOf = async () => (await search<Task>(peers.fhir.url, `Task?focus=DiagnosticReport/${reportId()}`))[0]!;
  const session = async () => {
    const page = await serve.api('/review');
    return { cookie: page.headers.get('set-cookie')!.split(';')[0]!, csrf: /name="csrf-token" content="([^"]+)"/.exec(await page.text())![1]! };
  };

  it('posts the draft as partial (unverified), its AI provenance on that version with every input, valid by three validators', async () => {
    const draft = await current();
    expect(draft.status).toBe('partial');
    expect(problemsAgainst(draft, 'raddraft-draft-report')).toEqual([]);
    expect(unmetInvariants(draft, 'raddraft-draft-report')).toEqual([]);
    expect(schemaProblems(draft)).toEqual([]);
    const [ai] = await search<Provenance>(peers.fhir.url, `Provenance?target=DiagnosticReport/${reportId()}/_history/${draft.meta!.versionId}`);
    expect(ai!.entity!.map((e) => e.role)).toEqual(['source', 'source', 'derivation', 'derivation']);
    expect(ai!.entity!.map((e) => e.what.display ?? e.what.reference)).toEqual([
      'DICOM study', expect.stringMatching(/^<image_1> AP \d+x\d+ PNG sha256:[0-9a-f]{64}$/), 'prompt medevalkit-report-1', 'model card',
    ]);
    expect(problemsAgainst(ai!, 'raddraft-ai-provenance')).toEqual([]);
    expect(unmetInvariants(ai!, 'raddraft-ai-provenance')).toEqual([]);
    const device = (await search<Device>(peers.fhir.url, `Device?_id=${ai!.agent[0]!.who.reference!.split('/')[1]}`))[0]!;
    // The stand-in answers GET /v1/models with `root` as vLLM does: the model's revision.
    expect(device.version).toEqual([{ value: 'lingshu-medical-mllm/Lingshu-7B' }]);
    expect(unmetInvariants(device, 'raddraft-ai-device')).toEqual([]);
    expect((await taskOf()).status).toBe('requested');
  });

  it('takes up the review task when the reviewer opens the draft, and audits the opening', async () => {
    const page = await serve.api(`/review/${reportId()}`);
    expect(page.status).toBe(200);
    expect(await taskOf()).toMatchObject({ status: 'in-progress', owner: { reference: reviewer } });
    const opened = (await auditsOf(reportId())).filter((a) => a.action === 'R');
    expect(opened).toHaveLength(1);
    expect(opened[0]!.agent.find((a) => a.requestor)!.who).toMatchObject({ reference: reviewer });
    // The worklist still lists a draft someone has opened.
    expect(await (await serve.api('/review', { headers: { cookie: (await session()).cookie } })).text()).toContain(reportId());
  });

  it('rejects: no AI text left in the current version, a rejection provenance, the task rejected, audited', async () => {
    const draft = await current();
    const aiText = [draft.conclusion!, ...Buffer.from(draft.presentedForm![0]!.data!, 'base64').toString().split('\n').filter((l) => l.length > 20 && !/raddraft|AI-GENERATED|UNVERIFIED|reviewed/i.test(l))];
    expect(aiText.length).toBeGreaterThan(1);
    const { cookie, csrf } = await session();
    const res = await serve.api(`/api/reports/${reportId()}/reject`, {
      method: 'POST', headers: { 'content-type': 'application/json', cookie, 'x-csrf-token': csrf },
      body: JSON.stringify({ reason: 'Motion artefact; repeat the radiograph.', version: draft.meta!.versionId }),
    });
    expect(res.status).toBe(200);
    const rejected = await current();
    expect(rejected.status).toBe('cancelled');
    expect(rejected.conclusion).toBeUndefined();
    const everything = JSON.stringify(rejected) + rejected.presentedForm!.map((a) => Buffer.from(a.data!, 'base64').toString()).join('\n');
    for (const line of aiText) expect(everything).not.toContain(line);
    expect(Buffer.from(rejected.presentedForm![0]!.data!, 'base64').toString()).toContain('Reason: Motion artefact; repeat the radiograph.');
    expect(schemaProblems(rejected)).toEqual([]);

    const [provenance] = await search<Provenance>(peers.fhir.url, `Provenance?target=DiagnosticReport/${reportId()}/_history/${rejected.meta!.versionId}`);
    expect(provenance).toMatchObject({ reason: [{ text: 'Motion artefact; repeat the radiograph.' }], entity: [{ role: 'removal', what: { reference: `DiagnosticReport/${reportId()}/_history/${draft.meta!.versionId}` } }] });
    expect(provenance!.agent[0]!.who.reference).toBe(reviewer);
    expect(await taskOf()).toMatchObject({ status: 'rejected', statusReason: { text: 'Motion artefact; repeat the radiograph.' }, owner: { reference: reviewer } });
    const actions = (await auditsOf(reportId())).map((a) => a.meta!.tag?.[0]?.code?.split('-')[0]).sort();
    expect(actions).toEqual(['drafted', 'opened', 'rejected']);
  });

  it('offers a correction and an addendum on the page of a signed report, and no signing', async () => {
    const signedStudy = fixture('chest-pa-lat').studyUid;
    const [signed] = await search<DiagnosticReport>(peers.fhir.url, `DiagnosticReport?identifier=${encodeURIComponent(`https://raddraft.dev/fhir/sid/ai-draft-report|${signedStudy}_lingshu-medical-mllm-Lingshu-7B`)}`);
    expect(signed!.status).toBe('appended');
    const page = await (await serve.api(`/review/${signed!.id}`, { headers: { cookie: (await session()).cookie } })).text();
    expect(page).toContain('SIGNED, WITH ADDENDUM — AI-assisted report');
    expect(page).toContain('<button type="button" id="correct" class="sign">Correct report…</button>');
    expect(page).toContain('<button type="button" id="addendum" class="sign">Add addendum…</button>');
    expect(page).not.toContain('id="sign"');
  });

  it('posts no report for a study without a Study Date: the FHIR output refuses it for good, saying why', async () => {
    const [undated] = await cloneStudies(study.files[0]!, 1, cloneDir, ['(0008,0020)=', '(0008,0030)=']);
    await stowFiles(peers.orthanc.dicomWebUrl, [undated!.file]);
    const output = fhirOutput({
      fhir: new FhirGateway({ url: peers.fhir.url, auth: { kind: 'none' } }),
      studies: new PacsSource(new DicomWebClient({ url: peers.orthanc.dicomWebUrl, auth: { kind: 'none' } })),
      software: { name: 'raddraft', version: 'test' }, modelEndpoint: peers.model.url, waitMs: 1000,
    });
    const key = `${undated!.studyUid}_lingshu-medical-mllm-Lingshu-7B`;
    const event: DraftedEvent = {
      kind: 'drafted', id: `${key}:0`, reportKey: key, seq: 0, studyUid: undated!.studyUid, jobId: 'undated', at: new Date().toISOString(), images: [],
      draft: { findings: 'Clear lungs.', impression: 'Normal.', text: '', model: 'lingshu-medical-mllm/Lingshu-7B', promptVersion: 'medevalkit-report-1', requestId: undefined, draftedAt: new Date().toISOString() },
    };
    expect(await output.deliver(event, { earlier: [], signal: new AbortController().signal })).toEqual({
      kind: 'permanent', reason: 'the study has no valid Study Date (0008,0020); raddraft posts no report without the time of the exam (effective[x])',
    });
    expect(await search(peers.fhir.url, `DiagnosticReport?identifier=${encodeURIComponent(`https://raddraft.dev/fhir/sid/ai-draft-report|${key}`)}`)).toHaveLength(0);
  });

  it('posts no report for a study without a Patient ID, and the job says why', async () => {
    const [job] = await waitForJobs(serve, [noPatient], ['drafted']);
    let detail = { deliveries: [] as { output: string; state: string; lastError?: string }[] };
    await waitFor('the draft delivery of the study without a Patient ID to end', async () => {
      detail = (await (await serve.api(`/api/jobs/${encodeURIComponent(job!.id)}`)).json()) as typeof detail;
      return detail.deliveries.some((d) => d.output === 'fhir' && d.state === 'dead');
      // A FHIR server slowed by other suites makes the delivery wait and try again before it can tell.
    }, 90_000);
    expect(detail.deliveries.find((d) => d.output === 'fhir')!.lastError).toBe(
      'the study has no Patient ID and no ImagingStudy on the FHIR server names its patient; raddraft posts no report it cannot attach to a patient',
    );
    expect(await search(peers.fhir.url, `DiagnosticReport?identifier=${encodeURIComponent(`https://raddraft.dev/fhir/sid/ai-draft-report|${noPatient}_lingshu-medical-mllm-Lingshu-7B`)}`)).toHaveLength(0);
  }, 180_000);
});
