import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TRANSFER_SYNTAXES } from './transfer-syntaxes.js';
import { assessStudy } from './eligibility.js';
import type { RenderedImage } from './render.js';
import type { RenderPool } from './render-pool.js';
import type { StudySource } from './study-source.js';

/**
 * `raddraft render`: the picture the model receives for a file or a study, written as PNG, with what an
 * administrator needs to judge it: its size and the source's, the window, the transfer syntax and the time taken.
 * Rendering goes through the same rendering threads, ceilings and view choice as drafting.
 */

export interface RenderLine {
  out: string;
  image: Omit<RenderedImage, 'png'>;
}

/** One line about a rendered picture, e.g. `pa.png: 896 × 1092 (from 2048 × 2500, decoded at 1024 × 1250), …`. */
export function describeRender({ out, image }: RenderLine): string {
  const decoded = image.decodedWidth !== image.sourceWidth || image.decodedHeight !== image.sourceHeight
    ? `, decoded at ${image.decodedWidth} × ${image.decodedHeight}`
    : '';
  const syntax = TRANSFER_SYNTAXES[image.transferSyntaxUid]?.name ?? 'unknown';
  const w = image.window;
  const round = (x: number) => Number(x.toFixed(2));
  return `${out}: ${image.width} × ${image.height} (from ${image.sourceWidth} × ${image.sourceHeight}${decoded}); `
    + `window center ${round(w.center)} width ${round(w.width)} (${w.source}); ${image.photometric}; `
    + `transfer syntax ${image.transferSyntaxUid} (${syntax}); ${image.ms.toFixed(0)} ms`;
}

async function renderTo(pool: RenderPool, file: string, label: string, out: string): Promise<RenderLine> {
  const { png, ...image } = await pool.render(file, label);
  await mkdir(path.dirname(path.resolve(out)), { recursive: true });
  await writeFile(out, png);
  return { out, image };
}

/** Renders one DICOM file to `out`. */
export function renderFile(pool: RenderPool, file: string, out: string): Promise<RenderLine> {
  return renderTo(pool, file, path.basename(file), out);
}

export type StudyRender =
  | { eligible: false; reason: string }
  | { eligible: true; rendered: RenderLine[]; skipped: { sopUid: string; reason: string }[] };

/**
 * Renders the views raddraft would draft a study from (fetched with WADO-RS, as a job does) into `outDir`, one
 * `<n>-<view>-<SOPInstanceUID>.png` each, in the order the model receives them.
 */
export async function renderStudy(pool: RenderPool, studies: StudySource, studyUid: string, outDir: string): Promise<StudyRender> {
  const verdict = assessStudy(await studies.metadata(studyUid));
  if (!verdict.eligible) return verdict;
  const work = await mkdtemp(path.join(tmpdir(), 'raddraft-render-'));
  try {
    const rendered: RenderLine[] = [];
    for (const [i, view] of verdict.views.entries()) {
      const dcm = path.join(work, `${view.sopUid}.dcm`);
      await studies.fetchInstance(studyUid, view.seriesUid, view.sopUid, dcm);
      const out = path.join(outDir, `${i + 1}-${view.view.toLowerCase()}-${view.sopUid}.png`);
      rendered.push(await renderTo(pool, dcm, `instance ${view.sopUid}`, out));
    }
    return { eligible: true, rendered, skipped: verdict.skipped.map((s) => ({ sopUid: s.sopUid, reason: s.reason })) };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
