import { execFile } from 'node:child_process';
import { copyFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Runs a DCMTK tool and fails with its stderr when it does. */
export async function dcmtk(tool: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(tool, args, { maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    throw new Error(`${tool} ${args.join(' ')} failed: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`);
  }
}

/** Reads an 8-bit binary PGM (P5) as written by dcmj2pnm. */
export async function readPgm(file: string): Promise<{ width: number; height: number; pixels: Uint8Array }> {
  const buf = await readFile(file);
  const header = /^P5\s+(?:#.*\s+)*(\d+)\s+(\d+)\s+(\d+)\s/.exec(buf.subarray(0, 200).toString('latin1'));
  if (!header) throw new Error(`${file} is not a binary PGM`);
  const [, w, h, max] = header;
  if (Number(max) !== 255) throw new Error(`${file} is not 8-bit (maxval ${max})`);
  const width = Number(w);
  const height = Number(h);
  const pixels = new Uint8Array(buf.buffer, buf.byteOffset + header[0].length, width * height);
  return { width, height, pixels };
}

/** Copies of a single-instance study with fresh Study, Series and SOP Instance UIDs (DCMTK dcmodify -gst -gse -gin). */
let clones = 0;

export async function cloneStudies(file: string, count: number, dir: string, tags: string[] = []): Promise<{ studyUid: string; file: string }[]> {
  const out: { studyUid: string; file: string }[] = [];
  for (let i = 0; i < count; i++) {
    // Numbered across calls, so a second clone of the same file into the same folder never overwrites the first.
    const target = path.join(dir, `clone-${++clones}-${path.basename(file)}`);
    await copyFile(file, target);
    await dcmtk('dcmodify', ['-nb', '-gst', '-gse', '-gin', ...tags.flatMap((t) => ['-m', t]), target]);
    const uid = /\[([\d.]+)\]/.exec(await dcmtk('dcmdump', ['+P', '0020,000d', target]))![1]!;
    out.push({ studyUid: uid, file: target });
  }
  return out;
}
