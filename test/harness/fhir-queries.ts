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
