/**
 * The revision of the served model, as the server states it: vLLM lists each served model in `GET /v1/models` with
 * `root`, the weights it was loaded from (a Hugging Face name, or a local snapshot path whose last part is the
 * commit). Asked once per model and kept for a while, since it changes only when the server is restarted.
 */
const KEEP_MS = 10 * 60_000;
const TIMEOUT_MS = 5_000;

const known = new Map<string, { revision: string | undefined; at: number }>();

function rootOf(body: unknown, model: string): string | undefined {
  const data = (body as { data?: unknown })?.data;
  if (!Array.isArray(data)) return undefined;
  const entry: unknown = data.find((m: unknown) => (m as { id?: unknown })?.id === model);
  const root = (entry as { root?: unknown } | undefined)?.root;
  return typeof root === 'string' && root.length > 0 && root.length <= 512 ? root : undefined;
}

export async function modelRevision(endpoint: string, model: string, apiKey?: string): Promise<string | undefined> {
  const cacheKey = `${endpoint} ${model}`;
  const hit = known.get(cacheKey);
  if (hit && Date.now() - hit.at < KEEP_MS) return hit.revision;
  let revision: string | undefined;
  try {
    const res = await fetch(`${endpoint.replace(/\/+$/, '')}/models`, {
      signal: AbortSignal.timeout(TIMEOUT_MS),
      headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {},
    });
    revision = res.ok ? rootOf(await res.json(), model) : undefined;
  } catch {
    // The model server not answering leaves the revision unstated; the report is not held back for it.
    revision = undefined;
  }
  known.set(cacheKey, { revision, at: Date.now() });
  return revision;
}
