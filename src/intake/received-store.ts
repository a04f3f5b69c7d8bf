import { randomUUID } from 'node:crypto';
import { copyFile, link, mkdir, readdir, rename, rm, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { HeaderError, readHeader } from '../dicom/header.js';
import { contextFromDataset, type StudySource } from '../dicom/study-source.js';
import { Tag, isUid, str, type DicomJson } from '../dicom/tags.js';
import type { StudyContext } from '../fhir/publish.js';

/** Why a pushed instance was refused; `code` is the DICOM failure status (PS3.4 / PS3.18) to answer with. */
export class ReceiveError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
    this.name = 'ReceiveError';
  }
}

export const FailureCode = {
  outOfResources: 0xa700,
  cannotUnderstand: 0xc000,
  processingFailure: 0x0110,
  studyMismatch: 0xa900,
} as const;

export interface Received {
  studyUid: string;
  seriesUid: string;
  sopUid: string;
  sopClassUid: string | undefined;
  /** Instances of the study held now. */
  instances: number;
}

/**
 * Instances pushed to raddraft (STOW-RS, C-STORE), kept on disk by study until their job is done, and served to
 * the pipeline like a PACS would. Each arrives streamed into a spool file and is moved into place only once its
 * header has been read and checked. Pushes are refused while free disk space is below the minimum, so nothing is
 * accepted that cannot be kept.
 */
export class ReceivedStore implements StudySource {
  readonly dir: string;
  private readonly spool: string;

  constructor(
    dataDir: string,
    private readonly minFreeBytes: number,
  ) {
    this.dir = path.join(dataDir, 'received');
    this.spool = path.join(this.dir, '.spool');
  }

  /** A path to stream one incoming instance to; throws when the disk is too full to accept it. */
  async spoolFile(): Promise<string> {
    await mkdir(this.spool, { recursive: true });
    const fs = await statfs(this.spool);
    const free = fs.bavail * fs.bsize;
    if (free < this.minFreeBytes) {
      throw new ReceiveError(
        `raddraft's disk has ${Math.round(free / 2 ** 20)} MiB free, below the ${Math.round(this.minFreeBytes / 2 ** 20)} MiB it keeps in reserve (RADDRAFT_MIN_FREE_MB); the instance was not accepted — send it again once space is freed`,
        FailureCode.outOfResources,
      );
    }
    return path.join(this.spool, `${randomUUID()}.part`);
  }

  /** Checks a spooled instance and files it under its study. `label` names it in errors (e.g. "part 2"). */
  async accept(spooled: string, label: string, expectStudyUid?: string): Promise<Received> {
    try {
      let dataset: DicomJson;
      try {
        ({ dataset } = await readHeader(spooled, label));
      } catch (err) {
        if (err instanceof HeaderError) throw new ReceiveError(err.message, FailureCode.cannotUnderstand);
        throw err;
      }
      const studyUid = str(dataset, Tag.StudyInstanceUID);
      const seriesUid = str(dataset, Tag.SeriesInstanceUID);
      const sopUid = str(dataset, Tag.SOPInstanceUID);
      for (const [name, value] of [['StudyInstanceUID', studyUid], ['SeriesInstanceUID', seriesUid], ['SOPInstanceUID', sopUid]] as const) {
        if (!isUid(value)) {
          throw new ReceiveError(`${label}: ${name} is ${value === undefined ? 'missing' : `not a valid UID (${JSON.stringify(value)})`}`, FailureCode.cannotUnderstand);
        }
      }
      if (expectStudyUid && studyUid !== expectStudyUid) {
        throw new ReceiveError(`${label}: instance ${sopUid} belongs to study ${studyUid}, not to ${expectStudyUid} named in the request`, FailureCode.studyMismatch);
      }
      const studyDir = path.join(this.dir, studyUid!);
      await mkdir(studyDir, { recursive: true });
      await rename(spooled, path.join(studyDir, `${sopUid}.dcm`));
      return { studyUid: studyUid!, seriesUid: seriesUid!, sopUid: sopUid!, sopClassUid: str(dataset, Tag.SOPClassUID), instances: await this.count(studyUid!) };
    } finally {
      await rm(spooled, { force: true });
    }
  }

  private async files(studyUid: string): Promise<string[]> {
    if (!isUid(studyUid)) return [];
    try {
      return (await readdir(path.join(this.dir, studyUid))).filter((f) => f.endsWith('.dcm')).map((f) => path.join(this.dir, studyUid, f));
    } catch {
      return [];
    }
  }

  async count(studyUid: string): Promise<number> {
    return (await this.files(studyUid)).length;
  }

  async has(studyUid: string): Promise<boolean> {
    return (await this.count(studyUid)) > 0;
  }

  async metadata(studyUid: string): Promise<DicomJson[]> {
    const out: DicomJson[] = [];
    for (const file of await this.files(studyUid)) out.push((await readHeader(file)).dataset);
    return out;
  }

  async fetchInstance(studyUid: string, _seriesUid: string, sopUid: string, dest: string): Promise<number> {
    const file = path.join(this.dir, studyUid, `${sopUid}.dcm`);
    // A hard link costs no space; across file systems, a copy.
    await link(file, dest).catch(() => copyFile(file, dest));
    return (await stat(dest)).size;
  }

  async studyContext(studyUid: string): Promise<StudyContext> {
    const [first] = await this.files(studyUid);
    if (!first) throw new ReceiveError(`study ${studyUid} is no longer held by raddraft`, FailureCode.processingFailure);
    return contextFromDataset((await readHeader(first)).dataset, studyUid);
  }

  /** Drops a study's instances once its job is done. */
  async remove(studyUid: string): Promise<void> {
    if (isUid(studyUid)) await rm(path.join(this.dir, studyUid), { recursive: true, force: true });
  }
}
