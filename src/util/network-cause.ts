/** A short reason for a request that never got an answer: the socket error code (ECONNREFUSED, ENOTFOUND, ...). */
export function networkCause(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown; errors?: { code?: unknown }[] } }).cause;
  if (typeof cause?.code === 'string') return cause.code;
  const own = (err as { code?: unknown }).code;
  if (typeof own === 'string' && /^E[A-Z]+$/.test(own)) return own;
  const inner = cause?.errors?.find((e) => typeof e.code === 'string')?.code;
  if (typeof inner === 'string') return inner;
  if (err instanceof Error && err.name === 'TimeoutError') return 'timed out';
  if (typeof cause?.message === 'string') return cause.message;
  return err instanceof Error ? err.message : String(err);
}
