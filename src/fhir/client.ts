import { Client } from 'fhir-kit-client';
import { httpFault, type Fault, type FaultKind } from '../util/faults.js';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import type { Config } from '../config/load.js';
import { SmartTokenSource } from './smart.js';
import { networkCause } from '../util/network-cause.js';

/**
 * A FHIR request that failed. The message names the interaction and resource type, the HTTP status and the server's
 * issue codes — never the request URL, which can carry a patient identifier in its search parameters.
 */
export class FhirError extends Error implements Fault {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'FhirError';
  }

  /** No answer at all (the FHIR server is down or out of reach) or HTTP 429: jobs and deliveries wait. */
  get fault(): FaultKind {
    return httpFault(this.status, this.status === undefined || this.retryable);
  }
}

function outcomeSummary(data: unknown): string {
  let body = data;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      return '';
    }
  }
  const issues = (body as { issue?: unknown })?.issue;
  if (!Array.isArray(issues)) return '';
  const parts = issues.slice(0, 3).map((i: { code?: unknown; diagnostics?: unknown; details?: { text?: unknown } }) => {
    const text = typeof i.diagnostics === 'string' ? i.diagnostics : typeof i.details?.text === 'string' ? i.details.text : '';
    return `${typeof i.code === 'string' ? i.code : 'issue'}${text ? `: ${text.slice(0, 200)}` : ''}`;
  });
  return parts.length ? ` (${parts.join('; ')})` : '';
}

function toFhirError(err: unknown, what: string, base: string): FhirError {
  const response = (err as { response?: { status?: unknown; data?: unknown } }).response;
  const status = typeof response?.status === 'number' ? response.status : undefined;
  if (status === undefined) {
    return new FhirError(`${what}: cannot reach the FHIR server at ${base} (${networkCause(err)})`, undefined, true);
  }
  const hint =
    status === 401 || status === 403 ? '; check RADDRAFT_FHIR_AUTH' :
    status === 412 ? '; the resource changed since it was read' : '';
  return new FhirError(`${what}: the FHIR server answered HTTP ${status}${outcomeSummary(response?.data)}${hint}`, status, status === 429 || status >= 500);
}

export interface FhirGatewayOptions {
  timeoutMs?: number;
}

/** raddraft's one way to the FHIR server: fhir-kit-client with credentials, timeouts and PHI-free errors. */
export class FhirGateway {
  private readonly client: Client;
  private readonly timeoutMs: number;
  private readonly smart: SmartTokenSource | undefined;

  constructor(
    private readonly config: Config['fhir'],
    options: FhirGatewayOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.client = new Client({ baseUrl: config.url });
    if (config.auth.kind === 'bearer') this.client.bearerToken = config.auth.token;
    this.smart = config.auth.kind === 'smart' ? new SmartTokenSource(config.auth) : undefined;
  }

  get baseUrl(): string {
    return this.config.url;
  }

  private async call<T>(what: string, fn: (options: { signal: AbortSignal; headers: Record<string, string> }) => Promise<unknown>, headers: Record<string, string> = {}): Promise<T> {
    if (this.smart) this.client.bearerToken = await this.smart.token();
    try {
      return (await fn({ signal: AbortSignal.timeout(this.timeoutMs), headers })) as T;
    } catch (err) {
      throw toFhirError(err, what, this.config.url);
    }
  }

  /** Search returning the matched resources of the first page (raddraft's searches expect few). */
  async search<T extends Resource>(resourceType: T['resourceType'], searchParams: Record<string, string>): Promise<T[]> {
    const bundle = await this.call<Bundle>(`search ${resourceType}`, (options) =>
      this.client.search({ resourceType, searchParams, options }),
    );
    return (bundle.entry ?? [])
      .filter((e) => e.search?.mode !== 'include' && e.search?.mode !== 'outcome')
      .map((e) => e.resource)
      .filter((r): r is T => r?.resourceType === resourceType);
  }

  /** Every match, following the server's `next` links, up to `max` resources. */
  async searchAll<T extends Resource>(resourceType: T['resourceType'], searchParams: Record<string, string>, max = 10_000): Promise<T[]> {
    const out: T[] = [];
    let bundle: Bundle | undefined = await this.call<Bundle>(`search ${resourceType}`, (options) =>
      this.client.search({ resourceType, searchParams: { _count: '100', ...searchParams }, options }),
    );
    while (bundle) {
      for (const e of bundle.entry ?? []) {
        if (e.search?.mode !== 'include' && e.search?.mode !== 'outcome' && e.resource?.resourceType === resourceType) out.push(e.resource as T);
      }
      const page: Bundle = bundle;
      if (out.length >= max || !page.link?.some((l) => l.relation === 'next')) break;
      bundle = await this.call<Bundle | undefined>(`search ${resourceType} (next page)`, (options) =>
        this.client.nextPage({ bundle: page as unknown as Parameters<Client['nextPage']>[0]['bundle'], options }) ?? Promise.resolve(undefined),
      );
    }
    return out.slice(0, max);
  }

  /** The versions of one resource, newest first, as the server keeps them. */
  async history<T extends Resource>(resourceType: T['resourceType'], id: string): Promise<T[]> {
    const bundle = await this.call<Bundle>(`history ${resourceType}`, (options) => this.client.history({ resourceType, id, options }));
    return (bundle.entry ?? []).map((e) => e.resource).filter((r): r is T => r?.resourceType === resourceType);
  }

  async read<T extends Resource>(resourceType: T['resourceType'], id: string): Promise<T> {
    return this.call<T>(`read ${resourceType}`, (options) => this.client.read({ resourceType, id, options }));
  }

  async transaction(bundle: Bundle): Promise<Bundle> {
    return this.call<Bundle>('transaction', (options) =>
      this.client.transaction({ body: bundle as unknown as Record<string, unknown> & { resourceType: string }, options }),
    );
  }

  /** Update by id; with `version`, only if the server still holds that version (If-Match), else HTTP 412. */
  async update<T extends Resource & { id: string }>(resource: T, version?: string): Promise<T> {
    const headers: Record<string, string> = version ? { 'If-Match': `W/"${version}"` } : {};
    return this.call<T>(`update ${resource.resourceType}`, (options) =>
      this.client.update({ resourceType: resource.resourceType, id: resource.id, body: resource as unknown as Record<string, unknown> & { resourceType: string }, options: { ...options, headers } }),
    );
  }

  /** Conditional create: creates the resource unless one matches `ifNoneExist` (a search query). */
  async createIfNoneExist<T extends Resource>(resource: T, ifNoneExist: string): Promise<T> {
    return this.call<T>(`create ${resource.resourceType}`, (options) =>
      this.client.create({ resourceType: resource.resourceType, body: resource as unknown as Record<string, unknown> & { resourceType: string }, options: { ...options, headers: { 'If-None-Exist': ifNoneExist } } }),
    );
  }

  async capabilityStatement(): Promise<Resource> {
    return this.call<Resource>('read CapabilityStatement', (options) => this.client.capabilityStatement(options));
  }
}
