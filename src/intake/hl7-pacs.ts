import { DicomWebError, type DicomWebClient } from '../dicom/dicomweb.js';
import { Tag, str } from '../dicom/tags.js';

/**
 * What the HL7 listener asks the PACS to match a final report to a study: raddraft keeps no accession numbers of its
 * own (they identify a patient's order), so it looks them up where they are held.
 */
export function pacsLookups(dicomweb: DicomWebClient): { studiesByAccession: (accession: string) => Promise<string[]>; accessionOf: (studyUid: string) => Promise<string | undefined> } {
  return {
    studiesByAccession: async (accession) => {
      const found = await dicomweb.searchStudies({ AccessionNumber: accession });
      // A PACS that ignores the filter returns other studies too: only exact matches count.
      return [...new Set(found.filter((d) => str(d, Tag.AccessionNumber) === accession).map((d) => str(d, Tag.StudyInstanceUID)).filter((u): u is string => !!u))];
    },
    accessionOf: async (studyUid) => {
      try {
        const found = await dicomweb.searchStudies({ StudyInstanceUID: studyUid });
        return str(found.find((d) => str(d, Tag.StudyInstanceUID) === studyUid) ?? {}, Tag.AccessionNumber);
      } catch (err) {
        if (err instanceof DicomWebError && err.status === 404) return undefined;
        throw err;
      }
    },
  };
}
