import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { DiagnosticReport } from '@medplum/fhirtypes';
import { startFhirServer, type FhirServer } from '../../src/demo/fhir-server.js';
import { signedDraftPairs } from '../../src/eval/production.js';
import { FhirGateway } from '../../src/fhir/client.js';
import { System } from '../../src/fhir/codes.js';

jest.setTimeout(60_000);

const form = (findings: string, impression: string) => [{ contentType: 'text/plain', data: Buffer.from(`FINDINGS:\n${findings}\n\nIMPRESSION:\n${impression}`).toString('base64') }];

async function put(url: string, report: DiagnosticReport): Promise<DiagnosticReport> {
  const res = await fetch(`${url}/DiagnosticReport/${report.id}`, { method: 'PUT', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(report) });
  expect(res.status).toBeLessThan(300);
  return await res.json() as DiagnosticReport;
}

describe('eval --production reading a draft back from the report history', () => {
  let fhir: FhirServer;
  beforeAll(async () => { fhir = await startFhirServer(); });
  afterAll(async () => { await fhir.stop(); });

  it('takes the oldest unverified version as the draft, whatever the server uses for version ids', async () => {
    const created = await fetch(`${fhir.url}/DiagnosticReport`, {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+json' },
      body: JSON.stringify({
        resourceType: 'DiagnosticReport',
        status: 'partial',
        code: { text: 'XR chest' },
        identifier: [{ system: System.draftReport, value: '1.2.3.4.5_lingshu' }],
        presentedForm: form('AI draft findings.', 'AI draft impression.'),
      } satisfies DiagnosticReport),
    });
    const v1 = await created.json() as DiagnosticReport;
    // A second unverified version (an edit saved before signing) must not be taken for the AI's text.
    const v2 = await put(fhir.url, { ...v1, presentedForm: form('Edited findings.', 'Edited impression.') });
    await put(fhir.url, {
      ...v2,
      status: 'final',
      issued: new Date().toISOString(),
      meta: { ...v2.meta, tag: [{ system: System.workflow, code: 'signed' }] },
      presentedForm: form('Signed findings.', 'Signed impression.'),
    });

    const gateway = new FhirGateway({ url: fhir.url, auth: { kind: 'none' } });
    const { pairs, unmatched } = await signedDraftPairs(gateway, undefined, { since: new Date(Date.now() - 60_000), until: new Date(Date.now() + 60_000) });

    expect(unmatched).toEqual([]);
    expect(pairs).toHaveLength(1);
    expect(pairs[0]!.draft).toEqual({ findings: 'AI draft findings.', impression: 'AI draft impression.' });
    expect(pairs[0]!.final).toEqual({ findings: 'Signed findings.', impression: 'Signed impression.' });
  });
});
