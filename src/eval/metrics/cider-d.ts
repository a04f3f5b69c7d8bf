/**
 * CIDEr-D (Vedantam et al. 2015) as pycocoevalcap computes it (pycocoevalcap/cider/cider_scorer.py, the metric
 * COCO caption evaluation reports as "CIDEr"; the same as cidereval's ciderD with df="corpus"): n-grams 1..4,
 * TF-IDF weights with document frequencies from the reference set, cosine per n with the hypothesis counts clipped
 * to the reference's, a Gaussian length penalty (σ = 6), the mean over n, averaged over references, ×10.
 *
 * Plain CIDEr as cidereval computes it (cidereval/cider/cider_scorer.py, what its `cider()` returns and MedEvalKit
 * reports as "CIDEr"): the same TF-IDF vectors and cosine, with neither the clipping nor the length penalty.
 */

type Vector = Map<string, number>;

interface Cooked {
  counts: Map<string, number>[];
}

/** Document frequencies from the references of the set: an n-gram counts once per item, whatever its references. */
function setFrequencies(refs: readonly Cooked[][]): DocumentFrequencies {
  const df = new Map<string, number>();
  for (const rs of refs) {
    const seen = new Set<string>();
    for (const r of rs) for (const m of r.counts) for (const g of m.keys()) seen.add(g);
    for (const g of seen) df.set(g, (df.get(g) ?? 0) + 1);
  }
  return { df, refLen: Math.log(refs.length) };
}

function cook(tokens: readonly string[], n: number): Cooked {
  const counts: Map<string, number>[] = [];
  for (let k = 1; k <= n; k++) {
    const m = new Map<string, number>();
    for (let i = 0; i + k <= tokens.length; i++) {
      const key = tokens.slice(i, i + k).join(' ');
      m.set(key, (m.get(key) ?? 0) + 1);
    }
    counts.push(m);
  }
  return { counts };
}

/** Document frequencies from elsewhere (cidereval's df files): log of the number of documents, and df per n-gram. */
export interface DocumentFrequencies {
  refLen: number;
  df: ReadonlyMap<string, number>;
}

export interface CiderOptions {
  n?: number;
  sigma?: number;
  /** Unset: from the references of the set scored. */
  documentFrequencies?: DocumentFrequencies;
}

/**
 * CIDEr-D of each hypothesis against its references, all given as tokens. Returns the corpus score (the mean) and
 * the per-item scores. Document frequencies come from the references of all items, so the score of one item
 * depends on the whole set, as in pycocoevalcap.
 */
export function ciderD(hypotheses: readonly (readonly string[])[], references: readonly (readonly (readonly string[])[])[], options: CiderOptions = {}): { score: number; scores: number[] } {
  return ciderScores(hypotheses, references, options, true);
}

/** Plain CIDEr (cidereval's Cider): no clipping, no length penalty; document frequencies as for CIDEr-D. */
export function cider(hypotheses: readonly (readonly string[])[], references: readonly (readonly (readonly string[])[])[], options: CiderOptions = {}): { score: number; scores: number[] } {
  return ciderScores(hypotheses, references, options, false);
}

function ciderScores(hypotheses: readonly (readonly string[])[], references: readonly (readonly (readonly string[])[])[], options: CiderOptions, variantD: boolean): { score: number; scores: number[] } {
  const n = options.n ?? 4;
  const sigma = options.sigma ?? 6;
  if (hypotheses.length !== references.length) throw new RangeError('CIDEr needs one reference list per hypothesis');
  const hyps = hypotheses.map((h) => cook(h, n));
  const refs = references.map((rs) => rs.map((r) => cook(r, n)));
  const { df, refLen } = options.documentFrequencies ?? setFrequencies(refs);

  // pycocoevalcap's counts2vec: tf × (log N − log max(1, df)); its "length" counts bigrams (index n = 1).
  const toVec = (c: Cooked): { vec: Vector[]; norm: number[]; length: number } => {
    const vec: Vector[] = [];
    const norm: number[] = [];
    for (let k = 0; k < n; k++) {
      const v: Vector = new Map();
      let sq = 0;
      for (const [g, tf] of c.counts[k]!) {
        const w = tf * (refLen - Math.log(Math.max(1, df.get(g) ?? 0)));
        v.set(g, w);
        sq += w * w;
      }
      vec.push(v);
      norm.push(Math.sqrt(sq));
    }
    let length = 0;
    if (n > 1) for (const tf of c.counts[1]!.values()) length += tf;
    return { vec, norm, length };
  };

  const sim = (h: ReturnType<typeof toVec>, r: ReturnType<typeof toVec>): number[] => {
    const delta = h.length - r.length;
    const penalty = variantD ? Math.exp(-(delta * delta) / (2 * sigma * sigma)) : 1;
    const out: number[] = [];
    for (let k = 0; k < n; k++) {
      let val = 0;
      for (const [g, w] of h.vec[k]!) {
        const rw = r.vec[k]!.get(g) ?? 0;
        val += (variantD ? Math.min(w, rw) : w) * rw;
      }
      if (h.norm[k] !== 0 && r.norm[k] !== 0) val /= h.norm[k]! * r.norm[k]!;
      out.push(val * penalty);
    }
    return out;
  };

  const scores = hyps.map((hc, i) => {
    const h = toVec(hc);
    const sum = new Array<number>(n).fill(0);
    for (const rc of refs[i]!) {
      const s = sim(h, toVec(rc));
      for (let k = 0; k < n; k++) sum[k]! += s[k]!;
    }
    const mean = sum.reduce((a, b) => a + b, 0) / n;
    return (mean / refs[i]!.length) * 10;
  });
  const score = scores.length ? scores.reduce((a, b) => a + b, 0) / scores.length : 0;
  return { score, scores };
}
