import type { JWTPayload } from 'jose';

/** Who of the identity provider's users may sign: RADDRAFT_AUTH_SIGNER_ROLE and/or RADDRAFT_AUTH_SIGNERS. */
export interface SignerPolicy {
  readonly signerRole: string | undefined;
  readonly roleClaim: string;
  readonly signers: readonly string[] | undefined;
}

function at(claims: JWTPayload, dotted: string): unknown {
  let node: unknown = claims;
  for (const key of dotted.split('.')) {
    if (!node || typeof node !== 'object' || !Object.hasOwn(node, key)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

function words(value: unknown): string[] {
  if (typeof value === 'string') return value.split(/\s+/).filter(Boolean);
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return [];
}

/** The roles a token carries: the configured claim (an array or a space-separated string), scope and scp. */
export function rolesOf(claims: JWTPayload, roleClaim: string): Set<string> {
  return new Set([...words(at(claims, roleClaim)), ...words(claims.scope), ...words(claims.scp)]);
}

/** Why the Practitioner is not on the allow-list, or undefined. Re-checked on every change made with a session. */
export function listProblem(policy: SignerPolicy, practitioner: string): string | undefined {
  if (policy.signers && !policy.signers.includes(practitioner)) {
    return `${practitioner} is not among the Practitioners allowed to sign here (RADDRAFT_AUTH_SIGNERS); ask the raddraft administrator`;
  }
  return undefined;
}

/** Why the token's holder may not sign or see the job API, or undefined when they may. */
export function signerProblem(policy: SignerPolicy, claims: JWTPayload, practitioner: string): string | undefined {
  if (policy.signerRole && !rolesOf(claims, policy.roleClaim).has(policy.signerRole)) {
    return `your sign-in token does not carry the role "${policy.signerRole}" that signing needs (in its "${policy.roleClaim}" claim or scope; RADDRAFT_AUTH_SIGNER_ROLE); ask the identity administrator`;
  }
  return listProblem(policy, practitioner);
}
