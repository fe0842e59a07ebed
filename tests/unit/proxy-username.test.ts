import { describe, expect, it } from 'vitest';
import { cityToken, parseProxyUsername, UsernameSyntaxError } from '../../workers/proxy/username.js';

const U = 'u0194c3e0aa0b7cc0a1b2c3d4e5f60718';

describe('the proxy username grammar', () => {
  it('reads a plain username', () => {
    expect(parseProxyUsername(U)).toEqual({ username: U });
  });

  it('reads every parameter, normalising case', () => {
    expect(parseProxyUsername(`${U}-country-de-city-New_York-session-abc123-sessttl-30`)).toEqual({ username: U, country: 'DE', city: 'new_york', session: 'abc123', sessionTtlMinutes: 30 });
  });

  it('gives a session the default TTL', () => {
    expect(parseProxyUsername(`${U}-session-x1`)).toEqual({ username: U, session: 'x1', sessionTtlMinutes: 10 });
  });

  it.each([
    [`${U}-country-deu`, 'country: must be'],
    [`${U}-country`, 'country: must be'],
    [`${U}-planet-mars`, 'planet: not a parameter'],
    [`${U}-city-x-country-de`, 'country: given twice or out of order'],
    [`${U}-country-de-country-fr`, 'country: given twice or out of order'],
    [`${U}-sessttl-5`, 'sessttl: only with a session'],
    [`${U}-session-a-sessttl-0`, 'sessttl: must be'],
    [`${U}-session-a-sessttl-1441`, 'sessttl: must be'],
    [`${U}-session-a_b`, 'session: must be'],
    ['', 'username: must be'],
    ['-country-de', 'username: must be'],
  ])('refuses %s', (raw, message) => {
    expect(() => parseProxyUsername(raw)).toThrow(UsernameSyntaxError);
    expect(() => parseProxyUsername(raw)).toThrow(message);
  });

  it('writes a node city as the grammar does', () => {
    expect(cityToken(' Frankfurt am  Main ')).toBe('frankfurt_am_main');
  });
});
