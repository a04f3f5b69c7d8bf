import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SYNTAX_FIXTURES } from '../../fixtures/transfer-syntaxes.js';
import { stowFiles } from '../../src/demo/stow.js';
import { cloneStudies, dcmtk } from '../harness/dcmtk.js';
import { syntaxFixture, withReplacedText } from '../harness/dicom-files.js';
import { serviceEnv, startPeers, type Peers } from '../harness/peers.js';
import { startServe, waitForJobs, type ApiJob, type ServeProcess } from '../harness/serve-process.js';

jest.setTimeout(240_000);

/** A study UID of the same length with its last digit changed, for a second copy of a file. */
const otherUid = (uid: string, digit: string) => `${uid.slice(0, -1)}${digit === uid.slice(-1) ? String((Number(digit) + 1) % 10) : digit}`;

async function dump(file: string, tag: string): Promise<string> {
  return /\[([\d.]+)\]/.exec(await dcmtk('dcmdump', ['+P', tag, file]))![1]!;
}

describe('raddraft serve drafts a study in every transfer syntax and fails only the broken ones', () => {
  let peers: Peers;
  let serve: ServeProcess;
  let dir: string;
  let jobs: ApiJob[];
  const studies: { name: string; studyUid: string; sopUid: string; transferSyntaxUid: string }[] = [];
  let corrupt: { studyUid: string; sopUid: string };
  let shortPixels: { studyUid: string; sopUid: string };

  beforeAll(async () => {
    peers = await startPeers();
    dir = await mkdtemp(path.join(tmpdir(), 'raddraft-syntaxes-'));
    const pacs: string[] = [];
    const pushed: string[] = [];
    for (const f of SYNTAX_FIXTURES) {
      let file: string;
      if (f.reference === 'source') {
        // DCMTK (and so Orthanc) cannot read HTJ2K: these reach raddraft over its own STOW-RS receiver, with
        // UIDs changed in place.
        const original = syntaxFixture(f.name);
        const uids = await Promise.all(['0020,000d', '0020,000e', '0008,0018'].map((t) => dump(original, t)));
        file = path.join(dir, `${f.name}.dcm`);
        await withReplacedText(original, file, uids.map((u) => [u, otherUid(u, String(studies.length % 10))] as [string, string]));
        pushed.push(file);
      } else {
        file = (await cloneStudies(syntaxFixture(f.name), 1, dir))[0]!.file;
        pacs.push(file);
      }
      studies.push({ name: f.name, studyUid: await dump(file, '0020,000d'), sopUid: await dump(file, '0008,0018'), transferSyntaxUid: f.transferSyntaxUid });
    }

    const [jpeg] = await cloneStudies(syntaxFixture('jpeg-extended-12bit'), 1, dir);
    const bytes = Buffer.from(await readFile(jpeg!.file));
    const dht = bytes.indexOf(Buffer.from([0xff, 0xc4]), bytes.indexOf(Buffer.from([0xff, 0xd8, 0xff])));
    bytes.fill(0xff, dht + 4, dht + 40);
    await writeFile(jpeg!.file, bytes);
    corrupt = { studyUid: jpeg!.studyUid, sopUid: await dump(jpeg!.file, '0008,0018') };
    const [rows] = await cloneStudies(syntaxFixture('explicit-le'), 1, dir, ['(0028,0010)=2600']);
    shortPixels = { studyUid: rows!.studyUid, sopUid: await dump(rows!.file, '0008,0018') };
    pacs.push(jpeg!.file, rows!.file);

    await stowFiles(peers.orthanc.dicomWebUrl, pacs);
    // The PACS cannot hold the HTJ2K studies pushed below, so raddraft takes the sender's word for them.
    serve = await startServe(serviceEnv(peers, path.join(dir, 'data'), { RADDRAFT_INTAKE: 'qido,stow', RADDRAFT_STOW_AUTH: 'none', RADDRAFT_PUSH_VERIFY: 'none' }));
    await stowFiles(`http://127.0.0.1:${serve.port}/dicom-web`, pushed);
    jobs = await waitForJobs(serve, [...studies.map((s) => s.studyUid), corrupt.studyUid, shortPixels.studyUid], ['reported', 'dead'], 180_000);
  });

  afterAll(async () => {
    await serve?.kill('SIGTERM');
    await peers?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const jobOf = (uid: string) => jobs.find((j) => j.studyInstanceUid === uid)!;

  it('posts one draft per study, each rendered from its own transfer syntax', async () => {
    for (const s of studies) {
      expect({ name: s.name, state: jobOf(s.studyUid).state }).toEqual({ name: s.name, state: 'drafted' });
      const detail = (await (await serve.api(`/api/jobs/${jobOf(s.studyUid).id}`)).json()) as { images: { sopUid: string; transferSyntaxUid: string }[] };
      expect(detail.images).toEqual([expect.objectContaining({ sopUid: s.sopUid, transferSyntaxUid: s.transferSyntaxUid })]);
    }
    expect(peers.model.requests.length).toBe(studies.length);
  });

  it('fails a study with a corrupt JPEG stream, naming the instance, the transfer syntax and the fault', () => {
    expect(jobOf(corrupt.studyUid)).toMatchObject({
      state: 'dead',
      reason: `instance ${corrupt.sopUid} (transfer syntax 1.2.840.10008.1.2.4.51): the JPEG Extended data cannot be decoded (Bogus Huffman table definition)`,
    });
  });

  it('fails a study whose Pixel Data is shorter than its Rows and Columns say', () => {
    expect(jobOf(shortPixels.studyUid)).toMatchObject({
      state: 'dead',
      reason: `instance ${shortPixels.sopUid} (transfer syntax 1.2.840.10008.1.2.1): Pixel Data has 10240000 bytes, but Rows × Columns × SamplesPerPixel × frames = 2600 × 2048 × 1 × 1 needs 10649600`,
    });
  });

  it('keeps answering after the failures', async () => {
    expect((await serve.api('/healthz')).status).toBe(200);
  });
});
