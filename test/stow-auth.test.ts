import { describe, expect, it } from '@jest/globals';
import { credentialsMatch, headerSafe } from '../src/intake/stow-receiver.js';

const basic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;

describe('STOW-RS credentials', () => {
  const user = { kind: 'basic', user: 'router', password: 'pass-word-1' } as const;
  const token = { kind: 'bearer', token: 'tok-0123456789abcdef' } as const;

  it('accepts Basic credentials that match, whatever the case of the scheme name', () => {
    expect(credentialsMatch(basic('router:pass-word-1'), user)).toBe(true);
    expect(credentialsMatch(basic('router:pass-word-1').replace('Basic', 'bASIC'), user)).toBe(true);
  });

  it('refuses a wrong password, a longer or shorter one, another user, and a bearer token for Basic', () => {
    for (const wrong of [basic('router:pass-word-2'), basic('router:pass-word-11'), basic('router:pass'), basic('other:pass-word-1'), 'Bearer router:pass-word-1', '', 'Basic']) {
      expect(credentialsMatch(wrong, user)).toBe(false);
    }
    expect(credentialsMatch(undefined, user)).toBe(false);
  });

  it('accepts the bearer token and refuses anything else, including the token as Basic', () => {
    expect(credentialsMatch('Bearer tok-0123456789abcdef', token)).toBe(true);
    expect(credentialsMatch('bearer  tok-0123456789abcdef ', token)).toBe(true);
    for (const wrong of ['Bearer tok-0123456789abcdeF', 'Bearer tok-0123456789abcde', 'Bearer tok-0123456789abcdef0', basic('tok-0123456789abcdef'), 'tok-0123456789abcdef']) {
      expect(credentialsMatch(wrong, token)).toBe(false);
    }
  });

  it('lets anyone in only when configured with none', () => {
    expect(credentialsMatch(undefined, { kind: 'none' })).toBe(true);
  });
});

describe('text bound for a response header', () => {
  it('keeps printable ASCII and turns control characters, DEL, non-ASCII, quotes and backslashes harmless', () => {
    expect(headerSafe('a\x00b\x7fc\u00ffd"e\\f\r\ng')).toBe("a?b?c?d'e'f??g");
  });

  it('shortens long text to the limit', () => {
    expect(headerSafe('x'.repeat(500), 20)).toBe(`${'x'.repeat(17)}...`);
  });
});
