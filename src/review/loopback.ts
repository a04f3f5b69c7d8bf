import type { Request } from 'express';

/** The names under which a browser on this machine reaches a loopback address. */
const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]']);

export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address;
  return v4 === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

export function isLoopback(req: Request): boolean {
  return isLoopbackAddress(req.socket.remoteAddress);
}

/** Shown in refusals: what was asked for, cut short and stripped of anything but printable ASCII. */
function quoted(value: string): string {
  return JSON.stringify(value.replace(/[^ -~]/g, '?').slice(0, 80));
}

function loopbackAuthority(authority: string, port: number, scheme: string): boolean {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(authority.toLowerCase());
  if (!m || !LOOPBACK_NAMES.has(m[1]!)) return false;
  const given = m[2] === undefined ? (scheme === 'https:' ? 443 : 80) : Number(m[2]);
  return given === port;
}

/**
 * Without sign-in, a request counts as coming from this machine only if it was also addressed to it: a page on
 * another site whose name resolves to 127.0.0.1 (DNS rebinding) sends its own name as Host, and a cross-site
 * request from a local browser carries that site's Origin. Returns why a request fails this, or undefined.
 */
export function localRequestProblem(host: string | undefined, origin: string | undefined, port: number): string | undefined {
  const expected = `http://127.0.0.1:${port} or http://localhost:${port}`;
  if (!host || !loopbackAuthority(host, port, 'http:')) {
    return `No sign-in is configured, so raddraft answers only requests addressed to this machine (${expected}); this one was addressed to ${quoted(host ?? '')}.`;
  }
  if (origin !== undefined) {
    let ok = false;
    try {
      const url = new URL(origin);
      ok = (url.protocol === 'http:' || url.protocol === 'https:') && loopbackAuthority(url.host, port, url.protocol);
    } catch {
      ok = false;
    }
    if (!ok) return `No sign-in is configured, so raddraft accepts requests only from its own pages (${expected}); this one came from ${quoted(origin)}.`;
  }
  return undefined;
}
