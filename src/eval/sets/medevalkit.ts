import { access, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { modelImageSize } from '../../dicom/resize.js';
import { StudyInputError, type ModelImage } from '../model-images.js';
import { EvalInputError } from '../references.js';
import type { EvalSample } from '../sample.js';

const exists = (file: string) => access(file).then(() => true, () => false);

/**
 * An image file (PNG or JPEG, as IU-Xray ships them) made ready for the model the way Qwen2.5-VL's processor would
 * make it: resized to its 28-pixel grid within the pixel budget (smart_resize, bicubic), sent as PNG.
 */
export async function imageFileForModel(file: string): Promise<Buffer> {
  let meta;
  try {
    meta = await sharp(file).metadata();
  } catch (err) {
    throw new StudyInputError(`${path.basename(file)} is not a readable image (${(err as Error).message})`);
  }
  const size = modelImageSize(meta.width, meta.height);
  return sharp(file).resize(size.width, size.height, { fit: 'fill', kernel: 'cubic' }).png({ compressionLevel: 3 }).toBuffer();
}

interface RawSample {
  id?: unknown;
  image?: unknown;
  findings?: unknown;
  impression?: unknown;
}

/**
 * A MedEvalKit report-generation set (IU_XRAY or MIMIC_CXR): `test.json`, a JSON list of
 * {"id", "image": [file names], "findings", "impression"}, with the images under `images/` beside it. `where` is the
 * dataset folder or the JSON file itself. Samples whose findings and impression are both empty are left out, as
 * MedEvalKit leaves them out; a malformed sample stops the run with its index and field, before any drafting.
 */
export async function readMedEvalKitSet(where: string): Promise<{ samples: EvalSample[]; file: string; left: number }> {
  const isDir = (await stat(where).catch(() => undefined))?.isDirectory() ?? false;
  const file = isDir ? path.join(where, 'test.json') : where;
  const root = path.dirname(file);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new EvalInputError(e.code === 'ENOENT' ? `${file} does not exist (expected MedEvalKit's test.json)` : `${file} is not JSON: ${e.message}`);
  }
  if (!Array.isArray(raw)) throw new EvalInputError(`${file} is not a JSON list of samples (MedEvalKit's IU_XRAY/test.json layout)`);
  const samples: EvalSample[] = [];
  const ids = new Set<string>();
  let left = 0;
  for (const [i, entry] of (raw as RawSample[]).entries()) {
    const where = `${file} sample ${i}`;
    if (!entry || typeof entry !== 'object') throw new EvalInputError(`${where}: not an object`);
    const id = typeof entry.id === 'string' || typeof entry.id === 'number' ? String(entry.id) : undefined;
    if (!id) throw new EvalInputError(`${where}: "id" is missing`);
    if (ids.has(id)) throw new EvalInputError(`${where}: id ${JSON.stringify(id)} is used twice`);
    ids.add(id);
    const images = typeof entry.image === 'string' ? [entry.image] : entry.image;
    if (!Array.isArray(images) || images.length === 0 || !images.every((p): p is string => typeof p === 'string' && p.length > 0)) {
      throw new EvalInputError(`${where} (${id}): "image" must be a list of image file names`);
    }
    for (const field of ['findings', 'impression'] as const) {
      if (entry[field] !== undefined && entry[field] !== null && typeof entry[field] !== 'string') throw new EvalInputError(`${where} (${id}): "${field}" is not text`);
    }
    const findings = typeof entry.findings === 'string' ? entry.findings : '';
    const impression = typeof entry.impression === 'string' ? entry.impression : '';
    if (!findings.trim() && !impression.trim()) {
      left += 1;
      continue;
    }
    samples.push({
      id,
      reference: { findings, impression },
      images: async (): Promise<ModelImage[]> => {
        const out: ModelImage[] = [];
        for (const name of images) {
          const candidates = [path.join(root, 'images', name), path.join(root, name)];
          let found: string | undefined;
          for (const c of candidates) if (await exists(c)) { found = c; break; }
          if (!found) throw new StudyInputError(`image ${name} is not in ${path.join(root, 'images')}`);
          out.push({ png: await imageFileForModel(found), view: 'UNKNOWN' });
        }
        return out;
      },
    });
  }
  return { samples, file, left };
}
