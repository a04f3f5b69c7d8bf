import type { Bundle, ImagingStudy, Patient, Reference, ServiceRequest } from '@medplum/fhirtypes';
import { FhirError, type FhirGateway } from './client.js';
import { System, dicomUidIdentifier } from './codes.js';
import type { StudyContext } from '../report/study.js';
import { aiProvenance } from './ai-resources.js';
import { DRAFT_ENTRY, buildDraftBundle, isPriority, type OrderFacts, type ReportInput } from './report.js';

export type { StudyContext };

export interface Links {
  subject: Reference<Patient> | undefined;
  imagingStudy: Reference<ImagingStudy>;
  basedOn: Reference<ServiceRequest> | undefined;
  /** The order's procedure code and priority, when the ServiceRequest (or the ImagingStudy) gives them. */
  order: OrderFacts;
  /** How each link was made, for the job record (no identifiers in it). */
  notes: string[];
}

/** An issuer that is already a URI or an OID can serve as an identifier system. */
function issuerSystem(issuer: string | undefined): string | undefined {
  if (!issuer) return undefined;
  if (/^[0-2](\.\d+)+$/.test(issuer)) return `urn:oid:${issuer}`;
  if (/^(urn:|https?:\/\/)/.test(issuer)) return issuer;
  return undefined;
}

const ref = <T extends ImagingStudy | Patient | ServiceRequest>(r: T): Reference<T> => ({ reference: `${r.resourceType}/${r.id}` });

/**
 * Finds what the report should point at: the ImagingStudy (by Study Instance UID), the patient (from the
 * ImagingStudy, else a Patient search on Patient ID and issuer), and the ServiceRequest (by accession). What cannot
 * be found becomes a logical identifier reference, so a report is never held back for want of a link.
 */
export async function resolveLinks(fhir: FhirGateway, ctx: StudyContext): Promise<Links> {
  const notes: string[] = [];
  const uid = dicomUidIdentifier(ctx.studyUid);
  const studies = await fhir.search<ImagingStudy>('ImagingStudy', { identifier: `${uid.system}|${uid.value}` });
  const study = studies.length === 1 ? studies[0] : undefined;
  let imagingStudy: Reference<ImagingStudy>;
  if (study?.id) {
    imagingStudy = ref(study);
    notes.push('imagingStudy: ImagingStudy found by Study Instance UID');
  } else {
    imagingStudy = { identifier: uid, display: 'DICOM study' };
    notes.push(studies.length > 1 ? 'imagingStudy: several ImagingStudy resources share the UID; logical reference used' : 'imagingStudy: no ImagingStudy resource; logical reference used');
  }

  let subject: Reference<Patient> | undefined;
  if (study?.subject?.reference?.startsWith('Patient/')) {
    subject = { reference: study.subject.reference };
    notes.push('subject: from the ImagingStudy');
  } else if (ctx.patientId) {
    const system = issuerSystem(ctx.patientIdIssuer);
    const patients = await fhir.search<Patient>('Patient', { identifier: system ? `${system}|${ctx.patientId}` : ctx.patientId });
    if (patients.length === 1 && patients[0]!.id) {
      subject = ref(patients[0]!);
      notes.push(`subject: Patient found by Patient ID${system ? ' and issuer' : ''}`);
    } else {
      subject = { type: 'Patient', identifier: { ...(system ? { system } : {}), value: ctx.patientId, type: { coding: [{ system: System.v2_0203, code: 'MR' }] } } };
      notes.push(patients.length > 1 ? 'subject: Patient ID matches several patients; logical reference used' : 'subject: no Patient found; logical reference used');
    }
  } else {
    notes.push('subject: the study has no Patient ID; report posted without subject');
  }

  let basedOn: Reference<ServiceRequest> | undefined;
  let order: ServiceRequest | undefined;
  const fromStudy = study?.basedOn?.find((b) => b.reference?.startsWith('ServiceRequest/'));
  if (fromStudy?.reference) {
    basedOn = { reference: fromStudy.reference };
    order = await readOrder(fhir, fromStudy.reference);
    notes.push(`basedOn: from the ImagingStudy${order ? '' : ' (the ServiceRequest could not be read)'}`);
  } else if (ctx.accession) {
    const orders = await fhir.search<ServiceRequest>('ServiceRequest', { identifier: ctx.accession });
    if (orders.length === 1 && orders[0]!.id) {
      basedOn = ref(orders[0]!);
      order = orders[0];
      notes.push('basedOn: ServiceRequest found by accession number');
    } else {
      basedOn = { identifier: { type: { coding: [{ system: System.v2_0203, code: 'ACSN' }] }, value: ctx.accession } };
      notes.push(orders.length > 1 ? 'basedOn: accession matches several orders; logical reference used' : 'basedOn: no ServiceRequest found; logical reference used');
    }
  } else {
    notes.push('basedOn: the study has no accession number');
  }
  const facts: OrderFacts = {
    code: order?.code?.coding?.length ? order.code : study?.procedureCode?.[0],
    priority: isPriority(order?.priority) ? order.priority : undefined,
  };
  return { subject, imagingStudy, basedOn, order: facts, notes };
}

