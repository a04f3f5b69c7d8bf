/** MLLP's start of block, end of block and the carriage return that follows it. */
const VT = 0x0b;
const FS = 0x1c;
const CR = 0x0d;

/** What a listener's byte stream holds: a whole MLLP block, bytes outside any block, or a block past the limit. */
export type FrameEvent =
  | { kind: 'frame'; bytes: Buffer }
  /** Bytes where a block should start (no <VT>): the stream is not MLLP, or lost its place. */
  | { kind: 'garbage'; bytes: Buffer }
  /** A block that grew past the limit before its end; `head` is its first bytes (up to the limit). */
  | { kind: 'oversize'; head: Buffer };

const LF = 0x0a;

/**
 * Splits a stream into MLLP blocks (<VT> message <FS><CR>), holding at most `maxBytes` of a block. @medplum/hl7's
 * Hl7Connection keeps every byte until a TCP chunk happens to end with <FS><CR> and reads two blocks in one chunk as
 * one message; a listener must bound what a sender may pile up and keep the bytes of a message it cannot parse.
 * After `garbage` or `oversize` the stream has lost its place and the connection should close.
 */
export class MllpDeframer {
  private chunks: Buffer[] = [];
  private size = 0;
  private inside = false;

  constructor(private readonly maxBytes: number) {}

  /** Whether a block has begun and not ended (its bytes are held). */
  get partial(): boolean {
    return this.inside;
  }

  push(data: Buffer): FrameEvent[] {
    const events: FrameEvent[] = [];
    let i = 0;
    while (i < data.length) {
      if (!this.inside) {
        const byte = data[i]!;
        // The <CR> after <FS>, and line ends some senders put between blocks, are not data.
        if (byte === CR || byte === LF) {
          i++;
          continue;
        }
        if (byte !== VT) {
          events.push({ kind: 'garbage', bytes: data.subarray(i, i + this.maxBytes) });
          return events;
        }
        this.inside = true;
        i++;
        continue;
      }
      const end = data.indexOf(FS, i);
      const piece = data.subarray(i, end < 0 ? data.length : end);
      this.size += piece.length;
      if (this.size > this.maxBytes) {
        const head = Buffer.concat([...this.chunks, piece]).subarray(0, this.maxBytes);
        this.reset();
        events.push({ kind: 'oversize', head });
        return events;
      }
      this.chunks.push(piece);
      if (end < 0) break;
      events.push({ kind: 'frame', bytes: Buffer.concat(this.chunks) });
      this.reset();
      i = end + 1;
    }
    return events;
  }

  private reset(): void {
    this.chunks = [];
    this.size = 0;
    this.inside = false;
  }
}
