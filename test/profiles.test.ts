import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { validateResource } from '@medplum/core';
import type { DiagnosticReport, Resource } from '@medplum/fhirtypes';
import { PROFILES, structureDefinition } from '../fhir-profiles/build.js';
import { indexFhirDefinitions } from '../src/demo/fhir-server.js';
import fhirpath from 'fhirpath';
import r4 from 'fhirpath/fhir-context/r4';
import { exampleFiles, problemsAgainst, PROFILE_DIR } from './harness/profiles.js';
import { invariantsOf, schemaProblems, unmetInvariants } from './harness/second-validators.js';

const read = (file: string): unknown => JSON.parse(readFileSync(file, 'utf8'));

describe('fhir-profiles', () => {
  it.each(PROFILES.map((p) => p.id))('StructureDefinition-%s.json is what build.ts makes', (id) => {
    const committed = read(path.join(PROFILE_DIR, `StructureDefinition-${id}.json`));
    expect(committed).toEqual(JSON.parse(JSON.stringify(structureDefinition(PROFILES.find((p) => p.id === id)!))));
  });

  it.each(exampleFiles().map((f) => [path.basename(f), f]))('example %s validates against its profile', (_name, file) => {
    const resource = read(file) as Resource & { meta: { profile: string[] } };
    const profileId = resource.meta.profile[0]!.split('/').pop()!;
    expect(problemsAgainst(resource, profileId)).toEqual([]);
  });

  // Medplum's validator reports the first unmet invariant of an element, so each fault is tried on its own.
  const draft = read(path.join(PROFILE_DIR, 'examples', 'DiagnosticReport-raddraft-draft-report.json')) as DiagnosticReport;
  it.each([
    ['its AI label', { meta: { ...draft.meta, security: [] } }, 'Constraint rdr-1 not met: Carries the AIAST (Artificial Intelligence asserted) security label at DiagnosticReport'],
    ['its review tag', { meta: { ...draft.meta, tag: [] } }, 'Constraint rdr-7 not met: Tagged as requiring radiologist review at DiagnosticReport'],
    ['its banner', { presentedForm: [{ ...draft.presentedForm![0]!, title: 'Chest X-ray report' }] }, 'Constraint rdr-9 not met: The attached text report is titled as an AI-generated draft at DiagnosticReport'],
    ['its unverified status', { status: 'final' }, 'Constraint rdr-11 not met: Status partial (unverified) or preliminary at DiagnosticReport'],
    ['its subject', { subject: undefined }, 'Missing required property at DiagnosticReport.subject'],
    ['nothing, but names a signer', { resultsInterpreter: [{ reference: 'Practitioner/x' }] }, 'Invalid number of values: expected 0..0, but found 1 at DiagnosticReport.resultsInterpreter'],
  ])('refuses a draft that has lost %s', (_what, change, problem) => {
    const broken = JSON.parse(JSON.stringify({ ...draft, ...change })) as DiagnosticReport;
    expect(problemsAgainst(broken, 'raddraft-draft-report')).toContain(problem);
  });

  it('refuses a signed report without a signer, or still tagged for review', () => {
    const signed = read(path.join(PROFILE_DIR, 'examples', 'DiagnosticReport-raddraft-signed-report.json')) as DiagnosticReport;
    const { resultsInterpreter: _signer, ...unsigned } = signed;
    expect(problemsAgainst(unsigned as DiagnosticReport, 'raddraft-signed-report').join('\n')).toContain('Missing required property at DiagnosticReport.resultsInterpreter');
    const tagged = { ...signed, meta: { ...signed.meta, tag: [{ system: 'https://raddraft.dev/fhir/CodeSystem/workflow', code: 'review-required' }] } };
    expect(problemsAgainst(tagged, 'raddraft-signed-report').join('\n')).toContain('Constraint rsr-7 not met');
  });

  it('states in a CapabilityStatement what raddraft needs from the server, and it is valid FHIR', () => {
    indexFhirDefinitions();
    const cs = read(path.join(PROFILE_DIR, 'CapabilityStatement-raddraft.json')) as Resource;
    expect(validateResource(cs).filter((i) => i.severity === 'error')).toEqual([]);
  });
});

describe('fhir-profiles, checked by validators independent of Medplum', () => {
  const ids = PROFILES.map((p) => p.id);

  it.each(ids)('every invariant of %s is FHIRPath the fhirpath engine parses and evaluates', (id) => {
    const invariants = invariantsOf(id);
    expect(invariants.length).toBeGreaterThan(0);
    for (const inv of invariants) {
      expect({ key: inv.key, parses: (() => { try { fhirpath.compile(inv.expression, r4); return true; } catch (err) { return (err as Error).message; } })() })
        .toEqual({ key: inv.key, parses: true });
    }
  });

  it.each(exampleFiles().map((f) => [path.basename(f), f]))('example %s meets every invariant by the fhirpath engine and the FHIR R4 JSON schema', (_name, file) => {
    const resource = read(file) as Resource & { meta: { profile: string[] } };
    const profileId = resource.meta.profile[0]!.split('/').pop()!;
    expect(unmetInvariants(resource, profileId)).toEqual([]);
    expect(schemaProblems(resource)).toEqual([]);
  });

  it('finds a draft whose narrative lost its banner, and a report with a misspelt element, as broken', () => {
    const draft = read(path.join(PROFILE_DIR, 'examples', 'DiagnosticReport-raddraft-draft-report.json')) as DiagnosticReport;
    expect(unmetInvariants({ ...draft, text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Chest</div>' } }, 'raddraft-draft-report')).toEqual(['rdr-10']);
    expect(unmetInvariants({ ...draft, status: 'final' }, 'raddraft-draft-report')).toEqual(['rdr-11']);
    expect(schemaProblems({ ...draft, statuss: 'partial' } as DiagnosticReport).join('\n')).toContain('must NOT have additional properties');
  });
});
