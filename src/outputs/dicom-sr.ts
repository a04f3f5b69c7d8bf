import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { SrConfig } from '../config/sr.js';
import { cStore } from '../dicom/dimse-store.js';
import { reportContent, reportTitle, rejectionContent, type ReportText } from '../dicom/sr-content.js';
import { SopClass, rejectionKos, reportSr, type InstanceRef, type Placement } from '../dicom/sr-document.js';
import { srSourceOf, type SrSource } from '../dicom/sr-source.js';
import { stowInstance } from '../dicom/sr-stow.js';
import { documentUid, seriesUid, type SrSeriesRole } from '../dicom/sr-uids.js';
import type { StudySource } from '../dicom/study-source.js';
import type { DeliveryContext, DeliveryOutcome, ReportOutput } from '../report/output.js';
import type { DraftedEvent, RejectedEvent, ReportEvent, SignedEvent } from '../report/report.js';
import { phi } from '../log.js';
import { PermanentError } from '../util/faults.js';
import { modelRevision } from './model-revision.js';
import { outcomeOf } from './outcome.js';

export interface DicomSrOutputDeps {
  studies: StudySource;
  software: { name: string; version: string };
  waitMs: number;
  sr: SrConfig;
  /** The model server, asked for the revision of the model that wrote the draft (as the FHIR Device states it). */
  modelEndpoint: string;
  modelApiKey?: string;
  /** The report's events in order (the draft's images and model for a signed SR). */
  reportEvents(reportKey: string): Promise<ReportEvent[]>;
}

/**
 * The three series a report's objects go to in its study, each with its number and description. Descriptions stay in
 * ASCII: some archives index them in a single-byte character set and drop anything else from their study lists.
 */
const SERIES: Record<SrSeriesRole, { number: number; description: string }> = {
  draft: { number: 9901, description: 'AI draft report - unverified' },
  signed: { number: 9902, description: 'Radiologist report (AI-assisted draft, signed)' },
  rejection: { number: 9903, description: 'AI draft rejected by radiologist (IOCM)' },
};

/** A radiologist from a signed-in session or a checked token: nothing else may verify an SR. */
const AUTHENTICATED_SIGNER = /^(Practitioner|PractitionerRole)\/[A-Za-z0-9\-.]{1,64}$/;

interface Built {
  studyUid: string;
  ref: InstanceRef;
  bytes: Buffer;
  /** The patient identifiers the object carries: taken out of whatever the archive answers. */
  identifiers: string[];
}

const roleOf = (kind: ReportEvent['kind']): SrSeriesRole => (kind === 'drafted' ? 'draft' : kind === 'rejected' ? 'rejection' : 'signed');
const refOf = (event: Pick<ReportEvent, 'id' | 'reportKey' | 'kind'>): InstanceRef => ({
  seriesUid: seriesUid(event.reportKey, roleOf(event.kind)),
  sopUid: documentUid(event.id),
  sopClassUid: event.kind === 'rejected' ? SopClass.keyObjectSelection : SopClass.comprehensiveSr,
});

function placement(event: ReportEvent): Placement {
  const role = roleOf(event.kind);
  const ref = refOf(event);
  return { studyUid: event.studyUid, sopUid: ref.sopUid, seriesUid: ref.seriesUid, seriesNumber: SERIES[role].number, seriesDescription: SERIES[role].description, at: new Date(event.at) };
}

/** The images the model saw, as the study holds them; an image no longer there is named. */
function evidenceOf(draft: DraftedEvent, source: SrSource): InstanceRef[] {
  return draft.images.map((img) => {
    const sopClassUid = source.sopClasses.get(img.sopUid);
    if (!sopClassUid) throw new PermanentError(`image ${img.sopUid} the model saw is no longer in study ${draft.studyUid}; raddraft stores no SR whose evidence it cannot name`);
    return { seriesUid: img.seriesUid, sopUid: img.sopUid, sopClassUid };
  });
}

function draftText(event: DraftedEvent): ReportText {
  const flags = [...(event.draft.flags ?? []), ...(event.draft.sentenceFlags ?? []).map((f) => `${f.section}: "${f.sentence}" (${f.kind}: ${f.why})`)];
  return { findings: event.draft.findings, impression: event.draft.impression, flags, urgent: event.draft.urgent?.findings ?? [], notes: [] };
}

function signedText(event: SignedEvent): ReportText {
  const notes = [
    ...(event.kind === 'corrected' && event.reason ? [`Reason for ${event.mode ?? 'correction'}: ${event.reason}`] : []),
    ...(event.addenda ?? []).map((a, i) => `Addendum ${i + 1}: ${a}`),
  ];
  return { findings: event.findings, impression: event.impression, flags: [], urgent: [], notes };
}

/**
 * The PACS: every report version stored into its study as a DICOM object. The AI draft is a Comprehensive SR
 * (UNVERIFIED/PARTIAL) in its own series; a signature or correction is a new SR (VERIFIED/COMPLETE) naming the one
 * before as its predecessor; a rejection is an IOCM rejection note. Each object's UIDs derive from its report
 * event, so a store that is tried again makes the same object, which the archive keeps once.
 */
