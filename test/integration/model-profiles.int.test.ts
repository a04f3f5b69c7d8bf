import { afterAll, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { LingshuClient } from '../../src/model/lingshu.js';
import { MEDGEMMA_PROFILE, profileFor, readProfileFile } from '../../src/model/profiles.js';
import { buildReportMessages } from '../../src/model/prompt.js';
import { chatRequestBody } from '../../src/model/chat-body.js';

jest.setTimeout(30_000);

const log = createLogger({ level: 'silent' });
const REPLY = 'Findings: Clear lungs. Normal heart size.\nImpression: No acute process.';

interface Sent { model: string; messages: { role: string; content: string | { type: string; text?: string; image_url?: { url: string } }[] }[] }

describe('model profiles: each served model asked as it was instructed', () => {
  let server: Server;
  let url: string;
  let received: Sent[] = [];
  let work: string;
  let png: Buffer;

  beforeAll(async () => {
    // The model is the one thing stood in for: an OpenAI-compatible endpoint that records what it is sent.
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const sent = JSON.parse(body) as Sent;
        received.push(sent);
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion', created: 0, model: sent.model, choices: [{ index: 0, message: { role: 'assistant', content: REPLY }, finish_reason: 'stop' }] }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    work = await mkdtemp(path.join(tmpdir(), 'raddraft-profiles-'));
    png = await sharp({ create: { width: 812, height: 1008, channels: 3, background: { r: 128, g: 128, b: 128 } } }).greyscale().png().toBuffer();
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(work, { recursive: true, force: true });
  });
  beforeEach(() => {
    received = [];
  });

  const settings = (model: string, env: Record<string, string> = {}) => ({
    RADDRAFT_DICOMWEB_URL: 'http://pacs/dicom-web', RADDRAFT_FHIR_URL: 'http://fhir/R4', RADDRAFT_LINGSHU_URL: url, RADDRAFT_LINGSHU_MODEL: model, ...env,
  });
  const client = (model: string, profile?: ReturnType<typeof readProfileFile>, env: Record<string, string> = {}) =>
    new LingshuClient(loadConfig(settings(model, env)).lingshu, log, { retryBaseMs: 10, ...(profile ? { profile } : {}) });
  const imageSize = async (part: { image_url?: { url: string } }) => sharp(Buffer.from(part.image_url!.url.split(',')[1]!, 'base64')).metadata();

  it('asks MedGemma as its model card does: a system message, the request before the images, 896 × 896 images', async () => {
    const draft = await client('google/medgemma-4b-it').draft({ images: [{ png }, { png }], views: ['PA', 'LATERAL'] });
    const [sent] = received;
    expect(sent!.messages[0]).toEqual({ role: 'system', content: 'You are an expert radiologist.' });
    const content = sent!.messages[1]!.content as { type: string; text?: string; image_url?: { url: string } }[];
    expect(content.map((p) => p.type)).toEqual(['text', 'image_url', 'image_url']);
    expect(content[0]!.text).toBe(MEDGEMMA_PROFILE.prompt);
    for (const part of content.slice(1)) expect(await imageSize(part)).toMatchObject({ width: 896, height: 896 });
    expect(draft).toMatchObject({ findings: 'Clear lungs. Normal heart size.', impression: 'No acute process.', promptVersion: 'medgemma-report-1', model: 'google/medgemma-4b-it' });
  });

  it('asks Lingshu with MedEvalKit\'s messages byte for byte, images on the 28-pixel grid as rendered', async () => {
    const draft = await client('lingshu-medical-mllm/Lingshu-32B').draft({ images: [{ png }], views: ['PA'] });
    expect(received[0]!.messages).toEqual((JSON.parse(chatRequestBody({ messages: buildReportMessages([{ png }]) }).toString()) as { messages: unknown }).messages);
    expect(draft.promptVersion).toBe('medevalkit-report-1');
    expect(profileFor('google/medgemma-27b-it').name).toBe('medgemma');
    expect(profileFor('some/other-vlm').name).toBe('lingshu');
  });

  it('takes another vision model\'s profile from a JSON file and names what is wrong with a bad one', async () => {
    const file = path.join(work, 'site.json');
    await writeFile(file, JSON.stringify({ name: 'site-vlm', system: 'You read chest radiographs.', prompt: 'Write Findings: and Impression: for this study.', imageSide: 448 }));
    const profile = readProfileFile(file);
    const draft = await client('site/vlm', profile).draft({ images: [{ png }], views: ['PA'] });
    const content = received[0]!.messages[1]!.content as { type: string; text?: string; image_url?: { url: string } }[];
    expect(content[0]!.text).toBe('Write Findings: and Impression: for this study.');
    expect(await imageSize(content[1]!)).toMatchObject({ width: 448, height: 448 });
    expect(draft.promptVersion).toBe('site-vlm-report');

    // The same file named by RADDRAFT_MODEL_PROFILE, and a built-in profile chosen whatever the model's name.
    received = [];
    await client('site/vlm', undefined, { RADDRAFT_MODEL_PROFILE: file }).draft({ images: [{ png }], views: ['PA'] });
    expect(received[0]!.messages[0]).toEqual({ role: 'system', content: 'You read chest radiographs.' });
    expect(client('site/vlm', undefined, { RADDRAFT_MODEL_PROFILE: 'medgemma' }).promptVersion).toBe('medgemma-report-1');
    expect(() => loadConfig(settings('site/vlm', { RADDRAFT_MODEL_PROFILE: 'gemma' }))).toThrow(/RADDRAFT_MODEL_PROFILE/);

    await writeFile(file, JSON.stringify({ prompt: 'Describe the image.' }));
    expect(() => readProfileFile(file)).toThrow(`model profile ${file}: "prompt" must ask for Findings and Impression sections`);
    await writeFile(file, JSON.stringify({ prompt: 'Findings and Impression', imageSide: 10.5 }));
    expect(() => readProfileFile(file)).toThrow('"imageSide" must be a whole number of pixels from 28 to 4096');
  });
});
