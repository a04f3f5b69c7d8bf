import type { Bundle, Resource } from '@medplum/fhirtypes';

/** Runs a FHIR search against the test server and returns the matched resources. */
export async function search<T extends Resource>(fhirUrl: string, query: string): Promise<T[]> {
  const res = await fetch(`${fhirUrl}/${query}`);
  if (!res.ok) throw new Error(`FHIR search ${query} answered HTTP ${res.status}`);
  const bundle = (await res.json()) as Bundle<T>;
  return (bundle.entry ?? []).map((e) => e.resource!).filter(Boolean);
}

export async function create<T extends Resource>(fhirUrl: string, resource: T): Promise<T & { id: string }> {
  const res = await fetch(`${fhirUrl}/${resource.resourceType}`, {
    method: 'POST',
    headers: { 'content-type': 'application/fhir+json' },
    body: JSON.stringify(resource),
  });
  if (res.status !== 201) throw new Error(`FHIR create ${resource.resourceType} answered HTTP ${res.status}`);
  return (await res.json()) as T & { id: string };
}

/**
 * The Provenances of a report: raddraft's point at versions of it (`DiagnosticReport/<id>/_history/<n>`), so they are
 * searched for every version in its history (and the report itself, for older ones).
 */
export async function provenancesOfReport<T extends Resource>(fhirUrl: string, id: string): Promise<T[]> {
  const res = await fetch(`${fhirUrl}/DiagnosticReport/${id}/_history`);
  if (!res.ok) throw new Error(`FHIR history of DiagnosticReport/${id} answered HTTP ${res.status}`);
  const versions = ((await res.json()) as Bundle).entry?.map((e) => e.resource?.meta?.versionId).filter(Boolean) ?? [];
  const targets = [`DiagnosticReport/${id}`, ...versions.map((v) => `DiagnosticReport/${id}/_history/${v}`)];
  return (await Promise.all(targets.map((t) => search<T>(fhirUrl, `Provenance?target=${t}`)))).flat();
}
