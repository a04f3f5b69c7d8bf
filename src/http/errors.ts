import type { ErrorRequestHandler, RequestHandler } from 'express';
import { OperationOutcomeError } from '../util/operation-outcome.js';
import type { Logger } from '../log.js';

export { OperationOutcomeError, operationOutcome, type IssueCode } from '../util/operation-outcome.js';

export const notFound: RequestHandler = (req, _res, next) => {
  next(new OperationOutcomeError(404, 'not-found', `No route for ${req.method} ${req.path}`));
};

export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    let error: OperationOutcomeError;
    if (err instanceof OperationOutcomeError) error = err;
    else if (isBodyParserError(err)) error = new OperationOutcomeError(400, 'invalid', `Request body is not valid: ${err.message}`);
    else {
      log.error({ err, method: req.method, path: req.path }, 'request failed');
      error = new OperationOutcomeError(500, 'exception', 'Internal error; the raddraft log has the details');
    }
    if (req.method === 'GET' && req.path.startsWith('/review') && req.accepts(['json', 'html']) === 'html') {
      res.status(error.status).type('html').send(errorPage(error.status, error.diagnostics));
      return;
    }
    res.status(error.status).type('application/fhir+json').json(error.outcome);
  };
}

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function errorPage(status: number, message: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Error ${status} — raddraft</title>` +
    '<link rel="stylesheet" href="/review/static/review.css"></head><body><main>' +
    `<h1>${status === 404 ? 'Not found' : 'Something went wrong'}</h1><p class="message">${escape(message)}</p>` +
    '<p><a href="/review">Back to the worklist</a></p></main></body></html>';
}

function isBodyParserError(err: unknown): err is Error & { status: number } {
  return err instanceof Error && typeof (err as { status?: unknown }).status === 'number' && (err as { type?: unknown }).type !== undefined;
}
