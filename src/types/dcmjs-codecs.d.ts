// The parts of dcmjs-codecs raddraft uses (its own declarations are CommonJS-only and not importable under NodeNext).
declare module 'dcmjs-codecs' {
  export interface CodecContextAttrs {
    width?: number;
    height?: number;
    bitsAllocated?: number;
    bitsStored?: number;
    samplesPerPixel?: number;
    pixelRepresentation?: number;
    planarConfiguration?: number;
    photometricInterpretation?: string;
    encodedBuffer?: Uint8Array;
  }
  export class Context {
    constructor(attrs?: CodecContextAttrs);
    getDecodedBuffer(): Uint8Array | undefined;
    getPhotometricInterpretation(): string | undefined;
    getPlanarConfiguration(): number | undefined;
  }
  export interface NativeCodecsStatics {
    initializeAsync(opts?: { webAssemblyModulePathOrUrl?: string; logCodecsInfo?: boolean; logCodecsTrace?: boolean }): Promise<void>;
    isInitialized(): boolean;
    decodeRle(context: Context, parameters?: Record<string, unknown>): Context;
    decodeJpeg(context: Context, parameters?: { convertColorspaceToRgb?: boolean }): Context;
    decodeJpegLs(context: Context, parameters?: Record<string, unknown>): Context;
    decodeJpeg2000(context: Context, parameters?: Record<string, unknown>): Context;
    decodeHtJpeg2000(context: Context, parameters?: Record<string, unknown>): Context;
  }
  export class Transcoder {
    constructor(buffer: ArrayBuffer);
    transcode(transferSyntaxUid: string, parameters?: Record<string, unknown>): void;
    getDicomPart10(): ArrayBuffer;
  }
  const codecs: {
    NativeCodecs: NativeCodecsStatics;
    Context: typeof Context;
    Transcoder: typeof Transcoder;
    constants: { TransferSyntax: Record<string, string> };
  };
  export default codecs;
}
