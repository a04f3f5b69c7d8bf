import { access, constants, mkdir } from 'node:fs/promises';
import type { Config } from './config/load.js';
import { describeConfig } from './config/load.js';
import { DicomWebClient } from './dicom/dicomweb.js';
import { cEcho } from './dicom/dimse-store.js';
import { FhirGateway } from './fhir/client.js';
import { MllpClient, parseMllpUrl } from './hl7/mllp-client.js';
import type { Logger } from './log.js';
import { LingshuClient } from './model/lingshu.js';
import sharp from 'sharp';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

async function check(name: string, fn: () => Promise<string>): Promise<Check> {
  try {
    return { name, ok: true, detail: await fn() };
  } catch (err) {
    return { name, ok: false, detail: (err as Error).message };
  }
}

/**
 * `raddraft doctor`: asks every configured endpoint the question raddraft will ask it and reports, in an
 * administrator's words, what answered and what must be fixed. Secrets are never printed.
 */
export async function runDoctor(config: Config, log: Logger): Promise<Check[]> {
  const dicomweb = new DicomWebClient({ url: config.dicomweb.url, auth: config.dicomweb.auth, timeoutMs: 15_000 });
  const fhir = new FhirGateway(config.fhir, { timeoutMs: 15_000 });
  const lingshu = new LingshuClient({ ...config.lingshu, timeoutMs: Math.max(30_000, config.lingshu.timeoutMs) }, log, { replyAttempts: 1, transportAttempts: 1 });
  return Promise.all([
    check('data directory', async () => {
      await mkdir(config.dataDir, { recursive: true });
      await access(config.dataDir, constants.W_OK);
      return `${config.dataDir} is writable`;
    }),
    check('DICOMweb (QIDO-RS)', async () => {
      await dicomweb.ping();
      return `${config.dicomweb.url} answers study searches`;
    }),
    check('FHIR server', async () => {
      const cs = (await fhir.capabilityStatement()) as { fhirVersion?: unknown; software?: { name?: unknown } };
      if (cs.fhirVersion !== undefined && typeof cs.fhirVersion === 'string' && !cs.fhirVersion.startsWith('4.0')) {
        throw new Error(`${config.fhir.url} is FHIR ${cs.fhirVersion}; raddraft writes FHIR R4 (4.0.x) — point RADDRAFT_FHIR_URL at the R4 base`);
      }
      const software = typeof cs.software?.name === 'string' ? ` (${cs.software.name})` : '';
      return `${config.fhir.url} answers /metadata, FHIR ${typeof cs.fhirVersion === 'string' ? cs.fhirVersion : 'version not stated'}${software}`;
    }),
    check('Lingshu model', async () => {
      const models = await lingshu.listModels();
      if (!models.includes(config.lingshu.model)) {
        throw new Error(
          `${config.lingshu.url} does not serve ${config.lingshu.model}; it serves ${models.join(', ') || 'no model'}. ` +
            'Set RADDRAFT_LINGSHU_MODEL to the name given to `vllm serve` (or its --served-model-name)',
        );
      }
      // One small image through the real prompt: the endpoint takes images and answers in the expected form.
      const png = await sharp(Buffer.alloc(112 * 112, 96), { raw: { width: 112, height: 112, channels: 1 } }).png().toBuffer();
      const started = Date.now();
      try {
        const draft = await lingshu.draft({ images: [{ png }], views: ['PA'] });
        const sections = [draft.findings ? 'Findings' : '', draft.impression ? 'Impression' : ''].filter(Boolean).join(' and ');
        return `${config.lingshu.url} serves ${config.lingshu.model}, took a test image and answered with ${sections} in ${Date.now() - started} ms`;
      } catch (err) {
        const why = (err as Error).message;
        if (/neither a Findings nor an Impression/.test(why)) {
          throw new Error(`${config.lingshu.model} answered the test image, but not in the "Findings: … Impression: …" form; is it a Lingshu model?`);
        }
        if (/HTTP 400/.test(why)) throw new Error(`${why}. If it says images are not allowed, serve the model with --limit-mm-per-prompt '{"image": 4}'`);
        throw err;
      }
    }),
    ...(config.outputs.includes('hl7') && config.mode !== 'shadow' ? [check('HL7 receiver (MLLP)', () => probeHl7(config))] : []),
    ...(config.outputs.includes('dicom-sr') && config.mode !== 'shadow' ? [check('PACS for SRs (dicom-sr)', () => probeSrDestination(config))] : []),
  ]);
}

/** Asks the SR destination what raddraft will need of it, without storing anything. */
async function probeSrDestination(config: Config): Promise<string> {
  const d = config.sr.destination;
  if (d.kind === 'dimse') {
    await cEcho(d, Math.min(config.sr.timeoutMs, 15_000));
    return `${d.calledAet} at ${d.host}:${d.port} accepts associations from ${d.callingAet} and answers C-ECHO; nothing was stored`;
  }
  await new DicomWebClient({ url: d.url, auth: d.auth, timeoutMs: 15_000 }).ping();
  return `${d.url} answers DICOMweb; SRs go there by STOW-RS (nothing was stored)`;
}

/** Connects to the RIS (no message is sent: a test message would be filed as a result). */
async function probeHl7(config: Config): Promise<string> {
  const target = parseMllpUrl(config.hl7.destination ?? '');
  if (!target) throw new Error('RADDRAFT_HL7_DESTINATION is not mllp://host:port or mllps://host:port');
  await new MllpClient(target, { ackTimeoutMs: config.hl7.ackTimeoutMs, connectTimeoutMs: 10_000, maxReplyBytes: 1 << 20 }).probe().catch((err: unknown) => {
    throw new Error(`${(err as Error).message.replace(/; waiting for it$/, '')}; check RADDRAFT_HL7_DESTINATION and that the RIS listens there`);
  });
  return `${config.hl7.destination} accepts connections${target.tls ? ' (TLS, certificate verified)' : ''}; no message was sent`;
}

export function formatDoctor(config: Config, checks: Check[]): string {
  const lines = ['raddraft doctor', ...Object.entries(describeConfig(config)).map(([k, v]) => `  ${k}: ${v}`), ''];
  for (const c of checks) lines.push(`${c.ok ? 'OK  ' : 'FAIL'} ${c.name}: ${c.detail}`);
  const failed = checks.filter((c) => !c.ok).length;
  lines.push('', failed ? `${failed} check(s) failed; raddraft will not draft until they pass.` : 'All checks passed.');
  return lines.join('\n');
}
