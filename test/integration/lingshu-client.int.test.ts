import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import sharp from 'sharp';
import { loadConfig } from '../../src/config/load.js';
import { startLingshuStandIn, type LingshuStandIn } from '../../src/demo/lingshu-standin.js';
import { createLogger } from '../../src/log.js';
import { CircuitBreaker } from '../../src/model/breaker.js';
import { LingshuClient, ModelUnavailableError } from '../../src/model/lingshu.js';

jest.setTimeout(60_000);

const log = createLogger({ level: 'silent' });

describe('the Lingshu client against an OpenAI-compatible server', () => {
  let standIn: LingshuStandIn;
  let png: Buffer;

  beforeAll(async () => {
    standIn = await startLingshuStandIn();
    png = await sharp(Buffer.alloc(224 * 280, 90), { raw: { width: 224, height: 280, channels: 1 } }).png().toBuffer();
  });
  afterAll(async () => standIn.stop());
  afterEach(() => {
    standIn.requests.length = 0;
    standIn.setDefault({ kind: 'report' });
    standIn.outage('503', 0);
    standIn.slowBody(0);
    standIn.rejectStructured(false);
  });

  const client = (env: Record<string, string> = {}, breaker?: CircuitBreaker) =>
    new LingshuClient(loadConfig({
      RADDRAFT_DICOMWEB_URL: 'http://pacs/dicom-web', RADDRAFT_FHIR_URL: 'http://fhir/R4', RADDRAFT_LINGSHU_URL: standIn.url, ...env,
    }).lingshu, log, { retryBaseMs: 50, ...(breaker ? { breaker } : {}) });
  const request = () => ({ images: [{ png }], views: ['PA'] });

  it('waits as long as a 429\'s Retry-After says before trying again', async () => {
    standIn.script({ kind: 'error', status: 429, retryAfterSeconds: 1 }, { kind: 'report' });
    const draft = await client().draft(request());
    expect(draft.impression).toBe('No acute cardiopulmonary process.');
    const [first, second] = standIn.requests;
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(1000);
  });

  it('sends the request body whole, with its length (not in chunks)', async () => {
    await client().draft(request());
    const { framing } = standIn.requests[0]!;
    expect(framing.bytes).toBeGreaterThan(png.length);
    expect(framing).toEqual({ contentLength: String(framing.bytes), transferEncoding: undefined, bytes: framing.bytes });
  });

  it('tries again after a 503 and gets the draft', async () => {
    standIn.script({ kind: 'error', status: 503 }, { kind: 'report' });
    const draft = await client().draft(request());
    expect(draft.findings).toContain('The lungs are clear');
    expect(standIn.requests.map((r) => r.answered)).toEqual(['error', 'report']);
  });

  it('puts drafting on hold when the endpoint is down, and stops calling it while the breaker is open', async () => {
    standIn.outage('drop', Date.now() + 60_000);
    const breaker = new CircuitBreaker(5, 30_000);
    const c = client({}, breaker);
    await expect(c.draft(request())).rejects.toThrow(ModelUnavailableError);
    expect(standIn.requests).toHaveLength(4);
    await expect(c.draft(request())).rejects.toThrow(/waiting for Lingshu at .*: it cannot be reached/);
    expect(breaker.state).toBe('open');
    const sent = standIn.requests.length;
    const err = (await c.draft(request()).then(() => undefined, (e: unknown) => e)) as ModelUnavailableError;
    expect(err).toBeInstanceOf(ModelUnavailableError);
    expect(err.message).toMatch(/it failed repeatedly and is paused until/);
    expect(err.until).toBeGreaterThan(Date.now() + 20_000);
    expect(standIn.requests.length).toBe(sent);
  });

  it('treats a reply that trickles in past the timeout as the endpoint failing', async () => {
    standIn.slowBody(1500);
    await expect(client({ RADDRAFT_MODEL_TIMEOUT_SECONDS: '1' }).draft(request())).rejects.toThrow(/it did not answer in time|cannot be reached/);
  });

  it('asks for structured output when configured and reads the JSON reply', async () => {
    const draft = await client({ RADDRAFT_STRUCTURED_OUTPUT: 'on' }).draft(request());
    expect(standIn.requests[0]!.structured).toBe(true);
    expect(draft.text.startsWith('{"findings":')).toBe(true);
    expect(draft.impression).toBe('No acute cardiopulmonary process.');
  });

  it('falls back to text when the server refuses structured output, and keeps to text afterwards', async () => {
    standIn.rejectStructured(true);
    const c = client({ RADDRAFT_STRUCTURED_OUTPUT: 'on' });
    expect((await c.draft(request())).impression).toBe('No acute cardiopulmonary process.');
    await c.draft(request());
    expect(standIn.requests.map((r) => [r.structured, r.answered])).toEqual([[true, 'error'], [false, 'report'], [false, 'report']]);
  });

  it('flags what the safety checks find in a reply', async () => {
    standIn.script({ kind: 'report', text: 'Findings: Compared to the prior radiograph, the lungs are clear. On the lateral view no effusion.\nImpression: No acute process.' });
    const draft = await client().draft({ images: [{ png }], views: ['AP'] });
    expect(draft.flags).toEqual([
      'findings refers to a prior or comparison exam, but none was given: "Compared to the prior radiograph, the lungs are clear."',
      'findings mentions a lateral view, but no lateral image was sent: "On the lateral view no effusion."',
    ]);
  });
});
