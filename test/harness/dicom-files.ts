import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import dcmjs from 'dcmjs';
import { FIXTURE_DIR } from './peers.js';

/** A transfer-syntax fixture (`make fixtures`) by name, and the uncompressed 12-bit source it was encoded from. */
export function syntaxFixture(name: string): string {
  return path.join(FIXTURE_DIR, 'transfer-syntaxes', `${name}.dcm`);
}

export async function syntaxSource(): Promise<string> {
  const dir = path.join(FIXTURE_DIR, 'transfer-syntaxes', 'sources', 'source-12bit');
  const files = (await readdir(dir)).filter((f) => f.endsWith('.dcm'));
  if (files.length !== 1) throw new Error(`expected one source file in ${dir}; run \`make fixtures\``);
  return path.join(dir, files[0]!);
}

/**
 * Writes a multi-frame copy of a single-frame native file: its own frame first, then the extra frames given
 * (each the same size as the first).
 */
export async function writeMultiFrame(source: string, target: string, extraFrames: Uint8Array[]): Promise<void> {
  const bytes = await readFile(source);
  const dict = dcmjs.data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const ds = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.dict);
  const first = new Uint8Array((ds.PixelData as ArrayBuffer[])[0]!);
  const all = Buffer.concat([first, ...extraFrames]);
  ds.NumberOfFrames = 1 + extraFrames.length;
  ds.PixelData = [all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength)];
  const out = new dcmjs.data.DicomDict(dict.meta);
  out.dict = dcmjs.data.DicomMetaDictionary.denaturalizeDataset(ds);
  await writeFile(target, Buffer.from(out.write()));
}

/**
 * Copies a file, replacing every occurrence of each text with another of the same length: a way to give a file
 * new UIDs, or a new transfer syntax, that works whatever the transfer syntax (DCMTK cannot rewrite HTJ2K files).
 */
export async function withReplacedText(source: string, target: string, replacements: [from: string, to: string][]): Promise<void> {
  const bytes = await readFile(source);
  for (const [from, to] of replacements) {
    if (from.length !== to.length) throw new Error(`${to} must have the same length as ${from}`);
    const needle = Buffer.from(from, 'latin1');
    let at = bytes.indexOf(needle);
    if (at < 0) throw new Error(`${from} not found in ${source}`);
    for (; at >= 0; at = bytes.indexOf(needle, at + 1)) bytes.write(to, at, 'latin1');
  }
  await writeFile(target, bytes);
}
