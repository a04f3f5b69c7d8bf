/**
 * Memory a rendering thread keeps from one image to the next. A 2500 × 3000 radiograph passes through 15 MB of file
 * bytes and a few MB of intermediate pixels; fresh buffers of that size cost more CPU in page faults and garbage
 * collection than the grey-scale arithmetic on them, so a thread that renders one image at a time reuses them.
 * Each buffer grows to the largest image seen up to `keepBytes` (64 MiB: a 4,000 × 5,000 16-bit radiograph's
 * file is 40 MB); a larger image gets buffers of its own, freed after it, so that one outsized image does not leave
 * its thread holding hundreds of megabytes.
 */
export class RenderScratch {
  private input = Buffer.alloc(0);
  private words = new Uint16Array(0);
  private bytes = new Uint8Array(0);

  constructor(private readonly keepBytes = 64 * 2 ** 20) {}

  /** `size` bytes to read a file into; valid until the next call. */
  fileBytes(size: number): Buffer {
    if (size > this.keepBytes) return Buffer.allocUnsafe(size);
    if (this.input.length < size) this.input = Buffer.allocUnsafe(size);
    return this.input.subarray(0, size);
  }

  /** `n` 16-bit words, contents undefined; valid until the next call. */
  uint16(n: number): Uint16Array {
    if (2 * n > this.keepBytes) return new Uint16Array(n);
    if (this.words.length < n) this.words = new Uint16Array(n);
    return this.words.subarray(0, n);
  }

  /** `n` bytes, contents undefined; valid until the next call. */
  uint8(n: number): Uint8Array {
    if (n > this.keepBytes) return new Uint8Array(n);
    if (this.bytes.length < n) this.bytes = new Uint8Array(n);
    return this.bytes.subarray(0, n);
  }
}
