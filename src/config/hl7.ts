import type { SettingSchema } from './schema.js';

/** HL7 v2: the RIS output (ORU^R01 over MLLP) and the listener for the radiologists' final reports. */
export interface Hl7Config {
  /** `mllp://host:port` or `mllps://host:port`; required when RADDRAFT_OUTPUTS names hl7. */
  readonly destination: string | undefined;
  /** MSH-3/MSH-4 of what raddraft sends. */
  readonly sender: { readonly application: string; readonly facility: string };
  /** MSH-5/MSH-6 of what raddraft sends. */
  readonly receiver: { readonly application: string; readonly facility: string };
  readonly draftStatus: 'R' | 'P';
  readonly accessionIn: readonly ('placer' | 'filler' | 'obr18')[];
  readonly withdrawAs: 'D' | 'W';
  readonly ackTimeoutMs: number;
  /** The MLLP listener's port; undefined: no listener. */
  readonly listenPort: number | undefined;
  /** Sending facilities (MSH-4) the listener accepts, each from any address or from one address only. */
  readonly senders: readonly { readonly facility: string; readonly address: string | undefined }[];
  readonly maxMessageBytes: number;
  readonly idleMs: number;
}

const NAME = '[^|^~\\\\&,@\\s][^|^~\\\\&,@]{0,39}';
const PAIR = `^${NAME}(\\^${NAME})?$`;

export const hl7Settings = {
  RADDRAFT_HL7_DESTINATION: {
    type: 'string', pattern: '^mllps?://(\\[[0-9A-Fa-f:.]+\\]|[^\\s:/\\[\\]]+):\\d{1,5}/?$',
    description: 'the RIS or dictation system that receives ORU^R01 results over MLLP (mllps: TLS); needed when RADDRAFT_OUTPUTS names hl7',
    examples: ['mllp://ris.hospital.example:2575'], 'x-fault': 'is not mllp://host:port or mllps://host:port',
  },
  RADDRAFT_HL7_SENDER: {
    type: 'string', pattern: PAIR, default: 'RADDRAFT^RADDRAFT',
    description: 'MSH-3^MSH-4 (sending application and facility) of the messages raddraft sends', examples: ['RADDRAFT^RADIOLOGY'],
    'x-fault': 'is not APPLICATION^FACILITY without HL7 delimiters',
  },
  RADDRAFT_HL7_RECEIVER: {
    type: 'string', pattern: PAIR, default: 'RIS^RIS',
    description: 'MSH-5^MSH-6 (receiving application and facility), as the RIS routes on them', examples: ['POWERSCRIBE^RADIOLOGY'],
    'x-fault': 'is not APPLICATION^FACILITY without HL7 delimiters',
  },
  RADDRAFT_HL7_DRAFT_STATUS: {
    type: 'string', pattern: '^(R|P)$', default: 'R',
    description: 'OBR-25 of an unverified AI draft: R (results stored, not yet verified) or P (preliminary)', examples: ['R'],
    'x-fault': 'is not R or P',
  },
  RADDRAFT_HL7_ACCESSION: {
    type: 'string', pattern: '^\\s*(placer|filler|obr18)(\\s*,\\s*(placer|filler|obr18))*\\s*$', default: 'filler',
    description: 'where the accession number goes: filler (ORC-3/OBR-3), placer (ORC-2/OBR-2), obr18 (OBR-18); a comma list', examples: ['filler,obr18'],
    'x-fault': 'is not a comma list of placer, filler and obr18',
  },
  RADDRAFT_HL7_WITHDRAW: {
    type: 'string', pattern: '^(D|W)$', default: 'D',
    description: 'OBX-11 of a rejected draft\'s observations: D (delete) or W (posted as wrong)', examples: ['D'],
    'x-fault': 'is not D or W',
  },
  RADDRAFT_HL7_ACK_TIMEOUT_SECONDS: {
    type: 'integer', minimum: 1, maximum: 600, default: 30,
    description: 'how long raddraft waits for the receiver\'s ACK before it tries again', examples: [30],
  },
  RADDRAFT_HL7_LISTEN_PORT: {
    type: 'integer', minimum: 0, maximum: 65535,
    description: 'MLLP port for final reports (ORU^R01, MDM^T02) from the RIS, bound on RADDRAFT_HOST; unset: no listener', examples: [2576],
  },
  RADDRAFT_HL7_SENDERS: {
    type: 'string', pattern: '^\\s*[^,@\\s|^~\\\\&]{1,40}(@[0-9A-Fa-f.:]{2,45})?(\\s*,\\s*[^,@\\s|^~\\\\&]{1,40}(@[0-9A-Fa-f.:]{2,45})?)*\\s*$',
    description: 'sending facilities (MSH-4) the listener accepts, each optionally bound to one address (FACILITY@IP)', examples: ['RIS_MAIN@10.1.2.3,DICTATION'],
    'x-fault': 'is not a comma list of FACILITY or FACILITY@IP',
  },
  RADDRAFT_HL7_MAX_MESSAGE_KB: {
    type: 'integer', minimum: 16, maximum: 65_536, default: 1024,
    description: 'largest message the listener takes; a larger one is refused (AR) and its connection closed', examples: [1024],
  },
  RADDRAFT_HL7_IDLE_SECONDS: {
    type: 'integer', minimum: 1, maximum: 3600, default: 60,
    description: 'a listener connection that sends nothing for this long is closed', examples: [60],
  },
} satisfies Record<string, SettingSchema>;

