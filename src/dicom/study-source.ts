import type { StudyContext } from '../report/study.js';
import type { Fault } from '../util/faults.js';
import { DicomWebError, type DicomWebClient } from './dicomweb.js';
import type { GrowableBytes } from '../util/http-get-into.js';
import { Tag, str, type DicomJson } from './tags.js';

/**
 * Where a study's instances come from: the PACS over DICOMweb, or instances pushed to raddraft (STOW-RS, C-STORE).
 * The pipeline asks for metadata, instances and linking context without knowing which.
 */
export interface StudySource {
  metadata(studyUid: string): Promise<DicomJson[]>;
  /** Writes the instance to `dest` and returns its size in bytes. */
  fetchInstance(studyUid: string, seriesUid: string, sopUid: string, dest: string): Promise<number>;
  /**
   * The instance for rendering, without a copy where one can be avoided: a file raddraft already holds (a pushed
   * instance) is named; one in the PACS is read into the memory `into` gives, which learns where in it the
   * instance lies.
   */
  readInstance(studyUid: string, seriesUid: string, sopUid: string, into: InstanceMemory): Promise<InstanceBytes>;
  studyContext(studyUid: string): Promise<StudyContext>;
}

/** Memory an instance from the PACS is read into (a staging buffer, staging.ts). */
export interface InstanceMemory {
  bytes(label: string): GrowableBytes;
  select(offset: number, length: number): void;
}

/** Where readInstance left an instance: in a file, or (this many bytes) in the memory it was given. */
export type InstanceBytes = { file: string } | { streamed: number };

/** Linking context from a study-level dataset (a QIDO result or an instance header). */
export function contextFromDataset(ds: DicomJson, studyUid: string): StudyContext {
  return {
    studyUid,
    patientId: str(ds, Tag.PatientID),
    patientIdIssuer: str(ds, Tag.IssuerOfPatientID),
    accession: str(ds, Tag.AccessionNumber),
    studyDate: str(ds, Tag.StudyDate),
    studyTime: str(ds, Tag.StudyTime),
    timezoneOffset: str(ds, '00080201'),
    birthDate: str(ds, Tag.PatientBirthDate),
    sex: str(ds, Tag.PatientSex),
    description: str(ds, Tag.StudyDescription),
  };
}

export class PacsSource implements StudySource {
  constructor(private readonly dicomweb: DicomWebClient) {}

  metadata(studyUid: string): Promise<DicomJson[]> {
    return this.dicomweb.studyMetadata(studyUid);
  }

  fetchInstance(studyUid: string, seriesUid: string, sopUid: string, dest: string): Promise<number> {
    return this.dicomweb.retrieveInstance(studyUid, seriesUid, sopUid, dest);
  }

  async readInstance(studyUid: string, seriesUid: string, sopUid: string, into: InstanceMemory): Promise<InstanceBytes> {
    const memory = into.bytes(`instance ${sopUid}`);
    const { offset, length } = await this.dicomweb.readInstanceInto(studyUid, seriesUid, sopUid, memory);
    // Elements of a Part 10 file start at even offsets: an instance at an even offset can have its 16-bit pixels
    // viewed where they lie. One that arrived at an odd offset is moved down a byte, over the part's headers.
    const start = offset - (offset % 2);
    if (start !== offset) memory.written().copyWithin(start, offset, offset + length);
    into.select(start, length);
    return { streamed: length };
  }

  /**
   * Read from the PACS when needed rather than kept in the job store: raddraft holds no patient identifiers at rest.
   */
  async studyContext(studyUid: string): Promise<StudyContext> {
    const found = await this.dicomweb.searchStudies({
      StudyInstanceUID: studyUid,
      includefield: [Tag.IssuerOfPatientID, '00080201', Tag.PatientBirthDate, Tag.PatientSex, Tag.StudyDescription],
    });
    const ds = found.find((d) => str(d, Tag.StudyInstanceUID) === studyUid);
    if (!ds) throw new DicomWebError(`QIDO-RS: study ${studyUid} is no longer in the PACS`, 404, true);
    return contextFromDataset(ds, studyUid);
  }
}

