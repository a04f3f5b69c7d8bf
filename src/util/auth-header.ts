import type { HttpAuth } from '../config/load.js';

/** The Authorization header for configured credentials, or nothing. */
export function authorizationHeader(auth: HttpAuth): Record<string, string> {
  switch (auth.kind) {
    case 'basic':
      return { authorization: `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}` };
    case 'bearer':
      return { authorization: `Bearer ${auth.token}` };
    case 'none':
      return {};
  }
}
