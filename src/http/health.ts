import type { Request, Response } from 'express';

export interface Probe {
  name: string;
  check: () => Promise<void>;
}

export interface ProbeResult {
  name: string;
  ok: boolean;
  detail?: string;
  checkedAt: string;
}

/**
 * Readiness: the job store answers now, and each endpoint answered within the cache window. Endpoint probes are
 * cached so that a load balancer polling /readyz does not turn into load on the PACS, FHIR server or model.
 */
export class Readiness {
  private cache: { at: number; results: ProbeResult[] } | undefined;
  private inFlight: Promise<ProbeResult[]> | undefined;

  constructor(
    private readonly store: Probe,
    private readonly endpoints: Probe[],
    private readonly cacheMs = 15_000,
  ) {}

  private async run(p: Probe): Promise<ProbeResult> {
    try {
      await p.check();
      return { name: p.name, ok: true, checkedAt: new Date().toISOString() };
    } catch (err) {
      return { name: p.name, ok: false, detail: (err as Error).message, checkedAt: new Date().toISOString() };
    }
  }

  private async endpointResults(): Promise<ProbeResult[]> {
    if (this.cache && Date.now() - this.cache.at < this.cacheMs) return this.cache.results;
    this.inFlight ??= Promise.all(this.endpoints.map((p) => this.run(p))).then((results) => {
      this.cache = { at: Date.now(), results };
      this.inFlight = undefined;
      return results;
    });
    return this.inFlight;
  }

  async check(): Promise<{ ready: boolean; checks: ProbeResult[] }> {
    const checks = [await this.run(this.store), ...(await this.endpointResults())];
    return { ready: checks.every((c) => c.ok), checks };
  }
}

export function healthz(_req: Request, res: Response): void {
  res.json({ status: 'alive' });
}

export function readyz(readiness: Readiness) {
  return async (_req: Request, res: Response): Promise<void> => {
    const result = await readiness.check();
    res.status(result.ready ? 200 : 503).json({ status: result.ready ? 'ready' : 'not ready', checks: result.checks });
  };
}
