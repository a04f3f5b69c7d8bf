import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { RenderPool } from '../../dicom/render-pool.js';
import type { StudySource } from '../../dicom/study-source.js';
import { assessStudy } from '../../dicom/eligibility.js';
import { RenderError } from '../../dicom/pixel-module.js';
import { StudyInputError, type ModelImage } from '../model-images.js';

/**
 * The images of a DICOM study exactly as `raddraft serve` would send them: the same eligibility check, view
 * choice and rendering, so that evaluation figures describe production.
 */
export async function dicomStudyImages(source: StudySource, studyUid: string, renderer: RenderPool): Promise<ModelImage[]> {
  const verdict = assessStudy(await source.metadata(studyUid));
  if (!verdict.eligible) throw new StudyInputError(`not drafted, as raddraft serve would not: ${verdict.reason}`);
  const dir = await mkdtemp(path.join(tmpdir(), 'raddraft-eval-'));
  try {
    const out: ModelImage[] = [];
    for (const view of verdict.views) {
      const file = path.join(dir, `${view.sopUid}.dcm`);
      await source.fetchInstance(studyUid, view.seriesUid, view.sopUid, file);
      try {
        const image = await renderer.render(file, `instance ${view.sopUid}`);
        out.push({ png: image.png, view: view.view });
      } catch (err) {
        if (err instanceof RenderError) throw new StudyInputError((err as Error).message);
        throw err;
      }
    }
    return out;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
