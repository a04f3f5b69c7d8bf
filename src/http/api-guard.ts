import type { Request } from 'express';

/** Decides whether a request may use the job API; throws an OperationOutcomeError (401/403) when not. */
export type ApiGuard = (req: Request, change: boolean) => Promise<void>;