async function readOrder(fhir: FhirGateway, reference: string): Promise<ServiceRequest | undefined> {
  try {
    return await fhir.read<ServiceRequest>('ServiceRequest', reference.slice('ServiceRequest/'.length));
  } catch (err) {
    // An order that cannot be read leaves the code and priority to their defaults; a server that is down does not.
    if (err instanceof FhirError && err.status !== undefined && err.status < 500) return undefined;
    throw err;
  }
}

function localOffset(date: Date): string {
  const minutes = -date.getTimezoneOffset();
  const sign = minutes >= 0 ? '+' : '-';
  const abs = Math.abs(minutes);
  return `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/**
 * FHIR wants a zone on any date-time with a time. DICOM gives one only through Timezone Offset From UTC; otherwise
 * the study is taken to be in raddraft's own time zone (set TZ to the site's zone).
 */
export function studyEffective(ctx: Pick<StudyContext, 'studyDate' | 'studyTime' | 'timezoneOffset'>): string | undefined {
  const d = ctx.studyDate;
  if (!d || !/^\d{8}$/.test(d)) return undefined;
  const date = `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}`;
  const t = ctx.studyTime?.match(/^(\d{2})(\d{2})?(\d{2})?/);
  if (!t) return date;
  const time = `${t[1]}:${t[2] ?? '00'}:${t[3] ?? '00'}`;
  const tz = ctx.timezoneOffset?.match(/^([+-])(\d{2})(\d{2})$/);
  const zone = tz ? `${tz[1]}${tz[2]}:${tz[3]}` : localOffset(new Date(`${date}T${time}`));
  return `${date}T${time}${zone}`;
}

function referenceFromEntry(response: Bundle, index: number, type: string): string | undefined {
  const entry = response.entry?.[index];
  const location = entry?.response?.location;
  const m = location?.match(new RegExp(`(?:^|/)(${type}/[A-Za-z0-9\\-.]{1,64})(?:/_history/|$)`));
  if (m) return m[1];
  const id = entry?.resource?.resourceType === type ? entry.resource.id : undefined;
  return id ? `${type}/${id}` : undefined;
}

export interface Published {
  reportRef: string;
  /** The model Device the report's AI Provenance names as author. */
  deviceRef: string;
  /** The version the server gave the report (from its Location), when it said. */
  version: string | undefined;
  created: boolean;
}

/**
 * Posts the draft's transaction, then its AI Provenance pointing at the version the server gave the report. Both are
 * conditional creates: a retry after a crash between them completes what is missing and copies nothing.
 */
export async function publishDraft(fhir: FhirGateway, input: ReportInput): Promise<Published> {
  const { bundle, key } = buildDraftBundle(input);
  const response = await fhir.transaction(bundle);
  const located = (index: number, type: string) => {
    const found = referenceFromEntry(response, index, type);
    if (!found) throw new FhirError(`transaction: the FHIR server answered without the ${type} location`, undefined, true);
    return found;
  };
  const reportRef = located(DRAFT_ENTRY.report, 'DiagnosticReport');
  const entry = response.entry?.[DRAFT_ENTRY.report];
  const status = entry?.response?.status ?? '';
  const version = /\/_history\/([A-Za-z0-9\-.]{1,64})$/.exec(entry?.response?.location ?? '')?.[1] ?? entry?.resource?.meta?.versionId ?? entry?.response?.etag?.replace(/^W\/"|"$/g, '');
  const deviceRef = located(DRAFT_ENTRY.device, 'Device');
  const provenance = aiProvenance({
    key, target: version ? `${reportRef}/_history/${version}` : reportRef,
    device: { reference: deviceRef, display: input.model.name },
    prompt: located(DRAFT_ENTRY.prompt, 'DocumentReference'), card: referenceFromEntry(response, DRAFT_ENTRY.card, 'DocumentReference'),
    imagingStudy: input.imagingStudy, images: input.images, draft: input.draft, software: input.software, owner: input.model.owner,
    recorded: input.now.toISOString(), contextInputs: input.contextInputs ?? [],
  });
  await fhir.createIfNoneExist(provenance, `_tag=${encodeURIComponent(`${System.provenanceKey}|${key}`)}`);
  return { reportRef, deviceRef, version, created: status.startsWith('201') };
}
