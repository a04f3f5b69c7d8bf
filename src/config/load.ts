import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { hl7Config, hl7Problems, type Hl7Config } from './hl7.js';
import { REQUIRED_SETTINGS, configSchema, settings, type SettingName, type SettingSchema } from './schema.js';
import { signInProblems } from './security-checks.js';
import { describeSrDestination, srConfig, srProblems, type SrConfig } from './sr.js';

export type Intake = 'qido' | 'fhir' | 'stow' | 'dimse';

export type HttpAuth =
  | { kind: 'none' }
  | { kind: 'basic'; user: string; password: string }
  | { kind: 'bearer'; token: string };

export type FhirAuth =
  | { kind: 'none' }
  | { kind: 'bearer'; token: string }
  | { kind: 'smart'; clientId: string; keyFile: string; tokenUrl: string };

export interface Config {
  readonly dicomweb: { readonly url: string; readonly auth: HttpAuth };
  readonly fhir: { readonly url: string; readonly auth: FhirAuth };
  readonly lingshu: {
    readonly url: string;
    readonly model: string;
    readonly apiKey: string | undefined;
    readonly timeoutMs: number;
    readonly maxInFlight: number;
    readonly prompt: 'medevalkit' | 'clinical-context' | 'prior-report';
    /** auto, lingshu, medgemma or a JSON profile file (model/profiles.ts). */
    readonly profile: string;
    readonly structuredOutput: boolean;
    readonly safety: 'flag' | 'strip';
    readonly language: string;
    /** Samples besides the greedy draft for consistency flags (0: none) and their temperature. */
    readonly consistency: { readonly samples: number; readonly temperature: number };
    /** Names of the critical findings (model/urgent.ts) that raise a draft's review priority; empty: none. */
    readonly urgentFindings: readonly string[];
  };
  readonly dataDir: string;
  readonly databaseUrl: string | undefined;
  readonly port: number;
  /** Bind address of the HTTP server. */
  readonly host: string;
  /** Bearer token for automation on the job API; never a signer. */
  readonly apiToken: string | undefined;
  readonly intake: readonly Intake[];
  /** shadow: drafts are kept in the job store and nothing is posted to the FHIR server. */
  readonly mode: 'live' | 'shadow';
  /** Outputs every report event is delivered to (RADDRAFT_OUTPUTS); none in shadow mode. */
  readonly outputs: readonly string[];
  /** How reports are written to FHIR: the draft's status, the model Device's card, owner and contact, the audit sink. */
  readonly fhirReport: {
    readonly draftStatus: 'partial' | 'preliminary';
    readonly auditUrl: string | undefined;
    readonly modelCardUrl: string;
    readonly organization: string | undefined;
    readonly modelContact: string | undefined;
  };
  readonly dimse: {
    readonly port: number;
    readonly aet: string;
    readonly peers: readonly string[] | '*';
    readonly maxPduBytes: number;
    readonly idleSeconds: number;
    readonly maxAssociations: number;
  };
  readonly stowAuth: HttpAuth;
  /** pacs: pushed studies are drafted only once the PACS holds them for the same patient. */
  readonly pushVerify: 'pacs' | 'none';
  readonly maxInstanceBytes: number;
  readonly fhirNotifyToken: string | undefined;
  readonly minFreeBytes: number;
  readonly pollSeconds: number;
  readonly stableSeconds: number;
  readonly lookbackDays: number;
  /** The wider, slower QIDO-RS sweep for studies dated before the look-back; 0 days: none. */
  readonly sweepDays: number;
  readonly sweepMinutes: number;
  readonly workers: number;
  readonly maxAttempts: number;
  /** Image size ceilings and the memory of a rendering thread. */
  readonly images: { readonly maxPixels: number; readonly renderMemoryMb: number };
  readonly retrySeconds: number;
  readonly drainSeconds: number;
  readonly logLevel: string;
  readonly publicUrl: string | undefined;
  readonly auth: AuthConfig | undefined;
  readonly localReviewer: string | undefined;
  readonly sessionSecret: string | undefined;
  /** The RIS output and the listener for final reports (RADDRAFT_HL7_*). */
  readonly hl7: Hl7Config;
  /** Where and how the dicom-sr output stores SRs (RADDRAFT_SR_*). */
  readonly sr: SrConfig;
}

