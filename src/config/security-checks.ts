/**
 * Start-up checks of the settings that guard who may sign: each returns problems in the same one-line form as the
 * schema's, naming the setting and what to set instead. Values of secrets are never echoed.
 */

const GENERATE = 'generate one with: openssl rand -base64 32';

/** Words that mark a value copied from documentation or a sample file rather than generated. */
const PLACEHOLDER_WORDS = ['change', 'example', 'secret', 'placeholder', 'replace', 'your-', 'xxxx', 'password', 'default'];

/**
 * Why a shared secret is unusable, or undefined. A known or guessable key lets anyone seal a session cookie (and
 * sign as any Practitioner), so a short key or one that reads like a placeholder stops start-up.
 */
export function weakSecretProblem(name: string, value: string): string | undefined {
  if (value.length < 32) return `${name} is too short (${value.length} characters; at least 32 are needed); ${GENERATE}`;
  const lower = value.toLowerCase();
  if (PLACEHOLDER_WORDS.some((w) => lower.includes(w)) || new Set(value).size < 12) {
    return `${name} looks like a placeholder, not a random secret (anyone who knows it could forge review sessions); ${GENERATE}`;
  }
  return undefined;
}

type Raw = Record<string, string | number>;

/** Problems with sign-in settings that only show when several are read together. */
export function signInProblems(raw: Raw): string[] {
  const problems: string[] = [];
  for (const name of ['RADDRAFT_SESSION_SECRET', 'RADDRAFT_API_TOKEN']) {
    const value = raw[name];
    const problem = typeof value === 'string' ? weakSecretProblem(name, value) : undefined;
    if (problem) problems.push(problem);
  }
  if (raw.RADDRAFT_AUTH_ISSUER === undefined) return problems;
  if (raw.RADDRAFT_AUTH_AUDIENCE === undefined && raw.RADDRAFT_AUTH_CLIENT_ID === undefined) {
    problems.push('RADDRAFT_AUTH_AUDIENCE is missing: with RADDRAFT_AUTH_ISSUER set, tokens are accepted only for raddraft\'s audience; set the audience your identity provider puts in raddraft\'s tokens, for example RADDRAFT_AUTH_AUDIENCE=raddraft (or set RADDRAFT_AUTH_CLIENT_ID, which is then the audience)');
  }
  if (raw.RADDRAFT_AUTH_SIGNER_ROLE === undefined && raw.RADDRAFT_AUTH_SIGNERS === undefined) {
    problems.push('RADDRAFT_AUTH_SIGNER_ROLE or RADDRAFT_AUTH_SIGNERS is missing: with RADDRAFT_AUTH_ISSUER set, raddraft must know who of the identity provider\'s users may sign; for example RADDRAFT_AUTH_SIGNER_ROLE=radiologist (a value the token carries in its roles claim or scope) or RADDRAFT_AUTH_SIGNERS=Practitioner/123,Practitioner/456');
  }
  return problems;
}
