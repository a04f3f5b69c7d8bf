/** Study attributes needed to link the report. Patient ID and accession are PHI: they go to the FHIR server only. */
export interface StudyContext {
  studyUid: string;
  patientId: string | undefined;
  patientIdIssuer: string | undefined;
  accession: string | undefined;
  studyDate: string | undefined;
  studyTime: string | undefined;
  timezoneOffset: string | undefined;
  /** Read only for the optional clinical-context prompt (age band, sex); never stored or logged. */
  birthDate?: string | undefined;
  sex?: string | undefined;
  description?: string | undefined;
}
