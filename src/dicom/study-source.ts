import type { StudyContext } from '../fhir/publish.js';
import { DicomWebError, type DicomWebClient } from './dicomweb.js';
import { Tag, str, type DicomJson } from './tags.js';

/**
 * Where a study's instances come from: the PACS over DICOMweb, or instances pushed to raddraft (STOW-RS, C-STORE).
 * The pipeline asks for metadata, instances and linking context without knowing which.
 */
export interface StudySource {
  metadata(studyUid: string): Promise<DicomJson[]>;
  /** Writes the instance to `dest` and returns its size in bytes. */
  fetchInstance(studyUid: string, seriesUid: string, sopUid: string, dest: string): Promise<number>;
  studyContext(studyUid: string): Promise<StudyContext>;
}

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

/** Pushed instances where raddraft holds them, the PACS otherwise. */
export class PreferLocal implements StudySource {
  constructor(
    private readonly local: StudySource & { has(studyUid: string): Promise<boolean> },
    private readonly pacs: StudySource,
  ) {}

  private async pick(studyUid: string): Promise<StudySource> {
    return (await this.local.has(studyUid)) ? this.local : this.pacs;
  }

  async metadata(studyUid: string): Promise<DicomJson[]> {
    return (await this.pick(studyUid)).metadata(studyUid);
  }

  async fetchInstance(studyUid: string, seriesUid: string, sopUid: string, dest: string): Promise<number> {
    return (await this.pick(studyUid)).fetchInstance(studyUid, seriesUid, sopUid, dest);
  }

  async studyContext(studyUid: string): Promise<StudyContext> {
    return (await this.pick(studyUid)).studyContext(studyUid);
  }
}
