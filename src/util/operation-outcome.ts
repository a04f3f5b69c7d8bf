import type { OperationOutcome } from '@medplum/fhirtypes';
import type { Fault, FaultKind } from './faults.js';

export type IssueCode = 'invalid' | 'not-found' | 'conflict' | 'exception' | 'processing' | 'security' | 'transient' | 'required';

/** The one error model of the HTTP layer: a FHIR OperationOutcome and the status it maps to. */
export class OperationOutcomeError extends Error implements Fault {
  constructor(
    readonly status: number,
    readonly code: IssueCode,
    readonly diagnostics: string,
    readonly expression?: string,
  ) {
    super(diagnostics);
    this.name = 'OperationOutcomeError';
  }

  /** As a fault of a job or delivery: a server-side or throttling answer passes, anything else will not. */
  get fault(): FaultKind {
    if (this.status === 429 || this.status === 503) return 'wait';
    return this.status >= 500 ? 'retry' : 'permanent';
  }

  get outcome(): OperationOutcome {
    return operationOutcome(this.code, this.diagnostics, this.status >= 500 ? 'error' : 'error', this.expression);
  }
}

export function operationOutcome(
  code: IssueCode,
  diagnostics: string,
  severity: 'error' | 'warning' | 'information' = 'error',
  expression?: string,
): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: [{ severity, code, diagnostics, ...(expression ? { expression: [expression] } : {}) }],
  };
}