/** Sign-in: API tokens are checked against the issuer's keys; the pages sign in through it when a client is set. */
export interface AuthConfig {
  readonly issuer: string;
  /** RADDRAFT_AUTH_AUDIENCE, else the client id: tokens for any other audience are refused. */
  readonly audience: string;
  readonly jwksUrl: string | undefined;
  readonly clientId: string | undefined;
  readonly clientSecret: string | undefined;
  readonly practitionerClaim: string;
  /** Who may sign: a role the token carries, and/or a list of Practitioners (both must hold when both are set). */
  readonly signerRole: string | undefined;
  readonly roleClaim: string;
  readonly signers: readonly string[] | undefined;
}

/** Start-up stops with one line per problem; each line names the setting, the fault and a good example. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`raddraft cannot start, the configuration has ${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

type Raw = Record<string, string | number>;

const ajv = new Ajv({ allErrors: true, coerceTypes: true, useDefaults: true, strict: true });
ajv.addKeyword({ keyword: 'x-secret', schemaType: 'boolean' });
ajv.addKeyword({ keyword: 'x-fault', schemaType: 'string' });
type Validator = ReturnType<typeof ajv.compile<Record<SettingName, string | number | undefined>>>;
const validators = new Map<string, Validator>();

/** The schema's validator, with a different list of required settings when a command needs fewer. */
function validatorFor(required: readonly SettingName[] = REQUIRED_SETTINGS): Validator {
  const key = [...required].sort().join(',');
  let v = validators.get(key);
  if (!v) {
    v = ajv.compile<Record<SettingName, string | number | undefined>>({ ...configSchema, required: [...required] });
    validators.set(key, v);
  }
  return v;
}

function isSetting(name: string): name is SettingName {
  return Object.hasOwn(settings, name);
}

function spec(name: SettingName): SettingSchema {
  return settings[name];
}

function shown(name: SettingName, value: unknown): string {
  if (spec(name)['x-secret']) return '(value hidden)';
  return JSON.stringify(value);
}

function example(name: SettingName): string {
  return `for example ${name}=${spec(name).examples[0]}`;
}

