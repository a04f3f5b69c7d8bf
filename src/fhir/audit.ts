import { randomUUID } from 'node:crypto';
import type { AuditEvent, AuditEventAgent, Reference } from '@medplum/fhirtypes';
import type { FhirGateway } from './client.js';
import { System } from './codes.js';

/** What happened to a report that medical-device AI logging must show: made, looked at, signed, changed, rejected. */
export type AuditAction = 'drafted' | 'opened' | 'signed' | 'corrected' | 'rejected';

export interface AuditInput {
  action: AuditAction;
  /** Idempotency key (the report event's id): the same key never makes a second AuditEvent. */
  key?: string;
  /** The report, version-specific where the version is known. */
  report: string;
  patient: Reference | undefined;
  /** Who did it: a radiologist (Practitioner/PractitionerRole) or the model Device. */
  who: { reference?: string; display?: string };
  software: { name: string; version: string };
  at: string;
  /** Free text for the log reader (never a patient identifier). */
  detail: string;
}

const BALP = 'https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit';
const DCM = 'http://dicom.nema.org/resources/ontology/DCM';

/** IHE BALP pattern, FHIR RESTful interaction and AuditEvent.action of each report action. */
const PATTERN: Record<AuditAction, { profile: string; interaction: 'create' | 'read' | 'update'; action: 'C' | 'R' | 'U' }> = {
  drafted: { profile: 'PatientCreate', interaction: 'create', action: 'C' },
  opened: { profile: 'PatientRead', interaction: 'read', action: 'R' },
  signed: { profile: 'PatientUpdate', interaction: 'update', action: 'U' },
  corrected: { profile: 'PatientUpdate', interaction: 'update', action: 'U' },
  rejected: { profile: 'PatientUpdate', interaction: 'update', action: 'U' },
};

const coding = (system: string, code: string, display: string) => ({ system, code, display });

/**
 * An AuditEvent after IHE's Basic Audit Log Patterns (BALP): a RESTful create, read or update of the report, with the
 * person or model who caused it as the requesting agent, raddraft as the client and observer, and the report and the
 * patient as entities.
 */
export function auditEvent(input: AuditInput): AuditEvent {
  const p = PATTERN[input.action];
  const app = `${input.software.name} ${input.software.version}`;
  const agents: AuditEventAgent[] = [
    { who: input.who, requestor: true, ...(input.who.reference?.startsWith('Device/') ? { type: { coding: [coding(DCM, '110150', 'Application')] } } : {}) },
    { type: { coding: [coding(DCM, '110153', 'Source Role ID')] }, who: { display: app }, requestor: false },
  ];
  return {
    resourceType: 'AuditEvent',
    meta: {
      profile: [`${BALP}.${p.profile}`],
      ...(input.key ? { tag: [{ system: System.auditKey, code: `${input.action}-${input.key}` }] } : {}),
    },
    type: coding('http://terminology.hl7.org/CodeSystem/audit-event-type', 'rest', 'RESTful Operation'),
    subtype: [coding('http://hl7.org/fhir/restful-interaction', p.interaction, p.interaction)],
    action: p.action,
    recorded: input.at,
    outcome: '0',
    outcomeDesc: input.detail,
    agent: agents,
    source: { observer: { display: app }, type: [coding('http://terminology.hl7.org/CodeSystem/security-source-type', '4', 'Application Server')] },
    entity: [
      {
        what: { reference: input.report },
        type: coding('http://terminology.hl7.org/CodeSystem/audit-entity-type', '2', 'System Object'),
        role: coding('http://terminology.hl7.org/CodeSystem/object-role', '4', 'Domain Resource'),
        description: `AI-assisted radiology report: ${input.action}`,
      },
      ...(input.patient ? [{
        what: input.patient,
        type: coding('http://terminology.hl7.org/CodeSystem/audit-entity-type', '1', 'Person'),
        role: coding('http://terminology.hl7.org/CodeSystem/object-role', '1', 'Patient'),
      }] : []),
    ],
  };
}

/** Writes AuditEvents to the FHIR server, or to RADDRAFT_AUDIT_URL's; one per key however often it is sent. */
export async function recordAudit(audit: FhirGateway, input: AuditInput): Promise<void> {
  const event = auditEvent({ ...input, key: input.key ?? randomUUID() });
  const tag = event.meta!.tag![0]!;
  await audit.createIfNoneExist(event, `_tag=${encodeURIComponent(`${tag.system}|${tag.code}`)}`);
}