export function dicomSrOutput(deps: DicomSrOutputDeps): ReportOutput {
  async function sourceFor(event: ReportEvent, preferred: readonly string[]): Promise<SrSource> {
    return srSourceOf(event.studyUid, await deps.studies.metadata(event.studyUid), preferred);
  }

  async function draftOf(event: ReportEvent): Promise<DraftedEvent> {
    const draft = (await deps.reportEvents(event.reportKey)).find((e): e is DraftedEvent => e.kind === 'drafted');
    if (!draft) throw new PermanentError(`report ${event.reportKey} has no draft event in the outbox`);
    return draft;
  }

  async function algorithmOf(draft: DraftedEvent) {
    const revision = await modelRevision(deps.modelEndpoint, draft.draft.model, deps.modelApiKey);
    return { model: draft.draft.model, revision, promptVersion: draft.draft.promptVersion, software: deps.software };
  }

  async function drafted(event: DraftedEvent): Promise<Built> {
    const source = await sourceFor(event, event.images.map((i) => i.sopUid));
    const views = new Set(event.images.map((i) => i.view)).size;
    const content = reportContent(reportTitle(views), draftText(event), await algorithmOf(event), true);
    const bytes = reportSr({ source, placement: placement(event), software: deps.software, content, evidence: evidenceOf(event, source) });
    return { studyUid: event.studyUid, ref: refOf(event), bytes, identifiers: source.identifiers };
  }

  async function signed(event: SignedEvent, context: DeliveryContext): Promise<Built> {
    if (!AUTHENTICATED_SIGNER.test(event.by.reference)) {
      throw new PermanentError(`the ${event.kind} event of report ${event.reportKey} names no authenticated signer (a Practitioner reference); raddraft stores no VERIFIED SR without one`);
    }
    const draft = await draftOf(event);
    const source = await sourceFor(event, draft.images.map((i) => i.sopUid));
    const before = [...context.earlier].reverse().find((e) => e.kind === 'signed' || e.kind === 'corrected') ?? context.earlier.find((e) => e.kind === 'drafted');
    const predecessor = before ? refOf({ id: `${event.reportKey}:${before.seq}`, reportKey: event.reportKey, kind: before.kind }) : undefined;
    const views = new Set(draft.images.map((i) => i.view)).size;
    const content = reportContent(reportTitle(views), signedText(event), await algorithmOf(draft), false);
    const verifier = { name: event.by.display ?? event.by.reference, id: event.by.reference, organization: source.institution ?? deps.sr.organization, at: new Date(event.at) };
    const bytes = reportSr({ source, placement: placement(event), software: deps.software, content, evidence: evidenceOf(draft, source), verifier, ...(predecessor ? { predecessor } : {}) });
    return { studyUid: event.studyUid, ref: refOf(event), bytes, identifiers: source.identifiers };
  }

  /** The rejection note names the draft SR; without a stored draft SR there is nothing at the archive to hide. */
  async function rejected(event: RejectedEvent, context: DeliveryContext): Promise<Built | undefined> {
    const stored = context.earlier.find((e) => e.kind === 'drafted');
    if (!stored) return undefined;
    const draftRef = refOf({ id: `${event.reportKey}:${stored.seq}`, reportKey: event.reportKey, kind: 'drafted' });
    const source = await sourceFor(event, []);
    const content = rejectionContent(`AI draft report rejected by the radiologist: ${event.reason}`, [draftRef]);
    const bytes = rejectionKos({ source, placement: placement(event), software: deps.software, content, rejected: [draftRef] });
    return { studyUid: event.studyUid, ref: refOf(event), bytes, identifiers: source.identifiers };
  }

  async function store(built: Built, signal: AbortSignal): Promise<string> {
    const { destination, timeoutMs } = deps.sr;
    if (destination.kind === 'dicomweb') {
      await stowInstance(destination.url, destination.auth, built.studyUid, built.bytes, { timeoutMs, signal });
      return 'stored by STOW-RS';
    }
    const dir = await mkdtemp(path.join(tmpdir(), 'raddraft-sr-'));
    try {
      const file = path.join(dir, 'sr.dcm');
      await writeFile(file, built.bytes);
      return `stored by C-STORE (${await cStore(destination, file, { timeoutMs, signal })})`;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  return {
    name: 'dicom-sr',
    async deliver(event: ReportEvent, context: DeliveryContext): Promise<DeliveryOutcome> {
      try {
        const built = event.kind === 'drafted' ? await drafted(event)
          : event.kind === 'rejected' ? await rejected(event, context)
          : await signed(event, context);
        if (!built) return { kind: 'delivered', reference: 'none', note: 'no draft SR was stored in the study, so there is nothing to reject there' };
        const note = await phi.during(built.identifiers, () => store(built, context.signal));
        const { seriesUid: series, sopUid } = built.ref;
        return { kind: 'delivered', reference: `studies/${built.studyUid}/series/${series}/instances/${sopUid}`, note };
      } catch (err) {
        return outcomeOf(err, deps.waitMs);
      }
    },
  };
}