type Get = (name: keyof typeof hl7Settings) => string | undefined;

/** The problems of settings that depend on each other (each valid alone). */
export function hl7Problems(raw: Record<string, string | number>): string[] {
  const problems: string[] = [];
  const outputs = String(raw.RADDRAFT_OUTPUTS ?? '').split(',').map((s) => s.trim());
  if (outputs.includes('hl7') && raw.RADDRAFT_HL7_DESTINATION === undefined && raw.RADDRAFT_MODE !== 'shadow') {
    problems.push('RADDRAFT_HL7_DESTINATION is missing: RADDRAFT_OUTPUTS names hl7; for example RADDRAFT_HL7_DESTINATION=mllp://ris.hospital.example:2575');
  }
  if (raw.RADDRAFT_HL7_LISTEN_PORT !== undefined && raw.RADDRAFT_HL7_SENDERS === undefined) {
    problems.push('RADDRAFT_HL7_SENDERS is missing: the HL7 listener accepts only the sending facilities listed there; for example RADDRAFT_HL7_SENDERS=RIS_MAIN@10.1.2.3');
  }
  return problems;
}

function pair(value: string): { application: string; facility: string } {
  const [application = '', facility = ''] = value.split('^');
  return { application, facility };
}

/** The HL7 settings, read after the schema has checked each of them. */
export function hl7Config(get: Get): Hl7Config {
  const port = get('RADDRAFT_HL7_LISTEN_PORT');
  return {
    destination: get('RADDRAFT_HL7_DESTINATION'),
    sender: pair(get('RADDRAFT_HL7_SENDER') ?? ''),
    receiver: pair(get('RADDRAFT_HL7_RECEIVER') ?? ''),
    draftStatus: get('RADDRAFT_HL7_DRAFT_STATUS') === 'P' ? 'P' : 'R',
    accessionIn: [...new Set((get('RADDRAFT_HL7_ACCESSION') ?? 'filler').split(',').map((s) => s.trim() as Hl7Config['accessionIn'][number]))],
    withdrawAs: get('RADDRAFT_HL7_WITHDRAW') === 'W' ? 'W' : 'D',
    ackTimeoutMs: Number(get('RADDRAFT_HL7_ACK_TIMEOUT_SECONDS')) * 1000,
    listenPort: port === undefined ? undefined : Number(port),
    senders: (get('RADDRAFT_HL7_SENDERS') ?? '').split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
      const [facility = '', address] = s.split('@');
      return { facility, address };
    }),
    maxMessageBytes: Number(get('RADDRAFT_HL7_MAX_MESSAGE_KB')) * 1024,
    idleMs: Number(get('RADDRAFT_HL7_IDLE_SECONDS')) * 1000,
  };
}
