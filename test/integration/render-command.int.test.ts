import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startOrthanc, type OrthancInstance } from '../../src/demo/orthanc.js';
import { stowFiles } from '../../src/demo/stow.js';
import { renderInstance } from '../../src/dicom/render.js';
import { syntaxFixture } from '../harness/dicom-files.js';
import { fixture } from '../harness/peers.js';
import { runCli } from '../harness/serve-process.js';

jest.setTimeout(120_000);

let dir: string;
let orthanc: OrthancInstance;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'raddraft-render-cli-'));
  orthanc = await startOrthanc();
  await stowFiles(orthanc.dicomWebUrl, [...fixture('chest-pa-lat').files, ...fixture('ct-chest').files]);
});

afterAll(async () => {
  await orthanc?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function render(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; output: string }> {
  const p = runCli(['render', ...args], env);
  const code = await p.exited;
  return { code, output: p.output() };
}

describe('raddraft render FILE.dcm -o OUT.png', () => {
  it('writes the PNG the model receives and prints its size, the level it was decoded at, the window, the transfer syntax and the time', async () => {
    const out = path.join(dir, 'j2k.png');
    const { code, output } = await render([syntaxFixture('jpeg2000-lossless'), '-o', out]);
    expect(code).toBe(0);
    expect(output).toMatch(new RegExp(
      `^${out.replace(/[.]/g, '\\.')}: 896 × 1092 \\(from 2048 × 2500, decoded at 1024 × 1250\\); window center 1900 width 3600 \\(file\\); MONOCHROME2; `
      + 'transfer syntax 1\\.2\\.840\\.10008\\.1\\.2\\.4\\.90 \\(JPEG 2000 Lossless\\); \\d+ ms\\n$',
    ));
    const model = await renderInstance(syntaxFixture('jpeg2000-lossless'), 'j2k');
    expect((await readFile(out)).equals(model.png)).toBe(true);
  });

  it('names the fault and exits 1 for a file that is not DICOM', async () => {
    const bad = path.join(dir, 'upload.dcm');
    await writeFile(bad, 'this is a PNG, not DICOM'.repeat(10));
    const { code, output } = await render([bad, '-o', path.join(dir, 'bad.png')]);
    expect(code).toBe(1);
    expect(output).toContain('raddraft render: upload.dcm: not a DICOM Part 10 file (no DICM preamble)');
  });

  it('says how to call it when given neither a file nor --study', async () => {
    const { code, output } = await render([]);
    expect(code).toBe(1);
    expect(output).toContain('raddraft render: give either a DICOM file (raddraft render FILE.dcm -o OUT.png) or --study <StudyInstanceUID> -o FOLDER');
  });
});

describe('raddraft render --study <StudyInstanceUID> through DICOMweb', () => {
  it('renders the views raddraft drafts from, in the order the model receives them, each as drafting renders it', async () => {
    const out = path.join(dir, 'study');
    const study = fixture('chest-pa-lat');
    const { code, output } = await render(['--study', study.studyUid, '-o', out], { RADDRAFT_DICOMWEB_URL: orthanc.dicomWebUrl });
    expect(code).toBe(0);
    const written = (await readdir(out)).sort();
    expect(written).toHaveLength(2);
    expect(written[0]).toMatch(/^1-pa-[\d.]+\.png$/);
    expect(written[1]).toMatch(/^2-lateral-[\d.]+\.png$/);
    for (const name of written) expect(output).toContain(`${path.join(out, name)}: `);
    // The same pixels as rendering the stored file: fetching through WADO-RS changes nothing the model sees.
    const stored = await Promise.all(study.files.map(async (f) => (await renderInstance(f, path.basename(f))).sha256));
    for (const name of written) {
      const png = await readFile(path.join(out, name));
      expect(stored).toContain(createHash('sha256').update(png).digest('hex'));
    }
  });

  it('exits 3 and says why for a study that is not a chest radiograph', async () => {
    const uid = fixture('ct-chest').studyUid;
    const { code, output } = await render(['--study', uid, '-o', path.join(dir, 'ct')], { RADDRAFT_DICOMWEB_URL: orthanc.dicomWebUrl });
    expect(code).toBe(3);
    expect(output).toContain(`study ${uid} is not eligible: no CR or DX image in the study (Modality CT)`);
  });

  it('needs RADDRAFT_DICOMWEB_URL, and says so with an example', async () => {
    const { code, output } = await render(['--study', fixture('ct-chest').studyUid]);
    expect(code).toBe(78);
    expect(output).toContain('RADDRAFT_DICOMWEB_URL is missing');
  });
});
