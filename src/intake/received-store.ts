import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { copyFile, link, mkdir, readdir, rename, rm, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { HeaderError, readHeader } from '../dicom/header.js';
import { contextFromDataset, type InstanceBytes, type StudySource } from '../dicom/study-source.js';
import { Tag, isUid, str, type DicomJson } from '../dicom/tags.js';
import type { StudyContext } from '../report/study.js';

/**
 * Why a pushed instance was refused; `code` is the DICOM failure status (PS3.4 / PS3.18) to answer with. `tooLarge`
 * marks an instance over RADDRAFT_MAX_INSTANCE_MB, which no retry will cure (unlike a full disk).
 */
export class ReceiveError extends Error {
  constructor(
    message: string,
    readonly code: number,
    readonly tooLarge = false,
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

/** One instance being streamed to the spool. `discard` removes what was written (on any failure). */
export interface SpoolSink {
  readonly file: string;
  write(chunk: Buffer): Promise<void>;
  end(): Promise<void>;
  discard(): Promise<void>;
}

/** How often free space is looked at again while an instance streams in: the most a stream can overshoot the reserve. */
const RESERVE_CHECK_BYTES = 4 * 2 ** 20;
const MiB = (bytes: number) => Math.round(bytes / 2 ** 20);

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
    /** RADDRAFT_MAX_INSTANCE_MB in bytes. */
    readonly maxInstanceBytes = Number.POSITIVE_INFINITY,
  ) {
    this.dir = path.join(dataDir, 'received');
    this.spool = path.join(this.dir, '.spool');
  }

  private async checkReserve(): Promise<void> {
    const fs = await statfs(this.spool);
    const free = fs.bavail * fs.bsize;
    if (free < this.minFreeBytes) {
      throw new ReceiveError(
        `raddraft's disk has ${MiB(free)} MiB free, below the ${MiB(this.minFreeBytes)} MiB it keeps in reserve (RADDRAFT_MIN_FREE_MB); the instance was not accepted — send it again once space is freed`,
        FailureCode.outOfResources,
      );
    }
  }

  private tooLarge(label: string): ReceiveError {
    return new ReceiveError(
      `${label} is larger than the ${MiB(this.maxInstanceBytes)} MiB raddraft accepts for one instance (RADDRAFT_MAX_INSTANCE_MB); it was not kept`,
      FailureCode.outOfResources,
      true,
    );
  }

  /** A path to stream one incoming instance to; throws when the disk is too full to accept it. */
  async spoolFile(): Promise<string> {
    await mkdir(this.spool, { recursive: true });
    await this.checkReserve();
    return path.join(this.spool, `${randomUUID()}.part`);
  }

  /**
   * Streams one instance into the spool, refusing it as soon as it passes RADDRAFT_MAX_INSTANCE_MB or free space
   * falls below the reserve (looked at again every few MiB, so one stream cannot run far past it). A refused
   * instance's partial file is removed before the error is thrown.
   */
  async openSpool(label: string): Promise<SpoolSink> {
    const file = await this.spoolFile();
    const out = createWriteStream(file);
    await once(out, 'open');
    let written = 0;
    let sinceCheck = 0;
    const discard = async () => {
      out.destroy();
      await rm(file, { force: true });
    };
    const guarded = async <T>(work: () => Promise<T>): Promise<T> => {
      try {
        return await work();
      } catch (err) {
        await discard();
        throw err;
      }
    };
    return {
      file,
      write: (chunk) => guarded(async () => {
        written += chunk.length;
        sinceCheck += chunk.length;
        if (written > this.maxInstanceBytes) throw this.tooLarge(label);
        if (sinceCheck >= RESERVE_CHECK_BYTES) {
          sinceCheck = 0;
          await this.checkReserve();
        }
        if (!out.write(chunk)) await once(out, 'drain');
      }),
      end: () => guarded(async () => {
        out.end();
        await once(out, 'finish');
      }),
      discard,
    };
  }

  /** Checks a spooled instance and files it under its study. `label` names it in errors (e.g. "part 2"). */
  async accept(spooled: string, label: string, expectStudyUid?: string): Promise<Received> {
    try {
      // C-STORE files arrive through other writers; the limit holds for them too, if only after the fact.
      if ((await stat(spooled)).size > this.maxInstanceBytes) throw this.tooLarge(label);
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

  /** A pushed instance is rendered from the file it was received into. */
  async readInstance(studyUid: string, _seriesUid: string, sopUid: string): Promise<InstanceBytes> {
    const file = path.join(this.dir, studyUid, `${sopUid}.dcm`);
    await stat(file);
    return { file };
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

  /**
   * Removes what no job needs: studies whose job has ended (`ended` answers true), studies no job knows (undefined)
   * untouched for `orphanMs`, and spool files as old (a transfer that never finished). Returns the number removed.
   */
  async sweep(ended: (studyUid: string) => Promise<boolean | undefined>, orphanMs: number, now = Date.now()): Promise<number> {
    let removed = 0;
    const old = async (p: string) => now - (await stat(p).then((s) => s.mtimeMs, () => now)) > orphanMs;
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      if (!isUid(name)) continue;
      const state = await ended(name);
      if (state === true || (state === undefined && (await old(path.join(this.dir, name))))) {
        await this.remove(name);
        removed++;
      }
    }
    for (const name of await readdir(this.spool).catch(() => [] as string[])) {
      const file = path.join(this.spool, name);
      if (await old(file)) {
        await rm(file, { force: true });
        removed++;
      }
    }
    return removed;
  }
}
