import { hl7Settings } from './hl7.js';
import { srSettings } from './sr.js';

/**
 * The settings raddraft reads, as a JSON Schema. Each property carries a description, an example (used in error
 * messages) and, for secrets, `x-secret` so that no message or `doctor` line ever echoes the value.
 */
export interface SettingSchema {
  type: 'string' | 'integer';
  description: string;
  examples: [string | number];
  default?: string | number;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  'x-secret'?: boolean;
  'x-fault'?: string;
}

const URL_PATTERN = '^https?://[^\\s/?#]+[^\\s]*$';

export const settings = {
  RADDRAFT_DICOMWEB_URL: {
    type: 'string', pattern: URL_PATTERN, description: 'DICOMweb base URL of the PACS',
    examples: ['http://orthanc:8042/dicom-web'], 'x-fault': 'is not an http(s) URL',
  },
  RADDRAFT_DICOMWEB_AUTH: {
    type: 'string', pattern: '^(none|basic:[^:]+:.+|bearer:.+)$', default: 'none', 'x-secret': true,
    description: 'DICOMweb credentials', examples: ['basic:raddraft:s3cret'],
    'x-fault': 'is not one of none, basic:USER:PASS, bearer:TOKEN',
  },
  RADDRAFT_FHIR_URL: {
    type: 'string', pattern: URL_PATTERN, description: 'FHIR R4 base URL',
    examples: ['http://fhir:8080/fhir/R4'], 'x-fault': 'is not an http(s) URL',
  },
  RADDRAFT_FHIR_AUTH: {
    type: 'string', pattern: '^(none|bearer:.+|smart:[^:]+:[^:]+:https?://.+)$', default: 'none', 'x-secret': true,
    description: 'FHIR credentials', examples: ['bearer:eyJhbGciOi...'],
    'x-fault': 'is not one of none, bearer:TOKEN, smart:CLIENT_ID:KEY_FILE:TOKEN_URL',
  },
  RADDRAFT_LINGSHU_URL: {
    type: 'string', pattern: URL_PATTERN, description: 'OpenAI-compatible base URL serving Lingshu',
    examples: ['http://vllm:8000/v1'], 'x-fault': 'is not an http(s) URL',
  },
  RADDRAFT_LINGSHU_MODEL: {
    type: 'string', minLength: 1, default: 'lingshu-medical-mllm/Lingshu-7B', description: 'served model name',
    examples: ['lingshu-medical-mllm/Lingshu-7B'],
  },
  RADDRAFT_LINGSHU_API_KEY: {
    type: 'string', minLength: 1, 'x-secret': true, description: 'bearer key for the model endpoint',
    examples: ['sk-local-123'],
  },
  RADDRAFT_PROMPT: {
    type: 'string', pattern: '^(medevalkit|clinical-context|prior-report)$', default: 'medevalkit',
    description: 'prompt: MedEvalKit\'s (as Lingshu was evaluated), with clinical context, or with the patient\'s latest signed prior chest X-ray report', examples: ['medevalkit'],
    'x-fault': 'is not medevalkit, clinical-context or prior-report',
  },
  RADDRAFT_MODEL_PROFILE: {
    type: 'string', pattern: '^(auto|lingshu|medgemma|.+\\.json)$', default: 'auto',
    description: 'how the served model is asked: auto (by its name), lingshu, medgemma, or a JSON profile file', examples: ['auto'],
    'x-fault': 'is not auto, lingshu, medgemma or the path of a .json profile file',
  },
  RADDRAFT_STRUCTURED_OUTPUT: {
    type: 'string', pattern: '^(off|on)$', default: 'off',
    description: 'ask vLLM for JSON {findings, impression} (structured_outputs / guided_json)', examples: ['off'],
    'x-fault': 'is not off or on',
  },
  RADDRAFT_SAFETY: {
    type: 'string', pattern: '^(flag|strip)$', default: 'flag',
    description: 'flag sentences citing a prior exam or a view not sent, or strip them', examples: ['flag'],
    'x-fault': 'is not flag or strip',
  },
  RADDRAFT_CONSISTENCY_SAMPLES: {
    type: 'integer', minimum: 0, maximum: 10, default: 0,
    description: 'extra samples per draft for consistency flags (0: off); each costs GPU decoding time like one more draft', examples: [5],
  },
  RADDRAFT_CONSISTENCY_TEMPERATURE: {
    type: 'string', pattern: '^(0(\\.\\d{1,3})?|1(\\.\\d{1,3})?|2(\\.0{1,3})?)$', default: '0.7',
    description: 'sampling temperature of the consistency samples', examples: ['0.7'],
    'x-fault': 'is not a number from 0 to 2',
  },
  RADDRAFT_URGENT_FINDINGS: {
    type: 'string',
    pattern: '^\\s*(none|(pneumothorax|free-air|malpositioned-device|large-effusion|pneumomediastinum|widened-mediastinum)(\\s*,\\s*(pneumothorax|free-air|malpositioned-device|large-effusion|pneumomediastinum|widened-mediastinum))*)\\s*$',
    default: 'pneumothorax,free-air,malpositioned-device,large-effusion',
    description: 'critical findings that raise a draft\'s review priority when the draft asserts them (comma list), or none', examples: ['pneumothorax,free-air'],
    'x-fault': 'is not none or a comma list of pneumothorax, free-air, malpositioned-device, large-effusion, pneumomediastinum, widened-mediastinum',
  },
  RADDRAFT_REPORT_LANGUAGE: {
    type: 'string', pattern: '^[a-z]{2}$', default: 'en', description: 'language the drafts must be in (ISO 639-1)',
    examples: ['en'], 'x-fault': 'is not a two-letter ISO 639-1 code',
  },
  RADDRAFT_DATA_DIR: {
    type: 'string', minLength: 1, default: './data', description: 'SQLite job store and image cache',
    examples: ['/var/lib/raddraft'],
  },
  RADDRAFT_DATABASE_URL: {
    type: 'string', pattern: '^postgres(ql)?://.+', 'x-secret': true,
    description: 'PostgreSQL job store shared by replicas', examples: ['postgres://raddraft@db:5432/raddraft'],
    'x-fault': 'is not a postgres:// URL',
  },
  RADDRAFT_PORT: {
    type: 'integer', minimum: 0, maximum: 65535, default: 8080, description: 'HTTP port', examples: [8080],
  },
  RADDRAFT_HOST: {
    type: 'string', pattern: '^[0-9A-Za-z.:%-]{1,253}$', default: '0.0.0.0',
    description: 'address the HTTP server binds to (127.0.0.1: this machine only)', examples: ['127.0.0.1'],
    'x-fault': 'is not an IP address or host name',
  },
  RADDRAFT_API_TOKEN: {
    type: 'string', minLength: 1, 'x-secret': true,
    description: 'bearer token for automation on the job API (/api/jobs, /api/quality); it cannot sign',
    examples: ['the output of openssl rand -base64 32'],
  },
  RADDRAFT_INTAKE: {
    type: 'string', pattern: '^\\s*(qido|fhir|stow|dimse)(\\s*,\\s*(qido|fhir|stow|dimse))*\\s*$', default: 'qido',
    description: 'intake sources (comma list)', examples: ['qido,stow'],
    'x-fault': 'is not a comma list of qido, fhir, stow and dimse',
  },
  RADDRAFT_DRAFT_STATUS: {
    type: 'string', pattern: '^(partial|preliminary)$', default: 'partial',
    description: 'FHIR status of an unverified AI draft: partial (R4: "may be incomplete or unverified") or preliminary (R4: "verified early results"), for worklists that need it',
    examples: ['partial'], 'x-fault': 'is not partial or preliminary',
  },
  RADDRAFT_AUDIT_URL: {
    type: 'string', pattern: URL_PATTERN, description: 'FHIR base URL that receives raddraft\'s AuditEvents (unset: the FHIR server of RADDRAFT_FHIR_URL)',
    examples: ['http://audit:8080/fhir'], 'x-fault': 'is not an http(s) URL',
  },
  RADDRAFT_MODEL_CARD_URL: {
    type: 'string', pattern: URL_PATTERN, default: 'https://huggingface.co/lingshu-medical-mllm/Lingshu-7B',
    description: 'the model card of the served model, linked from the model Device', examples: ['https://huggingface.co/lingshu-medical-mllm/Lingshu-7B'],
    'x-fault': 'is not an http(s) URL',
  },
  RADDRAFT_ORGANIZATION: {
    type: 'string', minLength: 1, description: 'the organization running raddraft and the model: the model Device\'s owner, and on whose behalf signers and the model act in Provenance (an Organization reference or a name)',
    examples: ['Organization/radiology'],
  },
  RADDRAFT_MODEL_CONTACT: {
    type: 'string', pattern: '^(mailto:|https?://|tel:).+$', description: 'whom to tell about a problem with the model (Device.contact): mailto:, tel: or a URL',
    examples: ['mailto:radiology-ai@hospital.example'], 'x-fault': 'is not a mailto:, tel: or http(s) URL',
  },
  RADDRAFT_OUTPUTS: {
    type: 'string', pattern: '^\\s*[a-z][a-z0-9-]{0,31}(\\s*,\\s*[a-z][a-z0-9-]{0,31})*\\s*$', default: 'fhir',
    description: 'systems every report event is delivered to (comma list of fhir, …)', examples: ['fhir'],
    'x-fault': 'is not a comma list of output names such as fhir',
  },
  RADDRAFT_MODE: {
    type: 'string', pattern: '^(live|shadow)$', default: 'live',
    description: 'live posts drafts to the FHIR server; shadow drafts every eligible study but posts nothing (for validation with raddraft eval --production)',
    examples: ['live'], 'x-fault': 'is not live or shadow',
  },
  RADDRAFT_DIMSE_PORT: {
    type: 'integer', minimum: 1, maximum: 65535, default: 11112, description: 'port of the C-STORE SCP', examples: [11112],
  },
  RADDRAFT_DIMSE_AET: {
    type: 'string', pattern: '^[ -~]{1,16}$', default: 'RADDRAFT', description: 'AE title of the C-STORE SCP',
    examples: ['RADDRAFT'], 'x-fault': 'is not an AE title (1 to 16 printable ASCII characters)',
  },
  RADDRAFT_DIMSE_PEERS: {
    type: 'string', pattern: '^(\\*|[ -+\\--~]{1,16}(,[ -+\\--~]{1,16})*)$',
    description: 'calling AE titles allowed to send (comma list), or * for any', examples: ['MODALITY1,PACS'],
    'x-fault': 'is not a comma list of AE titles, or *',
  },
  RADDRAFT_DIMSE_MAX_PDU_BYTES: {
    type: 'integer', minimum: 4096, maximum: 262144, default: 131072,
    description: 'largest PDU a C-STORE sender may send (announced in the association; larger ones abort it)', examples: [131072],
  },
  RADDRAFT_DIMSE_IDLE_SECONDS: {
    type: 'integer', minimum: 1, maximum: 3600, default: 30,
    description: 'a C-STORE connection that completes no PDU for this long while raddraft waits for it is closed (also the ARTIM timeout)', examples: [30],
  },
  RADDRAFT_DIMSE_MAX_ASSOCIATIONS: {
    type: 'integer', minimum: 1, maximum: 1000, default: 16,
    description: 'C-STORE associations open at once; more are rejected as local limit exceeded', examples: [16],
  },
  RADDRAFT_STOW_AUTH: {
    type: 'string', pattern: '^(none|basic:[^:]+:.{8,}|bearer:.{16,})$', 'x-secret': true,
    description: 'credentials STOW-RS senders must present (none: anyone on the network)', examples: ['bearer:a-long-random-token'],
    'x-fault': 'is not one of none, basic:USER:PASS (a password of 8 or more characters), bearer:TOKEN (16 or more characters)',
  },
  RADDRAFT_PUSH_VERIFY: {
    type: 'string', pattern: '^(pacs|none)$', default: 'pacs',
    description: 'pacs: a pushed study is drafted only once the PACS holds it for the same patient; none: the sender is the only source and is trusted',
    examples: ['pacs'], 'x-fault': 'is not pacs or none',
  },
  RADDRAFT_MAX_INSTANCE_MB: {
    type: 'integer', minimum: 1, maximum: 1_000_000, default: 512,
    description: 'largest pushed instance accepted', examples: [512],
  },
  RADDRAFT_FHIR_NOTIFY_TOKEN: {
    type: 'string', minLength: 16, 'x-secret': true,
    description: 'bearer token FHIR notifications must carry (set in the Subscription channel header)',
    examples: ['a-random-string-of-16-or-more-characters'],
  },
  RADDRAFT_MIN_FREE_MB: {
    type: 'integer', minimum: 0, maximum: 10_000_000, default: 2048,
    description: 'free disk space below which pushed studies are refused', examples: [2048],
  },
  RADDRAFT_POLL_SECONDS: {
    type: 'integer', minimum: 1, maximum: 86400, default: 30, description: 'QIDO-RS poll interval', examples: [30],
  },
  RADDRAFT_STABLE_SECONDS: {
    type: 'integer', minimum: 0, maximum: 86400, default: 60,
    description: 'quiet time before a study counts as complete', examples: [60],
  },
  RADDRAFT_LOOKBACK_DAYS: {
    type: 'integer', minimum: 0, maximum: 36500, default: 1,
    description: 'days before today whose studies the poller watches (StudyDate)', examples: [1],
  },
  RADDRAFT_SWEEP_DAYS: {
    type: 'integer', minimum: 0, maximum: 36500, default: 30,
    description: 'days before today the slower QIDO-RS sweep searches (StudyDate), for studies dated before the look-back that arrive late; 0: no sweep', examples: [30],
  },
  RADDRAFT_SWEEP_MINUTES: {
    type: 'integer', minimum: 1, maximum: 10080, default: 60, description: 'interval of the wider QIDO-RS sweep', examples: [60],
  },
  RADDRAFT_MAX_IN_FLIGHT: {
    type: 'integer', minimum: 1, maximum: 256, default: 8, description: 'upper bound on concurrent model requests',
    examples: [8],
  },
  RADDRAFT_WORKERS: {
    type: 'integer', minimum: 1, maximum: 256, default: 16,
    description: 'studies processed at once (rendering is further limited to one per CPU core)', examples: [16],
  },
  RADDRAFT_MAX_PIXELS: {
    type: 'integer', minimum: 1_000_000, maximum: 1_000_000_000, default: 100_000_000,
    description: 'most pixels (Rows × Columns) in one image frame; larger images fail before they are inflated or decoded',
    examples: [100_000_000],
  },
  RADDRAFT_RENDER_MEMORY_MB: {
    type: 'integer', minimum: 256, maximum: 65_536, default: 1024,
    description: 'memory one rendering thread may hold (MiB); its heap is capped at this, and one grown past it is replaced',
    examples: [1024],
  },
  RADDRAFT_MAX_ATTEMPTS: {
    type: 'integer', minimum: 1, maximum: 100, default: 5, description: 'attempts before a job is dead',
    examples: [5],
  },
  RADDRAFT_DRAIN_SECONDS: {
    type: 'integer', minimum: 0, maximum: 3600, default: 30,
    description: 'on SIGTERM, how long running jobs may finish before they are given back', examples: [30],
  },
  RADDRAFT_RETRY_SECONDS: {
    type: 'integer', minimum: 0, maximum: 86400, default: 30,
    description: 'first retry delay; doubles per attempt, with jitter', examples: [30],
  },
  RADDRAFT_MODEL_TIMEOUT_SECONDS: {
    type: 'integer', minimum: 1, maximum: 3600, default: 180, description: 'timeout of one model request',
    examples: [180],
  },
  RADDRAFT_PUBLIC_URL: {
    type: 'string', pattern: URL_PATTERN, description: 'URL at which users reach raddraft (for the sign-in redirect)',
    examples: ['https://raddraft.hospital.example'], 'x-fault': 'is not an http(s) URL',
  },
  RADDRAFT_AUTH_ISSUER: {
    type: 'string', pattern: URL_PATTERN, description: 'OpenID Connect issuer whose tokens identify radiologists',
    examples: ['https://login.hospital.example/realms/radiology'], 'x-fault': 'is not an http(s) URL',
  },
  RADDRAFT_AUTH_AUDIENCE: {
    type: 'string', minLength: 1, description: 'audience tokens must carry (default: RADDRAFT_AUTH_CLIENT_ID)', examples: ['raddraft'],
  },
  RADDRAFT_AUTH_JWKS_URL: {
    type: 'string', pattern: URL_PATTERN, description: 'JWKS for API tokens (default: from the issuer\'s discovery document)',
    examples: ['https://login.hospital.example/realms/radiology/protocol/openid-connect/certs'], 'x-fault': 'is not an http(s) URL',
  },
  RADDRAFT_AUTH_CLIENT_ID: {
    type: 'string', minLength: 1, description: 'OpenID Connect client for the review pages', examples: ['raddraft-review'],
  },
  RADDRAFT_AUTH_CLIENT_SECRET: {
    type: 'string', minLength: 1, 'x-secret': true, description: 'secret of that client (none for a public client)',
    examples: ['s3cr3t'],
  },
  RADDRAFT_AUTH_SIGNER_ROLE: {
    type: 'string', pattern: '^[!-~]{1,128}$',
    description: 'role or scope a token must carry (in its roles claim, scope, or RADDRAFT_AUTH_ROLE_CLAIM) to sign, reject or read jobs',
    examples: ['radiologist'], 'x-fault': 'is not one word without spaces',
  },
  RADDRAFT_AUTH_ROLE_CLAIM: {
    type: 'string', pattern: '^[A-Za-z0-9_:/.-]{1,128}$', default: 'roles',
    description: 'claim holding the roles (a dotted path such as realm_access.roles is followed); scope is always read too',
    examples: ['realm_access.roles'], 'x-fault': 'is not a claim name',
  },
  RADDRAFT_AUTH_SIGNERS: {
    type: 'string', pattern: '^\\s*(Practitioner|PractitionerRole)/[A-Za-z0-9\\-.]{1,64}(\\s*,\\s*(Practitioner|PractitionerRole)/[A-Za-z0-9\\-.]{1,64})*\\s*$',
    description: 'the only Practitioners who may sign, reject or read jobs (comma list)', examples: ['Practitioner/123,Practitioner/456'],
    'x-fault': 'is not a comma list of Practitioner/<id> references',
  },
  RADDRAFT_AUTH_PRACTITIONER_CLAIM: {
    type: 'string', minLength: 1, default: 'fhirUser',
    description: 'token claim holding the signer\'s Practitioner reference', examples: ['fhirUser'],
  },
  RADDRAFT_LOCAL_REVIEWER: {
    type: 'string', pattern: '^(Practitioner|PractitionerRole)/[A-Za-z0-9\\-.]{1,64}$',
    description: 'without sign-in: the Practitioner who signs from this machine', examples: ['Practitioner/123'],
    'x-fault': 'is not a Practitioner/<id> or PractitionerRole/<id> reference',
  },
  RADDRAFT_SESSION_SECRET: {
    type: 'string', minLength: 1, 'x-secret': true,
    description: 'key for session cookies, shared by replicas (default: generated in the data directory)',
    examples: ['the output of openssl rand -base64 32'],
  },
  ...hl7Settings,
  ...srSettings,
  RADDRAFT_LOG_LEVEL: {
    type: 'string', pattern: '^(fatal|error|warn|info|debug|trace|silent)$', default: 'info',
    description: 'log level', examples: ['info'], 'x-fault': 'is not one of fatal, error, warn, info, debug, trace, silent',
  },
} satisfies Record<string, SettingSchema>;

export type SettingName = keyof typeof settings;

export const REQUIRED_SETTINGS: SettingName[] = ['RADDRAFT_DICOMWEB_URL', 'RADDRAFT_FHIR_URL', 'RADDRAFT_LINGSHU_URL'];

export const configSchema = {
  type: 'object',
  properties: settings,
  required: REQUIRED_SETTINGS,
  additionalProperties: false,
} as const;
