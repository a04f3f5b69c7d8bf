import type { ReportOutput } from '../report/output.js';
import { dicomSrOutput, type DicomSrOutputDeps } from './dicom-sr.js';
import { fhirOutput, type FhirOutputDeps } from './fhir.js';
import { hl7Output, type Hl7OutputDeps } from './hl7.js';

/** What any output may need; each takes what it uses. */
export type OutputDeps = FhirOutputDeps & Hl7OutputDeps & DicomSrOutputDeps;

export type OutputFactory = (deps: OutputDeps) => ReportOutput;

/** The outputs RADDRAFT_OUTPUTS may name. A new output is one file and one line here. */
const OUTPUTS = new Map<string, OutputFactory>([
  ['fhir', fhirOutput],
  ['dicom-sr', dicomSrOutput],
  ['hl7', hl7Output],
]);

/** Adds an output from outside the registry (a site's own integration loaded with `node --import`). */
export function registerOutput(name: string, factory: OutputFactory): void {
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(name)) throw new Error(`output name "${name}" must be lower-case letters, digits and dashes`);
  OUTPUTS.set(name, factory);
}

export function knownOutputs(): string[] {
  return [...OUTPUTS.keys()];
}

/** The configured outputs by name; an unknown name is refused with the names that exist. */
export function createOutputs(names: readonly string[], deps: OutputDeps): Map<string, ReportOutput> {
  const out = new Map<string, ReportOutput>();
  for (const name of names) {
    const factory = OUTPUTS.get(name);
    if (!factory) throw new Error(`RADDRAFT_OUTPUTS names "${name}", which is not an output of this raddraft; use a comma list of ${knownOutputs().join(', ')}, for example RADDRAFT_OUTPUTS=fhir`);
    out.set(name, factory(deps));
  }
  return out;
}
