import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
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
