import type { DicomWebClient } from './dicomweb.js';
import { DicomWebError } from './dicomweb.js';
import { Tag, str } from './tags.js';
import type { StudyContext } from '../fhir/publish.js';

/**
 * Study-level attributes for linking the report, read from the PACS when they are needed rather than kept in the
 * job store: raddraft holds no patient identifiers at rest.
 */
export async function readStudyContext(dicomweb: DicomWebClient, studyUid: string): Promise<StudyContext> {
  const found = await dicomweb.searchStudies({
    StudyInstanceUID: studyUid,
    includefield: [Tag.IssuerOfPatientID, '00080201', Tag.PatientBirthDate, Tag.PatientSex, Tag.StudyDescription],
  });
  const ds = found.find((d) => str(d, Tag.StudyInstanceUID) === studyUid);
  if (!ds) throw new DicomWebError(`QIDO-RS: study ${studyUid} is no longer in the PACS`, 404, true);
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
