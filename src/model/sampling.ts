/**
 * The consistency samples (RADDRAFT_CONSISTENCY_SAMPLES): N more replies to the same messages at a higher
 * temperature. vLLM takes `n` and decodes the N sequences in one request, encoding the images once; a server that
 * ignores `n` answers with one choice, and one that refuses it answers 400 — then the rest are asked one request each,
 * and the client remembers not to ask for `n` again. A sample that fails costs the draft nothing: the draft goes on
 * with the samples that came, and says so when there were none.
 */
export interface SampleReply {
  /** The text of each choice; empty when the request failed. */
  texts: string[];
  /** Set when the request failed: HTTP status if there was one, and a short reason. */
  failed?: { status: number | undefined; reason: string };
}

/** Sends the report messages once with these extra body fields. */
export type SampleSender = (extra: { temperature: number; n?: number }) => Promise<SampleReply>;

export interface SampleResult {
  texts: string[];
  /** Why fewer samples came than were asked for; undefined when all came. */
  shortfall: string | undefined;
}

export class Sampler {
  /** Whether the server honours `n`: unknown until it has answered once. */
  private nHonoured: boolean | undefined;

  constructor(
    readonly samples: number,
    readonly temperature: number,
  ) {}

  get usesN(): boolean | undefined {
    return this.nHonoured;
  }

  async sample(send: SampleSender): Promise<SampleResult> {
    if (this.samples <= 0) return { texts: [], shortfall: undefined };
    const texts: string[] = [];
    const problems: string[] = [];
    if (this.nHonoured !== false) {
      const reply = await send({ temperature: this.temperature, n: this.samples });
      if (reply.failed?.status === 400) this.nHonoured = false;
      else if (reply.failed) problems.push(reply.failed.reason);
      else {
        this.nHonoured = reply.texts.length >= Math.min(2, this.samples) || this.samples === 1;
        texts.push(...reply.texts.slice(0, this.samples));
      }
    }
    if (texts.length < this.samples && !problems.length) {
      const rest = await Promise.all(Array.from({ length: this.samples - texts.length }, () => send({ temperature: this.temperature })));
      for (const r of rest) {
        if (r.failed) problems.push(r.failed.reason);
        else texts.push(...r.texts.slice(0, 1));
      }
    }
    const shortfall = texts.length < this.samples ? `${texts.length} of ${this.samples} consistency samples came back (${[...new Set(problems)].join('; ') || 'fewer replies than asked'})` : undefined;
    return { texts, shortfall };
  }
}
