import { open, readFile, type FileHandle } from 'node:fs/promises';

/** One line of drafts.jsonl: a study drafted, or a study that could not be, with the reason. */
export type DraftLine =
  | { id: string; ok: true; model: string; promptVersion: string; findings: string; impression: string; text: string; flags: string[]; views: string[]; draftedAt: string; priorGiven?: boolean }
  | { id: string; ok: false; model: string; promptVersion: string; error: string; at: string };

/**
 * The drafts of an evaluation, one JSON line each, appended as they arrive so that an interrupted run loses at most
 * the studies in flight. Reading takes the last line per study and ignores a line cut short by the interruption.
 */
export class DraftsFile {
  private handle: FileHandle | undefined;
  private chain: Promise<void> = Promise.resolve();

  constructor(readonly file: string) {}

  async read(): Promise<Map<string, DraftLine>> {
    const out = new Map<string, DraftLine>();
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch {
      return out;
    }
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        const row = JSON.parse(line) as DraftLine;
        if (typeof row.id === 'string') out.set(row.id, row);
      } catch {
        // The last line of a run that was killed mid-write.
      }
    }
    return out;
  }

  append(line: DraftLine): Promise<void> {
    this.chain = this.chain.then(async () => {
      this.handle ??= await open(this.file, 'a');
      await this.handle.write(`${JSON.stringify(line)}\n`);
    });
    return this.chain;
  }

  async close(): Promise<void> {
    await this.chain;
    await this.handle?.close();
    this.handle = undefined;
  }
}
