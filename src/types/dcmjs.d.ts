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

  /** A coded concept (Code Sequence item) as dcmjs's SR classes build it. */
  export class CodedConcept {
    constructor(options: { value: string; meaning: string; schemeDesignator: string; schemeVersion?: string });
    readonly CodeValue: string;
    readonly CodeMeaning: string;
    readonly CodingSchemeDesignator: string;
  }

  /** A naturalised SR content item (ConceptNameCodeSequence, ValueType, RelationshipType and the value). */
  export type ContentItem = Record<string, unknown>;

  interface ItemOptions<V> {
    name: CodedConcept;
    relationshipType?: string;
    value: V;
  }

  interface SrStatics {
    coding: { CodedConcept: typeof CodedConcept };
    valueTypes: {
      TextContentItem: new (options: ItemOptions<string>) => ContentItem;
      CodeContentItem: new (options: ItemOptions<CodedConcept>) => ContentItem;
      UIDRefContentItem: new (options: ItemOptions<string>) => ContentItem;
      ContainerContentItem: new (options: { name: CodedConcept; relationshipType?: string; templateID?: string; isContentContinuous?: boolean }) => ContentItem;
      CompositeContentItem: new (options: { name: CodedConcept; relationshipType?: string; referencedSOPClassUID: string; referencedSOPInstanceUID: string }) => ContentItem;
      RelationshipTypes: Record<'CONTAINS' | 'HAS_ACQ_CONTENT' | 'HAS_CONCEPT_MOD' | 'HAS_OBS_CONTEXT' | 'HAS_PROPERTIES' | 'INFERRED_FROM' | 'SELECTED_FROM', string>;
    };
    templates: {
      /** TID 4019; an array of content items. */
      AlgorithmIdentification: new (options: { name: string; version: string; parameters?: string[] }) => ContentItem[];
      /** TID 1204; an array of content items. */
      LanguageOfContentItemAndDescendants: new (options: { language?: CodedConcept }) => ContentItem[];
    };
  }

  const dcmjs: {
    sr: SrStatics;
    data: {
      DicomMessage: DicomMessageStatics;
      DicomDict: typeof DicomDict;
      DicomMetaDictionary: DicomMetaDictionaryStatics;
    };
    log: { setLevel(level: string): void; level?: unknown };
  };
  export default dcmjs;
}
