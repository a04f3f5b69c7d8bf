import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { DicomWebClient } from '../dicom/dicomweb.js';
import { RenderError } from '../dicom/render.js';
import type { RenderPool } from '../dicom/render-pool.js';
import { isUid } from '../dicom/tags.js';
import { OperationOutcomeError } from '../util/operation-outcome.js';

const MAX_CACHED = 200;

/**
 * Images for the review page, rendered by raddraft from the PACS with the window the reviewer asks for. Instances
 * are cached on disk (at most 200, oldest dropped first) so adjusting the window does not fetch them again. They
 * are rendered by the same thread pool as the model's images, never on the thread that serves HTTP.
 */
export class ViewerImages {
  private readonly dir: string;
  private readonly fetching = new Map<string, Promise<string>>();

  constructor(
    private readonly dicomweb: DicomWebClient,
    dataDir: string,
    private readonly renderer: RenderPool,
  ) {
    this.dir = path.join(dataDir, 'viewer');
  }

  private async instanceFile(studyUid: string, seriesUid: string, sopUid: string): Promise<string> {
    const file = path.join(this.dir, `${sopUid}.dcm`);
    if (await stat(file).then(() => true, () => false)) return file;
    let pending = this.fetching.get(sopUid);
    if (!pending) {
      pending = (async () => {
        await mkdir(this.dir, { recursive: true });
        await this.dicomweb.retrieveInstance(studyUid, seriesUid, sopUid, `${file}.part`);
        await rename(`${file}.part`, file);
        await this.trim();
        return file;
      })().finally(() => this.fetching.delete(sopUid));
      this.fetching.set(sopUid, pending);
    }
    return pending;
  }

  private async trim(): Promise<void> {
    const names = (await readdir(this.dir)).filter((n) => n.endsWith('.dcm'));
    if (names.length <= MAX_CACHED) return;
    const aged = await Promise.all(names.map(async (n) => ({ n, t: (await stat(path.join(this.dir, n))).mtimeMs })));
    aged.sort((a, b) => a.t - b.t);
    for (const { n } of aged.slice(0, names.length - MAX_CACHED)) await rm(path.join(this.dir, n), { force: true });
  }

  async png(uids: { study: string; series: string; sop: string }, view: { center?: number; width?: number; size: number }): Promise<Buffer> {
    for (const [name, uid] of Object.entries(uids)) {
      const shown = JSON.stringify(uid);
      if (!isUid(uid)) throw new OperationOutcomeError(400, 'invalid', `${name} UID ${shown} is not a DICOM UID`);
    }
    const file = await this.instanceFile(uids.study, uids.series, uids.sop);
    const window = view.center !== undefined && view.width !== undefined ? { center: view.center, width: view.width } : undefined;
    try {
      const image = await this.renderer.render(file, `instance ${uids.sop}`, { maxSide: view.size, ...(window ? { window } : {}) });
      return image.png;
    } catch (err) {
      // The instance itself is at fault (too large, truncated, undecodable): say so, as for a job.
      if (err instanceof RenderError) throw new OperationOutcomeError(422, 'processing', err.message);
      throw err;
    }
  }
}
