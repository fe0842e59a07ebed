/** The canonical leaf layout, byte by byte, as docs/auditors.md states it. */
import { createHash } from 'node:crypto';
import { headers } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { headerPairs, leafInput, messageLeafHash, type StoredMessage } from '../../replay/audit/leaf.js';

const msg: StoredMessage = {
  subject: 'rg.evt.identity.user.u1',
  headers: [
    ['ce-type', 'relaygrid.identity.UserRegistered.v1'],
    ['Nats-Stream-Source', 'RG_IDENTITY 7'],
    ['ce-id', 'b'],
    ['ce-id', 'a'],
  ],
  data: Buffer.from([1, 2, 3]),
};

function u32(n: number): string {
  return n.toString(16).padStart(8, '0');
}
const str = (s: string) => `${u32(Buffer.byteLength(s))}${Buffer.from(s).toString('hex')}`;

describe('audit leaf', () => {
  it('is length-prefixed subject, header count, sorted headers (values in stored order), data', () => {
    const expected =
      str('rg.evt.identity.user.u1') +
      u32(4) +
      // 'N' (0x4e) sorts before 'c' (0x63): byte order, not case-insensitive.
      str('Nats-Stream-Source') + str('RG_IDENTITY 7') +
      str('ce-id') + str('b') +
      str('ce-id') + str('a') +
      str('ce-type') + str('relaygrid.identity.UserRegistered.v1') +
      u32(3) + '010203';
    expect(leafInput(msg).toString('hex')).toBe(expected);
    expect(messageLeafHash(msg).toString('hex')).toBe(createHash('sha256').update(Buffer.concat([Buffer.of(0), Buffer.from(expected, 'hex')])).digest('hex'));
  });

  it('does not depend on the order of different header names, but does on everything else', () => {
    const base = messageLeafHash(msg);
    const shuffled = { ...msg, headers: [msg.headers[2]!, msg.headers[0]!, msg.headers[3]!, msg.headers[1]!] };
    expect(messageLeafHash(shuffled).equals(base)).toBe(true);
    const variants: StoredMessage[] = [
      { ...msg, subject: 'rg.evt.identity.user.u2' },
      { ...msg, data: Buffer.from([1, 2, 4]) },
      { ...msg, headers: [...msg.headers, ['x', '']] },
      { ...msg, headers: msg.headers.slice(1) },
      { ...msg, headers: [msg.headers[0]!, msg.headers[1]!, msg.headers[3]!, msg.headers[2]!] }, // a name's values swapped
      // Moving bytes between fields changes the leaf: nothing is separator-delimited.
      { ...msg, subject: 'rg.evt.identity.user.u', data: Buffer.concat([Buffer.from('1'), msg.data]) },
    ];
    for (const v of variants) expect(messageLeafHash(v).equals(base)).toBe(false);
  });

  it('takes every value of every header from a NATS header block', () => {
    const h = headers();
    h.append('b', '1');
    h.append('a', '2');
    h.append('b', '3');
    expect(headerPairs(h)).toEqual([
      ['b', '1'],
      ['b', '3'],
      ['a', '2'],
    ]);
    expect(headerPairs(undefined)).toEqual([]);
  });

  it('sorts names by UTF-8 bytes, not UTF-16 code units', () => {
    // U+FB00 is EF AC 80 in UTF-8, U+1D49C is F0 9D 92 9C: bytes put U+FB00 first, UTF-16 (0xFB00 > 0xD835) would not.
    const input = leafInput({ subject: 's', headers: [['\u{1D49C}', 'b'], ['\uFB00', 'a']], data: new Uint8Array() }).toString('hex');
    expect(input).toBe(`${str('s')}${u32(2)}${u32(3)}efac80${str('a')}${u32(4)}f09d929c${str('b')}${u32(0)}`);
    // U+01FF (C7 BF) sorts before U+FB00 (EF AC 80) by bytes, after it by code unit against a byte key.
    const mixed = leafInput({ subject: 's', headers: [['\uFB00', 'a'], ['\u01FF', 'b'], ['z', 'c']], data: new Uint8Array() }).toString('hex');
    expect(mixed).toBe(`${str('s')}${u32(3)}${str('z')}${str('c')}${u32(2)}c7bf${str('b')}${u32(3)}efac80${str('a')}${u32(0)}`);
  });

  it('hashes UTF-8 and an empty message', () => {
    expect(leafInput({ subject: 'ä', headers: [], data: new Uint8Array() }).toString('hex')).toBe(`${u32(2)}c3a4${u32(0)}${u32(0)}`);
  });
});
