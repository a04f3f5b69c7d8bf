import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { DiagnosticReport, Practitioner, Provenance, Task } from '@medplum/fhirtypes';
import { freePort } from '../../src/demo/ports.js';
import { stowFiles } from '../../src/demo/stow.js';
import { launchChromium, screenshot, waitUntil } from '../harness/browser.js';
import { dcmtk } from '../harness/dcmtk.js';
import { create, search } from '../harness/fhir-queries.js';
import { startIdentityProvider, type IdentityProvider } from '../harness/identity-provider.js';
import { fixture, serviceEnv, startPeers, type Peers } from '../harness/peers.js';
import { problemsAgainst } from '../harness/profiles.js';
import { startServe, waitForJobs, type ApiJob, type ServeProcess } from '../harness/serve-process.js';

jest.setTimeout(180_000);

const XSS = 'Findings: <script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> Lungs are clear.\nImpression: <b>No acute disease</b>.';

describe('a radiologist reviews and signs drafts in Chromium', () => {
  let peers: Peers;
  let idp: IdentityProvider;
  let serve: ServeProcess;
  let browser: Browser;
  let context: BrowserContext;
  let dataDir: string;
  let jobs: ApiJob[];
  let radiologist: Practitioner & { id: string };
  let base: string;
  const paLat = fixture('chest-pa-lat');
  const apMono1 = fixture('chest-ap-mono1');
  let injectedStudy: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    peers = await startPeers();
    dataDir = await mkdtemp(path.join(tmpdir(), 'raddraft-browser-'));
    radiologist = await create<Practitioner>(peers.fhir.url, { resourceType: 'Practitioner', name: [{ family: 'Example', given: ['Ada'] }] });
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    idp = await startIdentityProvider({ redirectUri: `${base}/review/callback`, fhirUser: `Practitioner/${radiologist.id}`, name: 'Dr Ada Example' });
    // The third draft's model reply tries to inject markup.
    peers.model.script({ kind: 'report' }, { kind: 'report' }, { kind: 'report', text: XSS });
    await peers.upload([paLat]);
    await peers.upload([apMono1]);
    env = serviceEnv(peers, dataDir, {
      RADDRAFT_PORT: String(port),
      RADDRAFT_PUBLIC_URL: base,
      RADDRAFT_AUTH_ISSUER: idp.issuer,
      RADDRAFT_AUTH_CLIENT_ID: idp.clientId,
      RADDRAFT_AUTH_CLIENT_SECRET: idp.clientSecret,
      RADDRAFT_AUTH_SIGNERS: `Practitioner/${radiologist.id}`,
      RADDRAFT_API_TOKEN: randomBytes(32).toString('base64url'),
      RADDRAFT_WORKERS: '1',
      NODE_EXTRA_CA_CERTS: idp.caFile,
    });
    serve = await startServe(env);
    jobs = await waitForJobs(serve, [paLat.studyUid, apMono1.studyUid], ['reported']);
    // A third study (the AP with fresh UIDs), drafted from the reply that carries markup.
    const copy = path.join(dataDir, 'injection.dcm');
    await copyFile(apMono1.files[0]!, copy);
    await dcmtk('dcmodify', ['-nb', '-gst', '-gse', '-gin', copy]);
    injectedStudy = (await dcmtk('dcmdump', ['+P', '0020,000d', copy])).match(/\[([\d.]+)\]/)![1]!;
    await stowFiles(peers.orthanc.dicomWebUrl, [copy]);
    jobs = await waitForJobs(serve, [paLat.studyUid, apMono1.studyUid, injectedStudy], ['reported']);
    browser = await launchChromium();
    context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1600, height: 1000 } });
  });

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await serve?.kill('SIGTERM');
    await idp?.stop();
    await peers?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const reportIdOf = (uid: string) => jobs.find((j) => j.studyInstanceUid === uid)!.reportRef!.split('/')[1]!;

  async function signIn(page: Page): Promise<void> {
    await page.goto(`${base}/review`);
    await page.waitForURL((url) => url.href.startsWith(idp.issuer), { timeout: 15_000 });
    await page.fill('input[name=login]', 'ada');
    await page.fill('input[name=password]', 'any password');
    await page.click('button[type=submit]');
    await page.waitForSelector('button[type=submit]:has-text("Continue")', { timeout: 15_000 });
    await page.click('button[type=submit]');
    await page.waitForURL(`${base}/review`, { timeout: 15_000 });
  }

  it('refuses the worklist to a browser that has not signed in, sending it to the identity provider', async () => {
    const anonymous = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await anonymous.newPage();
    await page.goto(`${base}/review`);
    await page.waitForURL((url) => url.href.startsWith(idp.issuer));
    expect(await page.content()).not.toContain(paLat.studyUid);
    const res = await page.request.post(`${base}/api/reports/${reportIdOf(paLat.studyUid)}/sign`, { data: { findings: 'x', impression: 'y', version: '1' } });
    expect(res.status()).toBe(401);
    await anonymous.close();
  });

  it('signs in, lists the drafts, shows the images, signs an edited draft, and appends an addendum to it', async () => {
    const page = await context.newPage();
    await signIn(page);
    expect(await page.locator('#worklist tbody tr').count()).toBe(3);
    expect(await page.textContent('header .user')).toBe('Dr Ada Example');
    await screenshot(page, 'worklist');
    for (const [query, rows] of [['from=2026-03-02', 0], ['to=2026-03-01', 3], ['flagged=1', 0]] as const) {
      await page.goto(`${base}/review?${query}`);
      expect({ query, rows: await page.locator('#worklist tbody tr').count() }).toEqual({ query, rows });
    }
    await page.goto(`${base}/review`);

    await page.click(`a[href="/review/${reportIdOf(paLat.studyUid)}"]`);
    await page.waitForSelector('figure.viewer img');
    await waitUntil(page, "Array.from(document.querySelectorAll('figure.viewer img')).every((i) => i.complete && i.naturalWidth > 0)");
    expect(await page.locator('figure.viewer img').count()).toBe(2);
    expect(await page.textContent('.banner')).toBe('AI-GENERATED DRAFT — NOT REVIEWED BY A RADIOLOGIST');

    // Window/level from the keyboard re-renders the image on the server.
    const before = await page.getAttribute('figure.viewer img >> nth=0', 'src');
    await page.focus('figure.viewer >> nth=0');
    await page.keyboard.press('ArrowLeft');
    await waitUntil(page, `document.querySelector('figure.viewer img').getAttribute('src') !== ${JSON.stringify(before)}`);
    expect(await page.getAttribute('figure.viewer img >> nth=0', 'src')).toMatch(/wc=1900&ww=3420$/);

    await page.fill('#findings', 'The lungs are clear. Heart size is normal. Edited in the browser.');
    await screenshot(page, 'draft-edited');
    await page.keyboard.press('Control+Enter');
    await page.waitForSelector('#outcome.ok');
    expect(await page.textContent('#outcome')).toContain('Signed. The report is final.');
    await screenshot(page, 'draft-signed');

    const [report] = await search<DiagnosticReport>(peers.fhir.url, `DiagnosticReport?_id=${reportIdOf(paLat.studyUid)}`);
    expect(report).toMatchObject({ status: 'final', resultsInterpreter: [{ reference: `Practitioner/${radiologist.id}`, display: 'Dr Ada Example' }] });
    expect(Buffer.from(report!.presentedForm![0]!.data!, 'base64').toString()).toContain('Edited in the browser.');
    expect(problemsAgainst(report!, 'raddraft-signed-report')).toEqual([]);
    const provenance = await search<Provenance>(peers.fhir.url, `Provenance?target=DiagnosticReport/${report!.id}/_history/${report!.meta!.versionId}`);
    expect(provenance.some((p) => p.agent.some((a) => a.type?.coding?.[0]?.code === 'verifier' && a.who.reference === `Practitioner/${radiologist.id}`))).toBe(true);
    const [task] = await search<Task>(peers.fhir.url, `Task?focus=DiagnosticReport/${report!.id}`);
    expect(task!.status).toBe('completed');

    // The signed report's page offers an addendum, which leaves the signed text as it is.
    await page.reload();
    await page.click('#addendum');
    await page.fill('#addendum-text', 'Compared with the prior study: no change.');
    await page.fill('#amend-reason', 'Prior study became available');
    await page.click('#confirm-amend');
    await page.waitForSelector('#outcome.ok');
    expect(await page.textContent('#outcome')).toContain('Signed. The report is appended.');
    const [appended] = await search<DiagnosticReport>(peers.fhir.url, `DiagnosticReport?_id=${reportIdOf(paLat.studyUid)}`);
    expect(appended!.status).toBe('appended');
    expect(Buffer.from(appended!.presentedForm![0]!.data!, 'base64').toString()).toContain('Edited in the browser.\n\nIMPRESSION:');
    expect(Buffer.from(appended!.presentedForm![0]!.data!, 'base64').toString()).toContain('ADDENDUM 1:\nCompared with the prior study: no change.');
    await page.close();
  });

  it('keeps the radiologist\'s text and says so when someone else changed the draft meanwhile', async () => {
    const id = reportIdOf(apMono1.studyUid);
    const page = await context.newPage();
    await page.goto(`${base}/review/${id}`);
    await page.fill('#findings', 'My careful findings that must not be lost.');
    const [current] = await search<DiagnosticReport>(peers.fhir.url, `DiagnosticReport?_id=${id}`);
    const put = await fetch(`${peers.fhir.url}/DiagnosticReport/${id}`, {
      method: 'PUT', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify({ ...current, conclusion: 'Changed by another system.' }),
    });
    expect(put.status).toBe(200);
    await page.click('#sign');
    await page.waitForSelector('#outcome.error');
    expect(await page.textContent('#outcome')).toContain('Someone changed this draft after you opened it');
    expect(await page.inputValue('#findings')).toBe('My careful findings that must not be lost.');
    await screenshot(page, 'draft-conflict');
    const [after] = await search<DiagnosticReport>(peers.fhir.url, `DiagnosticReport?_id=${id}`);
    expect(after).toMatchObject({ status: 'partial', conclusion: 'Changed by another system.' });

    // Reloading restores the unsaved text for the radiologist to compare and sign again.
    await page.reload();
    expect(await page.inputValue('#findings')).toBe('My careful findings that must not be lost.');
    expect(await page.textContent('#outcome')).toContain('Your unsaved edits from earlier were restored.');
    await page.close();
  });

  it('shows markup in a draft as inert text', async () => {
    const id = reportIdOf(injectedStudy);
    const page = await context.newPage();
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(`${base}/review/${id}`);
    expect(await page.inputValue('#findings')).toBe('<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> Lungs are clear.');
    expect(await page.inputValue('#impression')).toBe('<b>No acute disease</b>.');
    expect(await page.evaluate('window.__pwned')).toBeUndefined();
    expect(await page.locator('main script, main img[src="x"], main b:has-text("No acute disease")').count()).toBe(0);
    await page.goto(`${base}/review`);
    expect(await page.evaluate('window.__pwned')).toBeUndefined();
    expect(dialogs).toEqual([]);
    await screenshot(page, 'injection-inert');
    await page.close();
  });

  it('rejects a draft with a reason', async () => {
    const id = reportIdOf(apMono1.studyUid);
    const page = await context.newPage();
    await page.goto(`${base}/review/${id}`);
    await page.click('#reject');
    await page.fill('#reason', 'Rotated film; repeat the study.');
    await page.click('#confirm-reject');
    await page.waitForSelector('#outcome.ok');
    expect(await page.textContent('#outcome')).toContain('Rejected.');
    const [report] = await search<DiagnosticReport>(peers.fhir.url, `DiagnosticReport?_id=${id}`);
    expect(report!.status).toBe('cancelled');
    const [task] = await search<Task>(peers.fhir.url, `Task?focus=DiagnosticReport/${id}`);
    expect(task).toMatchObject({ status: 'rejected', statusReason: { text: 'Rotated film; repeat the study.' } });
    await page.goto(`${base}/review/quality`);
    const cells = await page.locator('table.quality tbody tr td').allTextContents();
    expect(cells.slice(0, 3)).toEqual(['lingshu-medical-mllm/Lingshu-7B', 'medevalkit-report-1', '1']);
    expect(cells[6]).toBe('1 (50 %)');
    await screenshot(page, 'quality');
    await page.close();
  });

  it('gives no session to a page sign-in of a Practitioner who may not sign, and ends the sessions of one taken off the list', async () => {
    const page = await context.newPage();
    await page.goto(`${base}/review`);
    const csrf = (await page.getAttribute('meta[name="csrf-token"]', 'content'))!;
    const cookie = (await context.cookies(base)).find((c) => c.name === 'raddraft_session')!;
    await page.close();
    await serve.kill('SIGTERM');
    serve = await startServe({ ...env, RADDRAFT_AUTH_SIGNERS: 'Practitioner/someone-else' });

    // The session Ada signed in with before no longer signs.
    const res = await fetch(`${base}/api/reports/${reportIdOf(injectedStudy)}/sign`, {
      method: 'POST', headers: { 'content-type': 'application/json', cookie: `${cookie.name}=${cookie.value}`, 'x-csrf-token': csrf },
      body: JSON.stringify({ findings: 'x', impression: 'y', version: '1' }),
    });
    expect(res.status).toBe(401);
    expect(await res.text()).toContain(`Practitioner/${radiologist.id} is not among the Practitioners allowed to sign here (RADDRAFT_AUTH_SIGNERS)`);

    // Signing in again through the identity provider gives her no session either.
    const fresh = await browser.newContext({ ignoreHTTPSErrors: true });
    const again = await fresh.newPage();
    await again.goto(`${base}/review`);
    await again.waitForURL((url) => url.href.startsWith(idp.issuer), { timeout: 15_000 });
    await again.fill('input[name=login]', 'ada');
    await again.fill('input[name=password]', 'any password');
    await again.click('button[type=submit]');
    await again.waitForSelector('button[type=submit]:has-text("Continue")', { timeout: 15_000 });
    const callback = again.waitForResponse((r) => r.url().startsWith(`${base}/review/callback`), { timeout: 15_000 });
    await again.click('button[type=submit]');
    expect((await callback).status()).toBe(403);
    expect(await again.content()).toContain('is not among the Practitioners allowed to sign here');
    expect((await fresh.cookies(base)).some((c) => c.name === 'raddraft_session')).toBe(false);
    await fresh.close();
  });
});
