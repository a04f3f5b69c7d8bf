// The parts of dcmjs raddraft uses; dcmjs ships no type declarations.
declare module 'dcmjs' {
  export interface DicomElement {
    vr: string;
    Value?: unknown[];
    InlineBinary?: string;
    BulkDataURI?: string;
  }
  export type DicomDataset = Record<string, DicomElement>;

  export interface ReadOptions {
    ignoreErrors?: boolean;
    untilTag?: string;
    includeUntilTagValue?: boolean;
    noCopy?: boolean;
    forceStoreRaw?: boolean;
  }

  class DicomDict {
    constructor(meta: DicomDataset);
    meta: DicomDataset;
    dict: DicomDataset;
    write(options?: { allowInvalidVRLength?: boolean; fragmentMultiframe?: boolean }): ArrayBuffer;
  }

  interface DicomMessageStatics {
    readFile(buffer: ArrayBuffer, options?: ReadOptions): DicomDict;
  }

  interface DicomMetaDictionaryStatics {
    naturalizeDataset(dataset: DicomDataset): Record<string, unknown>;
    denaturalizeDataset(dataset: Record<string, unknown>): DicomDataset;
    uid(): string;
    date(): string;
    time(): string;
  }

  const dcmjs: {
    data: {
      DicomMessage: DicomMessageStatics;
      DicomDict: typeof DicomDict;
      DicomMetaDictionary: DicomMetaDictionaryStatics;
    };
    log: { setLevel(level: string): void; level?: unknown };
  };
  export default dcmjs;
}
