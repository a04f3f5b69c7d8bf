// The parts of the OpenJPEG and OpenJPH WebAssembly builds raddraft uses; the packages ship no type declarations.
// Both are Emscripten modules: a factory that resolves to the module once its WebAssembly is compiled.
interface EmscriptenCodecOptions {
  print?: (text: string) => void;
  printErr?: (text: string) => void;
}

/** One decoder; its buffers live in the module's WebAssembly memory until delete(). */
interface WasmJ2kDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  decode(): void;
  /** OpenJPEG takes (reduce factor, quality layers with 0 for all); OpenJPH the number of resolutions skipped. */
  decodeSubResolution(level: number, layer?: number): void;
  getFrameInfo(): { width: number; height: number; bitsPerSample: number; componentCount: number; isSigned: boolean };
  delete(): void;
}

declare module '@cornerstonejs/codec-openjpeg/decodewasmjs' {
  const factory: (options?: EmscriptenCodecOptions) => Promise<{ J2KDecoder: new () => WasmJ2kDecoder }>;
  export default factory;
}

declare module '@cornerstonejs/codec-openjph' {
  const factory: (options?: EmscriptenCodecOptions) => Promise<{ HTJ2KDecoder: new () => WasmJ2kDecoder }>;
  export default factory;
}
