import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DiagnosticReport, Patient, Task } from '@medplum/fhirtypes';
import { FIXTURE_STUDIES } from '../../src/demo/phantom.js';
import { NO_PRIOR_NOTE } from '../../src/model/prior-report.js';
import type { DraftRecord } from '../../src/report/report.js';
import { create, search } from '../harness/fhir-queries.js';
import { fixture, serviceEnv, startPeers, type Peers } from '../harness/peers.js';
import { startServe, waitForJobs, type ApiJob, type ServeProcess } from '../harness/serve-process.js';

jest.setTimeout(120_000);

const CLEAN = 'Findings: The heart size is normal. The lungs are clear. No pleural effusion or pneumothorax.\nImpression: No acute cardiopulmonary process.';
const URGENT = 'Findings: Unchanged small left pleural effusion. Moderate right pneumothorax.\nImpression: Right pneumothorax.';

/**
 * One raddraft with the prior-report prompt and three consistency samples: a clean study of a patient without a
 * prior, then a study whose draft asserts a pneumothorax, of a patient with a signed prior report on the FHIR server.
 */
describe('urgent triage, sentence flags and prior-report context in the running service', () => {
  let peers: Peers;
  let serve: ServeProcess;
  let dataDir: string;
  let jobs: ApiJob[];
  const clean = fixture('chest-ap-mono1');
  const urgent = fixture('chest-pa-lat');
  const { date: studyDate, patient: person, accession } = FIXTURE_STUDIES.find((s) => s.key === 'chest-pa-lat')!;
  // Thirty days before the study: the latest signed chest X-ray report before it.
  const priorDate = new Date(Date.UTC(Number(studyDate.slice(0, 4)), Number(studyDate.slice(4, 6)) - 1, Number(studyDate.slice(6, 8)) - 30)).toISOString().slice(0, 10);

  beforeAll(async () => {
    peers = await startPeers();
    dataDir = await mkdtemp(path.join(tmpdir(), 'raddraft-triage-'));
    const [family, given] = person.name.split('^') as [string, string];
    const patient = await create<Patient>(peers.fhir.url, { resourceType: 'Patient', identifier: [{ value: person.id }], name: [{ family, given: [given] }] });
    // A radiologist typed the patient's name, ID and accession into the prior: none of them may reach the model.
    const text = `FINDINGS:\nSmall left pleural effusion. Patient ${given} ${family}, ${person.id}, accession ${accession}.\n\nIMPRESSION:\nSmall left effusion.`;
    await create<DiagnosticReport>(peers.fhir.url, {
      resourceType: 'DiagnosticReport', status: 'final', subject: { reference: `Patient/${patient.id}` },
      code: { coding: [{ system: 'http://loinc.org', code: '36643-5', display: 'XR Chest 2 Views' }] },
      effectiveDateTime: `${priorDate}T08:00:00Z`,
      presentedForm: [{ contentType: 'text/plain; charset=utf-8', data: Buffer.from(text).toString('base64') }],
    });
    // Not the prior: a signed report after the study, an unsigned one, and a CT report, each closer to the study.
    const shifted = (days: number) => `${new Date(Date.parse(`${priorDate}T08:00:00Z`) + days * 86_400_000).toISOString().slice(0, 19)}Z`;
    const others: [DiagnosticReport['status'], string, string, string][] = [
      ['final', '36643-5', shifted(40), 'Later report.'], ['preliminary', '36643-5', shifted(10), 'Unsigned draft.'], ['final', '24627-2', shifted(20), 'CT report.'],
    ];
    for (const [status, code, when, words] of others) {
      await create<DiagnosticReport>(peers.fhir.url, {
        resourceType: 'DiagnosticReport', status, subject: { reference: `Patient/${patient.id}` }, code: { coding: [{ system: 'http://loinc.org', code }] },
        effectiveDateTime: when, presentedForm: [{ contentType: 'text/plain', data: Buffer.from(`FINDINGS:\n${words}\n\nIMPRESSION:\n${words}`).toString('base64') }],
      });
    }
    peers.model.setDefault({ kind: 'report', text: CLEAN });
    serve = await startServe(serviceEnv(peers, dataDir, { RADDRAFT_PROMPT: 'prior-report', RADDRAFT_CONSISTENCY_SAMPLES: '3' }));
    await peers.upload([clean]);
    await waitForJobs(serve, [clean.studyUid], ['reported']);
    peers.model.setDefault({ kind: 'report', text: URGENT });
    await peers.upload([urgent]);
    jobs = await waitForJobs(serve, [clean.studyUid, urgent.studyUid], ['reported']);
  });

  afterAll(async () => {
    await serve?.kill('SIGTERM');
    await peers?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const jobOf = (uid: string) => jobs.find((j) => j.studyInstanceUid === uid)!;
  const draftOf = async (uid: string) => ((await (await serve.api(`/api/jobs/${jobOf(uid).id}`)).json()) as { draft: DraftRecord }).draft;
  const taskOf = async (uid: string) => (await search<Task>(peers.fhir.url, `Task?focus=${jobOf(uid).reportRef}`))[0]!;

  it('records the critical finding and its flag with the draft, and keeps the clean draft free of both', async () => {
    const flagged = await draftOf(urgent.studyUid);
    expect(flagged.urgent).toEqual({ findings: ['pneumothorax'] });
    expect(flagged.sentenceFlags).toEqual(expect.arrayContaining([
      { section: 'findings', sentence: 'Moderate right pneumothorax.', kind: 'urgent', why: expect.stringContaining('Unverified AI suspicion') },
    ]));
    const plain = await draftOf(clean.studyUid);
    expect(plain.urgent).toBeUndefined();
    expect(plain.sentenceFlags).toBeUndefined();
  });

  it('keeps the flags with the report on the FHIR server, in its text', async () => {
    const [report] = await search<DiagnosticReport>(peers.fhir.url, `DiagnosticReport?_id=${jobOf(urgent.studyUid).reportRef!.split('/')[1]}`);
    const text = Buffer.from(report!.presentedForm!.find((f) => f.contentType?.startsWith('text/plain'))!.data!, 'base64').toString('utf8');
    expect(text).toContain('- findings "Moderate right pneumothorax.": URGENT? Unverified AI suspicion: the draft asserts pneumothorax; a radiologist has not confirmed it');
    expect(report!.text!.div).toContain('Unverified AI suspicion');
  });

  it('quotes the patient\'s signed prior report with its date, so comparison wording is not flagged; tells the model when there is none', async () => {
    const flagged = await draftOf(urgent.studyUid);
    expect(flagged.promptVersion).toBe('prior-report-1');
    expect(flagged.sentenceFlags?.filter((f) => f.kind === 'comparison')).toEqual([]);
    const greedy = peers.model.requests.filter((r) => r.temperature === 0);
    expect(greedy.some((r) => r.texts.some((t) => t.includes('<prior_report>') && t.includes(`"date":"${priorDate}"`) && t.includes('Small left pleural effusion.')))).toBe(true);
    expect(greedy.some((r) => r.texts.includes(NO_PRIOR_NOTE))).toBe(true);
    expect(greedy.flatMap((r) => r.texts).filter((t) => /Later report|Unsigned draft|CT report/.test(t))).toEqual([]);
    const quoted = greedy.flatMap((r) => r.texts).find((t) => t.includes('<prior_report>'))!;
    for (const identifier of [person.id, accession, ...person.name.split('^')]) expect(quoted.toLowerCase()).not.toContain(identifier.toLowerCase());
    expect(quoted).toContain('Patient [removed] [removed], [removed], accession [removed].');
    expect(peers.model.requests.filter((r) => r.temperature !== 0).map((r) => r.n)).toEqual([3, 3]);
  });

  it('raises the review Task to urgent for the urgent draft and leaves the clean one routine', async () => {
    expect((await taskOf(urgent.studyUid)).priority).toBe('urgent');
    expect((await taskOf(clean.studyUid)).priority).toBe('routine');
  });

  it('puts the urgent draft first on the worklist with its reason, labelled an unverified AI suspicion', async () => {
    const page = await (await serve.api('/review')).text();
    const rows = [...page.matchAll(/<tr data-href="\/review\/([^"]+)"[^>]*>([\s\S]*?)<\/tr>/g)];
    expect(rows.map((r) => r[1])).toEqual([jobOf(urgent.studyUid).reportRef!.split('/')[1], jobOf(clean.studyUid).reportRef!.split('/')[1]]);
    expect(rows[0]![2]).toContain('unverified AI suspicion: pneumothorax');
    expect(rows[1]![2]).not.toContain('suspicion');
  });

  it('shows each flag at its sentence on the review page, with why', async () => {
    const page = await (await serve.api(`/review/${jobOf(urgent.studyUid).reportRef!.split('/')[1]}`)).text();
    expect(page).toContain('URGENT? — unverified AI suspicion: the draft asserts pneumothorax');
    expect(page).toMatch(/<mark class="flag-urgent" tabindex="0">Moderate right pneumothorax\.<\/mark><span class="why"><span class="flag-kind">critical finding<\/span> URGENT\? Unverified AI suspicion: the draft asserts pneumothorax/);
  });

  it('counts the urgent draft and its sentence flags in /metrics', async () => {
    const metrics = await (await serve.api('/metrics')).text();
    expect(metrics).toMatch(/raddraft_urgent_drafts_total\{finding="pneumothorax"\} 1/);
    expect(metrics).toMatch(/raddraft_draft_sentence_flags_total\{kind="urgent"\} 2/);
  });
});
