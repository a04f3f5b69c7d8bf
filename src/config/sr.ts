import type { HttpAuth } from './load.js';
import type { SettingSchema } from './schema.js';

/** Where the dicom-sr output stores its SRs: a DICOMweb archive (STOW-RS) or a C-STORE SCP. */
export type SrDestination =
  | { readonly kind: 'dicomweb'; readonly url: string; readonly auth: HttpAuth }
  | { readonly kind: 'dimse'; readonly host: string; readonly port: number; readonly calledAet: string; readonly callingAet: string };

export interface SrConfig {
  readonly destination: SrDestination;
  /** The Verifying Organization of a signed SR when the study names no institution. */
  readonly organization: string;
  readonly timeoutMs: number;
}

const AET = '[!-\\[\\]-~][ -\\[\\]-~]{0,15}';

export const srSettings = {
  RADDRAFT_SR_DESTINATION: {
    type: 'string', pattern: `^(https?://[^\\s/?#]+[^\\s]*|dicom://${AET}@(\\[[0-9A-Fa-f:.]+\\]|[^\\s:/@\\[\\]]+):\\d{1,5}/?)$`,
    description: 'where the dicom-sr output stores SRs: unset = STOW-RS to RADDRAFT_DICOMWEB_URL; an http(s) DICOMweb base of another archive; dicom://AET@host:port for C-STORE',
    examples: ['dicom://PACS@pacs.hospital.example:104'], 'x-fault': 'is not an http(s) DICOMweb URL or dicom://AET@host:port',
  },
  RADDRAFT_SR_AUTH: {
    type: 'string', pattern: '^(none|basic:[^:]+:.+|bearer:.+)$', 'x-secret': true,
    description: 'credentials for an http(s) RADDRAFT_SR_DESTINATION (default: RADDRAFT_DICOMWEB_AUTH when the SR goes to the PACS, else none)',
    examples: ['bearer:a-long-random-token'], 'x-fault': 'is not one of none, basic:USER:PASS, bearer:TOKEN',
  },
  RADDRAFT_SR_ORGANIZATION: {
    type: 'string', pattern: '^[^\\\\\\r\\n]{1,64}$', default: 'Radiology',
    description: 'Verifying Organization of a signed SR when the study\'s images name no Institution Name', examples: ['St Elsewhere Radiology'],
    'x-fault': 'is not 1 to 64 characters on one line without a backslash',
  },
  RADDRAFT_SR_TIMEOUT_SECONDS: {
    type: 'integer', minimum: 1, maximum: 600, default: 30,
    description: 'how long one store of an SR (STOW-RS request or C-STORE association) may take before it counts as failed', examples: [30],
  },
} satisfies Record<string, SettingSchema>;

type Get = (name: keyof typeof srSettings) => string | undefined;

/** The SR settings, read after the schema has checked each of them; `pacs`: RADDRAFT_DICOMWEB_URL and its auth. */
export function srConfig(get: Get, pacs: { url: string; auth: HttpAuth }, callingAet: string, parseAuth: (value: string) => HttpAuth): SrConfig {
  const target = get('RADDRAFT_SR_DESTINATION');
  const auth = get('RADDRAFT_SR_AUTH');
  let destination: SrDestination;
  const dicom = target ? /^dicom:\/\/(.+)@(\[[^\]]+\]|[^:/@]+):(\d+)\/?$/.exec(target) : null;
  if (dicom) {
    destination = { kind: 'dimse', calledAet: dicom[1]!, host: dicom[2]!.replace(/^\[|\]$/g, ''), port: Number(dicom[3]), callingAet };
  } else if (target) {
    destination = { kind: 'dicomweb', url: target.replace(/\/+$/, ''), auth: parseAuth(auth ?? 'none') };
  } else {
    destination = { kind: 'dicomweb', url: pacs.url, auth: auth ? parseAuth(auth) : pacs.auth };
  }
  return { destination, organization: get('RADDRAFT_SR_ORGANIZATION') ?? 'Radiology', timeoutMs: Number(get('RADDRAFT_SR_TIMEOUT_SECONDS') ?? 30) * 1000 };
}

/** Settings that are valid alone but not together. */
export function srProblems(raw: Record<string, string | number>): string[] {
  const target = raw.RADDRAFT_SR_DESTINATION;
  const port = typeof target === 'string' ? /:(\d+)\/?$/.exec(target)?.[1] : undefined;
  if (typeof target === 'string' && target.startsWith('dicom://') && port && (Number(port) < 1 || Number(port) > 65535)) {
    return [`RADDRAFT_SR_DESTINATION: port ${port} is not between 1 and 65535; for example RADDRAFT_SR_DESTINATION=dicom://PACS@pacs.hospital.example:104`];
  }
  return [];
}

/** Where SRs go, for `doctor` and the start-up line: never the credentials, only their kind. */
export function describeSrDestination(sr: SrConfig): string {
  const d = sr.destination;
  return d.kind === 'dimse'
    ? `C-STORE to ${d.calledAet} at ${d.host}:${d.port} (calling AE title ${d.callingAet})`
    : `STOW-RS to ${d.url} (auth ${d.auth.kind})`;
}
