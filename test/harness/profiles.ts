import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { validateResource } from '@medplum/core';
import type { Resource, StructureDefinition } from '@medplum/fhirtypes';
import { indexFhirDefinitions } from '../../src/demo/fhir-server.js';
import { ROOT } from './peers.js';

export const PROFILE_DIR = path.join(ROOT, 'fhir-profiles');

export function loadProfile(id: string): StructureDefinition {
  return JSON.parse(readFileSync(path.join(PROFILE_DIR, `StructureDefinition-${id}.json`), 'utf8')) as StructureDefinition;
}

export function exampleFiles(): string[] {
  return readdirSync(path.join(PROFILE_DIR, 'examples')).filter((f) => f.endsWith('.json')).map((f) => path.join(PROFILE_DIR, 'examples', f));
}

/** The problems Medplum's validator finds in a resource against one of raddraft's profiles (empty when valid). */
export function problemsAgainst(resource: Resource, profileId: string): string[] {
  indexFhirDefinitions();
  try {
    const issues = validateResource(resource, { profile: loadProfile(profileId) });
    return issues.filter((i) => i.severity === 'error').map((i) => `${i.details?.text ?? i.diagnostics ?? 'issue'} at ${i.expression?.join(', ') ?? '?'}`);
  } catch (err) {
    const outcome = (err as { outcome?: { issue?: { details?: { text?: string }; expression?: string[] }[] } }).outcome;
    if (!outcome?.issue) throw err;
    return outcome.issue.map((i) => `${i.details?.text ?? 'issue'} at ${i.expression?.join(', ') ?? '?'}`);
  }
}
