import { copyFile, link, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { readHeader } from '../../dicom/header.js';
import type { InstanceBytes, StudySource } from '../../dicom/study-source.js';
import { Tag, str, type DicomJson } from '../../dicom/tags.js';
import type { StudyContext } from '../../report/study.js';

interface Instance {
  file: string;
  dataset: DicomJson;
}

/** Every file under `dir`, depth first, in name order (DICOMDIR trees have no extensions). */
async function* walk(dir: string): AsyncGenerator<string> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) yield* walk(full);
    else if (e.isFile() && e.name !== 'DICOMDIR') yield full;
  }
}

/**
 * DICOM studies in a folder (any depth, any file names), indexed by Study Instance UID from their headers. Files
 * that are not DICOM are counted and named, not fatal: an export folder often holds a viewer or a README.
 */
export class DicomFolder implements StudySource {
  private constructor(
    private readonly studies: Map<string, Instance[]>,
    readonly unreadable: { file: string; reason: string }[],
  ) {}

  static async scan(dir: string): Promise<DicomFolder> {
    const studies = new Map<string, Instance[]>();
    const unreadable: { file: string; reason: string }[] = [];
    for await (const file of walk(dir)) {
      try {
        const { dataset } = await readHeader(file, path.relative(dir, file));
        const uid = str(dataset, Tag.StudyInstanceUID);
        if (!uid) {
          unreadable.push({ file, reason: 'no Study Instance UID' });
          continue;
        }
        const list = studies.get(uid) ?? [];
        list.push({ file, dataset });
        studies.set(uid, list);
      } catch (err) {
        unreadable.push({ file, reason: (err as Error).message });
      }
    }
    return new DicomFolder(studies, unreadable);
  }

  get studyUids(): string[] {
    return [...this.studies.keys()];
  }

  has(studyUid: string): boolean {
    return this.studies.has(studyUid);
  }

  metadata(studyUid: string): Promise<DicomJson[]> {
    return Promise.resolve((this.studies.get(studyUid) ?? []).map((i) => i.dataset));
  }

  async fetchInstance(studyUid: string, _seriesUid: string, sopUid: string, dest: string): Promise<number> {
    const instance = this.studies.get(studyUid)?.find((i) => str(i.dataset, Tag.SOPInstanceUID) === sopUid);
    if (!instance) throw new Error(`instance ${sopUid} of study ${studyUid} is not in the folder`);
    await link(instance.file, dest).catch(() => copyFile(instance.file, dest));
    return (await stat(dest)).size;
  }

  readInstance(studyUid: string, _seriesUid: string, sopUid: string): Promise<InstanceBytes> {
    const instance = this.studies.get(studyUid)?.find((i) => str(i.dataset, Tag.SOPInstanceUID) === sopUid);
    if (!instance) return Promise.reject(new Error(`instance ${sopUid} of study ${studyUid} is not in the folder`));
    return Promise.resolve({ file: instance.file });
  }

  studyContext(): Promise<StudyContext> {
    return Promise.reject(new Error('a DICOM folder is evaluated without linking to a patient'));
  }
}
