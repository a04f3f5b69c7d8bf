/**
 * A command set is a few hundred bytes; 64 KiB is far beyond any real one. The library gathers command sets in
 * memory, as it does the data set of any message but a C-STORE (which raddraft streams to disk), so both are bounded
 * here before they reach it.
 */
export const MAX_COMMAND_BYTES = 64 * 1024;
export const MAX_IN_MEMORY_DATASET_BYTES = 64 * 1024;
const ITEM_HEADER_BYTES = 6;
const C_STORE_RQ = 0x0001;

/** The Command Field (0000,0100) of an implicit VR little endian command set, if present. */
export function commandField(command: Buffer): number | undefined {
  for (let at = 0; at + 8 <= command.length; ) {
    const group = command.readUInt16LE(at);
    const element = command.readUInt16LE(at + 2);
    const length = command.readUInt32LE(at + 4);
    if (group === 0 && element === 0x0100 && length >= 2 && at + 10 <= command.length) return command.readUInt16LE(at + 8);
    at += 8 + length;
  }
  return undefined;
}

/**
 * Follows the presentation data value items inside P-DATA-TF PDUs (PS3.8 §9.3.5.1) and measures what the library
 * would gather in memory: the fragments of each command set, and the data set of any message that is not a
 * C-STORE request. Returns a fault as text, for the caller to abort with; nothing but the command set is kept.
 */
export class PdvMeter {
  private readonly head = Buffer.alloc(ITEM_HEADER_BYTES);
  private headFill = 0;
  private inValue = false;
  private valueLeft = 0;
  private pduLeft = 0;
  private isCommand = false;
  private isLast = false;
  private command: Buffer[] = [];
  private commandBytes = 0;
  private datasetBytes = 0;
  private storing = false;

  startPdu(length: number): void {
    this.pduLeft = length;
  }

  /** Bytes of the P-DATA-TF PDU's body; returns a fault, or undefined. */
  feed(bytes: Buffer): string | undefined {
    let at = 0;
    while (at < bytes.length) {
      if (!this.inValue) {
        const take = Math.min(ITEM_HEADER_BYTES - this.headFill, bytes.length - at);
        bytes.copy(this.head, this.headFill, at, at + take);
        this.headFill += take;
        at += take;
        this.pduLeft -= take;
        if (this.headFill < ITEM_HEADER_BYTES) break;
        this.headFill = 0;
        const itemLength = this.head.readUInt32BE(0);
        if (itemLength < 2 || itemLength - 2 > this.pduLeft) return `a PDV item announces ${itemLength} bytes, which does not fit its P-DATA-TF PDU`;
        this.isCommand = (this.head[5]! & 1) === 1;
        this.isLast = (this.head[5]! & 2) === 2;
        this.valueLeft = itemLength - 2;
        this.inValue = true;
      } else {
        const take = Math.min(this.valueLeft, bytes.length - at);
        const fault = this.measure(bytes.subarray(at, at + take));
        if (fault) return fault;
        at += take;
        this.pduLeft -= take;
        this.valueLeft -= take;
      }
      if (this.inValue && this.valueLeft === 0) this.fragmentDone();
    }
    return undefined;
  }

  /** The PDU ended; an item cut by its end is a fault. */
  endPdu(): string | undefined {
    return this.headFill !== 0 || this.inValue ? 'a PDV item runs past the end of its P-DATA-TF PDU' : undefined;
  }

  private measure(part: Buffer): string | undefined {
    if (this.isCommand) {
      this.commandBytes += part.length;
      if (this.commandBytes > MAX_COMMAND_BYTES) return `a command set is longer than the ${MAX_COMMAND_BYTES} bytes raddraft reads`;
      this.command.push(Buffer.from(part));
      return undefined;
    }
    this.datasetBytes += part.length;
    if (!this.storing && this.datasetBytes > MAX_IN_MEMORY_DATASET_BYTES) {
      return `the data set of a message that is not a C-STORE request is longer than the ${MAX_IN_MEMORY_DATASET_BYTES} bytes raddraft reads`;
    }
    return undefined;
  }

  private fragmentDone(): void {
    this.inValue = false;
    if (!this.isLast) return;
    if (this.isCommand) {
      this.storing = commandField(Buffer.concat(this.command)) === C_STORE_RQ;
      this.command = [];
      this.commandBytes = 0;
    }
    this.datasetBytes = 0;
  }
}
