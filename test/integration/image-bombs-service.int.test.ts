import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  writeDeflateBomb, writeRleCutFrame, writeRleGiant, writeRleShortSegment, writeRleWhole, type HostileImage,
} from '../../fixtures/hostile-images.js';
import { stowFiles } from '../../src/demo/stow.js';
import { ARTIFACTS } from '../harness/browser.js';
import { syntaxFixture } from '../harness/dicom-files.js';
import { serviceEnv, startPeers, type Peers } from '../harness/peers.js';
import { startServe, waitForJobs, type ApiJob, type ServeProcess } from '../harness/serve-process.js';

jest.setTimeout(300_000);

const TOKEN = 'a-stow-token-for-the-image-ceiling-test';
const RLE = '1.2.840.10008.1.2.5';
const DEFLATED = '1.2.840.10008.1.2.1.99';

/**
 * Polls /healthz while hostile images are processed, each poll with its own timeout, and keeps the slowest answer;
 * the figures are reported, never asserted.
 */
function watchHealth(serve: ServeProcess): { stop(): Promise<{ polls: number; worstMs: number; peakRssMiB: number }> } {
  let running = true;
  let worstMs = 0;
  let polls = 0;
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      const res = await serve.api('/healthz', { signal: AbortSignal.timeout(60_000) });
      await res.arrayBuffer();
      worstMs = Math.max(worstMs, performance.now() - started);
      polls += 1;
      await sleep(50);
    }
  })();
  // A failed poll is reported where stop() awaits the loop, not as an unhandled rejection before it.
  loop.catch(() => undefined);
  return {
    stop: async () => {
      running = false;
      await loop;
      // VmHWM: the largest resident set the process has had since it started.
      const status = await readFile(`/proc/${serve.child.pid}/status`, 'utf8');
      const kib = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
      return { polls, worstMs: Math.round(worstMs), peakRssMiB: Math.round(kib / 1024) };
    },
  };
}

describe('raddraft serve fails hostile images with their reasons, for good, and keeps answering', () => {
  let peers: Peers;
  let serve: ServeProcess;
  let dir: string;
  let jobs: ApiJob[];
  let images: Record<'bomb' | 'giant' | 'shortSegment' | 'cutFrame' | 'whole', HostileImage>;
  let viewer: { status: number; body: string };
  let health: ReturnType<typeof watchHealth> | undefined;

  beforeAll(async () => {
    peers = await startPeers();
    dir = await mkdtemp(path.join(tmpdir(), 'raddraft-bombs-'));
    const source = syntaxFixture('explicit-le');
    images = {
      bomb: await writeDeflateBomb(source, dir),
      giant: await writeRleGiant(source, dir),
      shortSegment: await writeRleShortSegment(source, dir),
      cutFrame: await writeRleCutFrame(source, dir),
      whole: await writeRleWhole(source, dir),
    };
    // The review viewer takes its instances from the PACS.
    await stowFiles(peers.orthanc.dicomWebUrl, [images.giant.file]);
    serve = await startServe(serviceEnv(peers, path.join(dir, 'data'), {
      RADDRAFT_INTAKE: 'stow', RADDRAFT_STOW_AUTH: `bearer:${TOKEN}`, RADDRAFT_PUSH_VERIFY: 'none',
      // A retryable failure would wait an hour: only a permanent one reaches `dead` within the test.
      RADDRAFT_RETRY_SECONDS: '3600',
    }));
    health = watchHealth(serve);
    const all = Object.values(images);
    await stowFiles(`http://127.0.0.1:${serve.port}/dicom-web`, all.map((i) => i.file), { authorization: `Bearer ${TOKEN}` });
    // A drafted job ends `drafted` (its deliveries go through the outbox) or, where it is posted in-line, `posted`.
    jobs = await waitForJobs(serve, all.map((i) => i.studyUid), ['reported', 'dead', 'failed'], 180_000);
    const { giant } = images;
    const res = await serve.api(`/review/images/${giant.studyUid}/${giant.seriesUid}/${giant.sopUid}?size=1024`, { signal: AbortSignal.timeout(120_000) });
    viewer = { status: res.status, body: await res.text() };
    const figures = await health.stop();
    health = undefined;
    console.log(`while raddraft serve processed the hostile images: ${figures.polls} /healthz polls, slowest ${figures.worstMs} ms; peak resident memory (VmHWM) ${figures.peakRssMiB} MiB`);
    await mkdir(ARTIFACTS, { recursive: true });
    await writeFile(path.join(ARTIFACTS, 'image-bombs-service.json'), `${JSON.stringify(figures, null, 2)}\n`);
  });

  afterAll(async () => {
    await health?.stop().catch(() => undefined);
    await serve?.kill('SIGTERM');
    await peers?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const jobOf = (image: HostileImage) => jobs.find((j) => j.studyInstanceUid === image.studyUid)!;

  it('fails the deflated file that inflates to a gibibyte, past what its header declares', () => {
    const { bomb } = images;
    expect(jobOf(bomb).state).toBe('dead');
    expect(jobOf(bomb).reason).toMatch(new RegExp(
      `^instance ${bomb.sopUid} \\(transfer syntax ${DEFLATED.replace(/\./g, '\\.')}\\): the deflated data set inflates past \\d+ bytes, more than its header declares \\(.* = 2097152 bytes of pixel data\\)$`,
    ));
  });

  it('fails the RLE file claiming 40,000 × 40,000 pixels, naming RADDRAFT_MAX_PIXELS', () => {
    expect(jobOf(images.giant)).toMatchObject({
      state: 'dead',
      reason: `instance ${images.giant.sopUid} (transfer syntax ${RLE}): Rows × Columns = 40000 × 40000 = 1600000000 pixels in a frame, more than RADDRAFT_MAX_PIXELS (100000000)`,
    });
  });

  it('fails truncated RLE frames instead of drafting the zeros they would decode to', () => {
    expect(jobOf(images.shortSegment)).toMatchObject({
      state: 'dead',
      reason: `instance ${images.shortSegment.sopUid} (transfer syntax ${RLE}): RLE segment 1 of 1 decodes to 1000 bytes, but Rows × Columns = 256 × 256 needs 65536: the frame is truncated`,
    });
    expect(jobOf(images.cutFrame)).toMatchObject({
      state: 'dead',
      reason: `instance ${images.cutFrame.sopUid} (transfer syntax ${RLE}): RLE segment 2 of 2 starts at byte 3136, past the end of the frame's 1088 bytes: the frame is truncated`,
    });
  });

  it('drafts the whole RLE image sent alongside them', () => {
    expect(jobOf(images.whole).state).toBe('drafted');
    expect(peers.model.requests.length).toBe(1);
  });

  it('answers a review viewer request for the 40,000 × 40,000 image with the reason, rendered off the main thread', () => {
    expect(viewer.status).toBe(422);
    expect(JSON.parse(viewer.body)).toMatchObject({
      resourceType: 'OperationOutcome',
      issue: [{ code: 'processing', diagnostics: expect.stringContaining('40000 × 40000 = 1600000000 pixels in a frame, more than RADDRAFT_MAX_PIXELS (100000000)') }],
    });
  });

  it('keeps answering /healthz afterwards', async () => {
    expect((await serve.api('/healthz', { signal: AbortSignal.timeout(10_000) })).status).toBe(200);
  });
});
