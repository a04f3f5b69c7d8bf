import type { StudySource } from '../dicom/study-source.js';
import type { Hl7Config } from '../config/hl7.js';
import { controlIdOf } from '../hl7/control-id.js';
import { MllpClient, MllpReplyError, parseMllpUrl, type MllpAnswer } from '../hl7/mllp-client.js';
import { buildOru, OruInputError, type DraftOrigin } from '../hl7/oru.js';
import { phi } from '../log.js';
import type { DeliveryContext, DeliveryOutcome, ReportOutput } from '../report/output.js';
import type { DraftedEvent, ReportEvent } from '../report/report.js';
import { PermanentError } from '../util/faults.js';
import { outcomeOf } from './outcome.js';

export interface Hl7OutputDeps {
  studies: StudySource;
  software: { name: string; version: string };
  hl7: Hl7Config;
  /** The report's events in order (the draft's model and prompt are named in every later message). */
  reportEvents: (reportKey: string) => Promise<ReportEvent[]>;
  waitMs: number;
}

/** What the messages say of the AI that wrote the draft: model, prompt, review notes, critical findings. */
export function originOf(drafted: DraftedEvent | undefined): DraftOrigin | undefined {
  if (!drafted) return undefined;
  const { draft } = drafted;
  // Sentence flags are review notes too; the urgent ones go out as the critical-finding note instead.
  const sentences = (draft.sentenceFlags ?? []).filter((f) => f.kind !== 'urgent').map((f) => `${f.kind} in the ${f.section}: "${f.sentence}" (${f.why})`);
  return { model: draft.model, promptVersion: draft.promptVersion, flags: [...(draft.flags ?? []), ...sentences], urgent: draft.urgent?.findings ?? [] };
}

/** What the receiver's answer means for the delivery: AA/CA delivered, AE/CE tried again, AR/CR refused for good. */
export function outcomeOfAnswer(answer: MllpAnswer, controlId: string): DeliveryOutcome {
  const { ack } = answer;
  const said = phi.scrub(ack.text) || 'no reason given';
  if (answer.kind === 'committed') return { kind: 'delivered', reference: `hl7/${controlId}`, note: 'the receiver committed it (CA) and sent no application ACK in time' };
  switch (ack.code) {
    case 'AA':
    case 'CA':
      return { kind: 'delivered', reference: `hl7/${controlId}`, note: `acknowledged ${ack.code}` };
    case 'AE':
    case 'CE':
      return { kind: 'retry', reason: `the HL7 receiver answered ${ack.code} (error): ${said}` };
    case 'AR':
    case 'CR':
      return { kind: 'permanent', reason: `the HL7 receiver answered ${ack.code} (rejected): ${said}` };
  }
}

/**
 * The RIS or dictation system: one ORU^R01 (v2.5.1) per report event over MLLP, acknowledged by the receiver. The
 * message control ID is derived from the event, so a message sent again (a lost ACK, a crash) is recognisable there.
 */
export function hl7Output(deps: Hl7OutputDeps): ReportOutput {
  const { hl7 } = deps;
  const target = hl7.destination ? parseMllpUrl(hl7.destination) : undefined;
  if (!target) throw new Error('RADDRAFT_OUTPUTS names hl7, but RADDRAFT_HL7_DESTINATION is not set; for example RADDRAFT_HL7_DESTINATION=mllp://ris.hospital.example:2575');
  const client = new MllpClient(target, { ackTimeoutMs: hl7.ackTimeoutMs, connectTimeoutMs: 10_000, maxReplyBytes: 1 << 20 });

  /** Builds and sends the event's message; the study's identifiers are scrubbed from anything said about it. */
  async function send(event: ReportEvent, signal: AbortSignal): Promise<DeliveryOutcome> {
    const events = event.kind === 'drafted' ? [event] : await deps.reportEvents(event.reportKey);
    const drafted = events.find((e): e is DraftedEvent => e.kind === 'drafted');
    const study = await deps.studies.studyContext(event.studyUid);
    return phi.during([study.patientId, study.accession], async () => {
      const text = buildOru({ event, study, origin: originOf(drafted), software: deps.software }, hl7, drafted);
      return outcomeOfAnswer(await client.send(text, signal), controlIdOf(event.id));
    });
  }

  return {
    name: 'hl7',
    async deliver(event: ReportEvent, context: DeliveryContext): Promise<DeliveryOutcome> {
      try {
        return await send(event, context.signal);
      } catch (err) {
        if (err instanceof OruInputError) return outcomeOf(new PermanentError(err.message), deps.waitMs);
        if (err instanceof MllpReplyError) return { kind: 'retry', reason: err.message };
        return outcomeOf(err, deps.waitMs);
      }
    },
  };
}