/**
 * Why a pushed study is not drafted (yet): the PACS does not hold it, or holds it for another patient. `retryable`
 * tells the job runner whether waiting can help (the PACS may get the study a little after raddraft does).
 */
export class PushedStudyError extends Error implements Fault {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'PushedStudyError';
  }

  get fault(): 'retry' | 'permanent' {
    return this.retryable ? 'retry' : 'permanent';
  }
}

/** `pacs`: a pushed study is drafted only once the PACS confirms it (RADDRAFT_PUSH_VERIFY); `none`: trusted as sent. */
export type PushVerify = 'pacs' | 'none';

const sameId = (a: string | undefined, b: string | undefined) => (a ?? '') === (b ?? '');

/**
 * Pushed instances where raddraft holds them, the PACS otherwise. Anyone who can reach an intake could push a study
 * naming any patient, so with `verify: 'pacs'` pushed instances are used only for a study the PACS holds, for the
 * same patient, and the report is linked with the PACS's patient details, never the pushed ones.
 */
export class PreferLocal implements StudySource {
  constructor(
    private readonly local: StudySource & { has(studyUid: string): Promise<boolean> },
    private readonly pacs: StudySource,
    private readonly verify: PushVerify = 'pacs',
  ) {}

  private async pick(studyUid: string): Promise<StudySource> {
    return (await this.local.has(studyUid)) ? this.local : this.pacs;
  }

  /** Throws PushedStudyError unless the PACS holds the study for the patient every pushed instance names. */
  private async confirm(studyUid: string, pushed: DicomJson[]): Promise<void> {
    let held: StudyContext;
    try {
      held = await this.pacs.studyContext(studyUid);
    } catch (err) {
      if (err instanceof DicomWebError && err.status === 404) {
        throw new PushedStudyError(
          `study ${studyUid} was pushed to raddraft but the PACS (QIDO-RS at RADDRAFT_DICOMWEB_URL) does not hold it; a pushed study is drafted only once the PACS confirms it (RADDRAFT_PUSH_VERIFY=pacs)`,
          true,
        );
      }
      throw err;
    }
    const differ = pushed.filter((ds) =>
      !sameId(str(ds, Tag.PatientID), held.patientId)
      || (str(ds, Tag.IssuerOfPatientID) !== undefined && held.patientIdIssuer !== undefined && str(ds, Tag.IssuerOfPatientID) !== held.patientIdIssuer));
    if (differ.length) {
      throw new PushedStudyError(
        `${differ.length} of the ${pushed.length} instance(s) pushed for study ${studyUid} name a different patient (Patient ID) than the PACS holds for that study; raddraft drafts nothing from them`,
        false,
      );
    }
  }

  async metadata(studyUid: string): Promise<DicomJson[]> {
    if (!(await this.local.has(studyUid))) return this.pacs.metadata(studyUid);
    const pushed = await this.local.metadata(studyUid);
    if (this.verify === 'pacs') await this.confirm(studyUid, pushed);
    return pushed;
  }

  async fetchInstance(studyUid: string, seriesUid: string, sopUid: string, dest: string): Promise<number> {
    return (await this.pick(studyUid)).fetchInstance(studyUid, seriesUid, sopUid, dest);
  }

  async readInstance(studyUid: string, seriesUid: string, sopUid: string, into: InstanceMemory): Promise<InstanceBytes> {
    return (await this.pick(studyUid)).readInstance(studyUid, seriesUid, sopUid, into);
  }

  async studyContext(studyUid: string): Promise<StudyContext> {
    return this.verify === 'pacs' ? this.pacs.studyContext(studyUid) : (await this.pick(studyUid)).studyContext(studyUid);
  }
}
