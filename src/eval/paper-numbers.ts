/**
 * Lingshu's published report-generation results, for orientation beside a site's own figures: Table 8 of
 * "Lingshu: A Generalist Foundation Model for Unified Multimodal Medical Understanding and Reasoning" (LASA Team,
 * arXiv:2506.07044v4, 2025), repeated in the Lingshu-7B model card. Scores are ×100; RadCliQ is its reciprocal
 * (100 / RadCliQ-v1, higher is better). RaTE, SembScore and RadCliQ need neural models (see scorer-hook.ts).
 * The paper reports no BLEU.
 */
export interface PaperRow {
  model: 'Lingshu-7B' | 'Lingshu-32B';
  dataset: 'MIMIC-CXR' | 'CheXpert Plus' | 'IU-Xray';
  rougeL: number;
  cider: number;
  rate: number;
  sembScore: number;
  radCliQInverse: number;
}

export const PAPER_SOURCE = 'Lingshu (arXiv:2506.07044v4), Table 8; scores ×100, RadCliQ as 100/RadCliQ-v1';

export const PAPER_ROWS: readonly PaperRow[] = [
  { model: 'Lingshu-7B', dataset: 'MIMIC-CXR', rougeL: 30.8, cider: 109.4, rate: 52.1, sembScore: 30.0, radCliQInverse: 69.2 },
  { model: 'Lingshu-7B', dataset: 'CheXpert Plus', rougeL: 26.5, cider: 79.0, rate: 45.4, sembScore: 26.8, radCliQInverse: 47.3 },
  { model: 'Lingshu-7B', dataset: 'IU-Xray', rougeL: 41.2, cider: 180.7, rate: 57.6, sembScore: 48.4, radCliQInverse: 108.1 },
  { model: 'Lingshu-32B', dataset: 'MIMIC-CXR', rougeL: 28.8, cider: 96.4, rate: 50.8, sembScore: 30.1, radCliQInverse: 67.1 },
  { model: 'Lingshu-32B', dataset: 'CheXpert Plus', rougeL: 25.3, cider: 75.9, rate: 43.4, sembScore: 24.2, radCliQInverse: 47.1 },
  { model: 'Lingshu-32B', dataset: 'IU-Xray', rougeL: 42.8, cider: 189.2, rate: 63.5, sembScore: 54.6, radCliQInverse: 130.4 },
];