function describeError(err: ErrorObject, raw: Raw): string {
  if (err.keyword === 'required') {
    const name = (err.params as { missingProperty: string }).missingProperty as SettingName;
    return `${name} is missing (${spec(name).description}); ${example(name)}`;
  }
  if (err.keyword === 'additionalProperties') {
    const extra = (err.params as { additionalProperty: string }).additionalProperty;
    return unknownSetting(extra);
  }
  const name = err.instancePath.replace(/^\//, '') as SettingName;
  const s = spec(name);
  const value = shown(name, raw[name]);
  let fault: string;
  switch (err.keyword) {
    case 'type':
      fault = s.type === 'integer' ? 'is not a whole number' : 'is not text';
      break;
    case 'minimum':
    case 'maximum':
      fault = `is outside ${s.minimum}..${s.maximum}`;
      break;
    case 'pattern':
      fault = s['x-fault'] ?? 'has the wrong form';
      break;
    case 'minLength':
      fault = 'is empty';
      break;
    default:
      fault = err.message ?? 'is not valid';
  }
  return `${name}=${value} ${fault}; ${example(name)}`;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

function unknownSetting(name: string): string {
  const close = Object.keys(settings)
    .map((k) => ({ k, d: editDistance(name, k) }))
    .sort((x, y) => x.d - y.d)[0];
  const hint = close && close.d <= 3 ? `; did you mean ${close.k}?` : '';
  return `${name} is not a raddraft setting${hint}`;
}

function readConfigFile(file: string): Raw {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError([`--config ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new ConfigError([`--config ${file} is not valid JSON: ${(e as Error).message}`]);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError([`--config ${file} must hold one JSON object of settings, e.g. {"RADDRAFT_FHIR_URL": "..."}`]);
  }
  const out: Raw = {};
  for (const [k, v] of Object.entries(parsed)) {
    if (typeof v !== 'string' && typeof v !== 'number') {
      throw new ConfigError([`--config ${file}: ${k} must be a string or a number`]);
    }
    out[k] = v;
  }
  return out;
}

function parseHttpAuth(value: string): HttpAuth {
  if (value.startsWith('basic:')) {
    const rest = value.slice('basic:'.length);
    const i = rest.indexOf(':');
    return { kind: 'basic', user: rest.slice(0, i), password: rest.slice(i + 1) };
  }
  if (value.startsWith('bearer:')) return { kind: 'bearer', token: value.slice('bearer:'.length) };
  return { kind: 'none' };
}

function parseFhirAuth(value: string): FhirAuth {
  if (value.startsWith('bearer:')) return { kind: 'bearer', token: value.slice('bearer:'.length) };
  if (value.startsWith('smart:')) {
    const [clientId = '', keyFile = '', ...url] = value.slice('smart:'.length).split(':');
    return { kind: 'smart', clientId, keyFile, tokenUrl: url.join(':') };
  }
  return { kind: 'none' };
}

/** Problems in the order of the settings table, so the list reads like the documentation. */
function inTableOrder(problems: string[]): string[] {
  const order = Object.keys(settings);
  const rank = (p: string) => {
    const i = order.indexOf(/^(RADDRAFT_[A-Z_]+)/.exec(p)?.[1] ?? '');
    return i < 0 ? order.length : i;
  };
  return [...problems].sort((a, b) => rank(a) - rank(b));
}

const trimSlash = (u: string): string => u.replace(/\/+$/, '');

/**
 * Reads settings from an optional JSON file and the environment (the environment wins), validates them all at
 * once and returns a frozen Config. Empty environment values count as unset.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, file?: string, options: { required?: readonly SettingName[] } = {}): Config {
  const validate = validatorFor(options.required);
  const raw: Raw = file ? readConfigFile(file) : {};
  const problems: string[] = [];
  for (const [k, v] of Object.entries(env)) {
    if (!k.startsWith('RADDRAFT_') || v === undefined || v === '') continue;
    if (!isSetting(k)) problems.push(unknownSetting(k));
    else raw[k] = v;
  }
  const candidate: Raw = Object.fromEntries(Object.entries(raw).filter(([k]) => isSetting(k)));
  if (!validate(candidate)) {
    for (const err of validate.errors ?? []) problems.push(describeError(err, raw));
  }
  for (const k of Object.keys(raw)) if (!isSetting(k) && file) problems.push(`${unknownSetting(k)} (in ${file})`);
  if (raw.RADDRAFT_AUTH_CLIENT_ID !== undefined && raw.RADDRAFT_AUTH_ISSUER === undefined) {
    problems.push('RADDRAFT_AUTH_CLIENT_ID is set without RADDRAFT_AUTH_ISSUER; set the issuer too, for example RADDRAFT_AUTH_ISSUER=https://login.hospital.example/realms/radiology');
  }
  if (raw.RADDRAFT_AUTH_CLIENT_ID !== undefined && raw.RADDRAFT_PUBLIC_URL === undefined) {
    problems.push('RADDRAFT_PUBLIC_URL is missing: sign-in needs the address users reach raddraft at, for example RADDRAFT_PUBLIC_URL=https://raddraft.hospital.example');
  }
  const intakes = String(raw.RADDRAFT_INTAKE ?? 'qido');
  if (/\bdimse\b/.test(intakes) && raw.RADDRAFT_DIMSE_PEERS === undefined) {
    problems.push('RADDRAFT_DIMSE_PEERS is missing: the C-STORE SCP accepts only the calling AE titles listed there; for example RADDRAFT_DIMSE_PEERS=MODALITY1,PACS (or * for any)');
  }
  if (/\bstow\b/.test(intakes) && raw.RADDRAFT_STOW_AUTH === undefined) {
    problems.push('RADDRAFT_STOW_AUTH is missing: STOW-RS accepts pushes only from senders with credentials; for example RADDRAFT_STOW_AUTH=bearer:a-long-random-token (or RADDRAFT_STOW_AUTH=none to accept any sender on the network)');
  }
  if (/\bfhir\b/.test(intakes) && raw.RADDRAFT_FHIR_NOTIFY_TOKEN === undefined) {
    problems.push('RADDRAFT_FHIR_NOTIFY_TOKEN is missing: FHIR notifications must carry it; for example RADDRAFT_FHIR_NOTIFY_TOKEN=a-random-string-of-16-or-more-characters');
  }
  problems.push(...signInProblems(raw), ...hl7Problems(raw), ...srProblems(raw));
  if (problems.length > 0) throw new ConfigError(inTableOrder([...new Set(problems)]));

  const v = candidate as Record<SettingName, string | number | undefined>;
  const str = (k: SettingName): string => String(v[k]);
  const int = (k: SettingName): number => Number(v[k]);
  const opt = (k: SettingName): string | undefined => (v[k] === undefined ? undefined : String(v[k]));
  const config: Config = {
    // A command that needs fewer settings (raddraft eval) leaves the ones it does not need empty.
    dicomweb: { url: trimSlash(opt('RADDRAFT_DICOMWEB_URL') ?? ''), auth: parseHttpAuth(str('RADDRAFT_DICOMWEB_AUTH')) },
    fhir: { url: trimSlash(opt('RADDRAFT_FHIR_URL') ?? ''), auth: parseFhirAuth(str('RADDRAFT_FHIR_AUTH')) },
    lingshu: {
      url: trimSlash(str('RADDRAFT_LINGSHU_URL')),
      model: str('RADDRAFT_LINGSHU_MODEL'),
      apiKey: v.RADDRAFT_LINGSHU_API_KEY === undefined ? undefined : str('RADDRAFT_LINGSHU_API_KEY'),
      timeoutMs: int('RADDRAFT_MODEL_TIMEOUT_SECONDS') * 1000,
      maxInFlight: int('RADDRAFT_MAX_IN_FLIGHT'),
      prompt: str('RADDRAFT_PROMPT') as Config['lingshu']['prompt'],
      profile: str('RADDRAFT_MODEL_PROFILE'),
      structuredOutput: str('RADDRAFT_STRUCTURED_OUTPUT') === 'on',
      safety: str('RADDRAFT_SAFETY') === 'strip' ? 'strip' : 'flag',
      language: str('RADDRAFT_REPORT_LANGUAGE'),
      consistency: { samples: int('RADDRAFT_CONSISTENCY_SAMPLES'), temperature: Number(str('RADDRAFT_CONSISTENCY_TEMPERATURE')) },
      urgentFindings: str('RADDRAFT_URGENT_FINDINGS').trim() === 'none' ? [] : [...new Set(str('RADDRAFT_URGENT_FINDINGS').split(',').map((s) => s.trim()))],
    },
    dataDir: path.resolve(str('RADDRAFT_DATA_DIR')),
    databaseUrl: v.RADDRAFT_DATABASE_URL === undefined ? undefined : str('RADDRAFT_DATABASE_URL'),
    port: int('RADDRAFT_PORT'),
    host: str('RADDRAFT_HOST'),
    apiToken: opt('RADDRAFT_API_TOKEN'),
    mode: str('RADDRAFT_MODE') === 'shadow' ? 'shadow' : 'live',
    outputs: [...new Set(str('RADDRAFT_OUTPUTS').split(',').map((s) => s.trim()))],
    fhirReport: {
      draftStatus: str('RADDRAFT_DRAFT_STATUS') === 'preliminary' ? 'preliminary' : 'partial',
      auditUrl: opt('RADDRAFT_AUDIT_URL')?.replace(/\/+$/, ''),
      modelCardUrl: str('RADDRAFT_MODEL_CARD_URL'),
      organization: opt('RADDRAFT_ORGANIZATION'),
      modelContact: opt('RADDRAFT_MODEL_CONTACT'),
    },
    intake: [...new Set(str('RADDRAFT_INTAKE').split(',').map((s) => s.trim() as Intake))],
    dimse: {
      port: int('RADDRAFT_DIMSE_PORT'),
      aet: str('RADDRAFT_DIMSE_AET'),
      peers: opt('RADDRAFT_DIMSE_PEERS') === '*' ? '*' : (opt('RADDRAFT_DIMSE_PEERS') ?? '').split(',').map((s) => s.trim()).filter(Boolean),
      maxPduBytes: int('RADDRAFT_DIMSE_MAX_PDU_BYTES'),
      idleSeconds: int('RADDRAFT_DIMSE_IDLE_SECONDS'),
      maxAssociations: int('RADDRAFT_DIMSE_MAX_ASSOCIATIONS'),
    },
    stowAuth: parseHttpAuth(opt('RADDRAFT_STOW_AUTH') ?? 'none'),
    pushVerify: str('RADDRAFT_PUSH_VERIFY') === 'none' ? 'none' : 'pacs',
    maxInstanceBytes: int('RADDRAFT_MAX_INSTANCE_MB') * 2 ** 20,
    fhirNotifyToken: opt('RADDRAFT_FHIR_NOTIFY_TOKEN'),
    minFreeBytes: int('RADDRAFT_MIN_FREE_MB') * 2 ** 20,
    pollSeconds: int('RADDRAFT_POLL_SECONDS'),
    stableSeconds: int('RADDRAFT_STABLE_SECONDS'),
    lookbackDays: int('RADDRAFT_LOOKBACK_DAYS'),
    sweepDays: int('RADDRAFT_SWEEP_DAYS'),
    sweepMinutes: int('RADDRAFT_SWEEP_MINUTES'),
    workers: int('RADDRAFT_WORKERS'),
    maxAttempts: int('RADDRAFT_MAX_ATTEMPTS'),
    images: { maxPixels: int('RADDRAFT_MAX_PIXELS'), renderMemoryMb: int('RADDRAFT_RENDER_MEMORY_MB') },
    retrySeconds: int('RADDRAFT_RETRY_SECONDS'),
    drainSeconds: int('RADDRAFT_DRAIN_SECONDS'),
    logLevel: str('RADDRAFT_LOG_LEVEL'),
    publicUrl: opt('RADDRAFT_PUBLIC_URL')?.replace(/\/+$/, ''),
    auth: opt('RADDRAFT_AUTH_ISSUER')
      ? {
          issuer: str('RADDRAFT_AUTH_ISSUER'),
          audience: opt('RADDRAFT_AUTH_AUDIENCE') ?? str('RADDRAFT_AUTH_CLIENT_ID'),
          jwksUrl: opt('RADDRAFT_AUTH_JWKS_URL'),
          clientId: opt('RADDRAFT_AUTH_CLIENT_ID'),
          clientSecret: opt('RADDRAFT_AUTH_CLIENT_SECRET'),
          practitionerClaim: str('RADDRAFT_AUTH_PRACTITIONER_CLAIM'),
          signerRole: opt('RADDRAFT_AUTH_SIGNER_ROLE'),
          roleClaim: str('RADDRAFT_AUTH_ROLE_CLAIM'),
          signers: opt('RADDRAFT_AUTH_SIGNERS')?.split(',').map((s) => s.trim()),
        }
      : undefined,
    localReviewer: opt('RADDRAFT_LOCAL_REVIEWER'),
    sessionSecret: opt('RADDRAFT_SESSION_SECRET'),
    hl7: hl7Config(opt),
    sr: srConfig(opt, { url: trimSlash(opt('RADDRAFT_DICOMWEB_URL') ?? ''), auth: parseHttpAuth(str('RADDRAFT_DICOMWEB_AUTH')) }, str('RADDRAFT_DIMSE_AET'), parseHttpAuth),
  };
  return deepFreeze(config);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** A description of the effective settings with secrets masked, for `doctor` and the start-up log line. */
export function describeConfig(config: Config): Record<string, string | number> {
  return {
    dicomweb: config.dicomweb.url,
    dicomwebAuth: config.dicomweb.auth.kind,
    fhir: config.fhir.url,
    fhirAuth: config.fhir.auth.kind,
    lingshu: config.lingshu.url,
    model: config.lingshu.model,
    lingshuApiKey: config.lingshu.apiKey ? 'set' : 'unset',
    jobStore: config.databaseUrl ? 'postgres' : `sqlite in ${config.dataDir}`,
    port: config.port,
    host: config.host,
    apiToken: config.apiToken ? 'set' : 'unset',
    intake: config.intake.join(','),
    outputs: config.mode === 'shadow' ? 'none (shadow mode)' : config.outputs.join(','),
    ...(config.outputs.includes('dicom-sr') ? { srDestination: describeSrDestination(config.sr) } : {}),
    ...(config.outputs.includes('hl7') ? { hl7Destination: config.hl7.destination ?? 'unset' } : {}),
    ...(config.hl7.listenPort !== undefined ? { hl7Listener: `port ${config.hl7.listenPort}, senders ${config.hl7.senders.map((s) => (s.address ? `${s.facility}@${s.address}` : s.facility)).join(',')}` } : {}),
    mode: config.mode === 'shadow' ? 'shadow: drafts kept in the job store, nothing posted' : 'live',
    signIn: config.auth ? `${config.auth.issuer}${config.auth.clientId ? '' : ' (API tokens only)'}` : `none: review pages only on 127.0.0.1${config.localReviewer ? `, signing as ${config.localReviewer}` : ', read-only'}`,
  };
}
