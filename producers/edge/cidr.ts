/**
 * IP addresses and CIDRs in one written form each, so a site's allow and
 * deny lists compare and deduplicate by meaning: IPv6 compressed and
 * lower-case (RFC 5952, as node:net writes it), host bits beyond the prefix
 * cleared, and the prefix length always written (`10.0.0.0/8`,
 * `2001:db8::/32`, `192.0.2.7/32`).
 */
import { isIP, SocketAddress } from 'node:net';

/** An IP literal's canonical text, or null. Zone ids (`fe80::1%eth0`) are not addresses a site can name. */
export function canonicalIp(value: string): string | null {
  if (value.includes('%')) return null;
  const family = isIP(value);
  if (family === 0) return null;
  return new SocketAddress({ address: value, family: family === 4 ? 'ipv4' : 'ipv6' }).address;
}

function bytesOf(address: string, family: 4 | 6): number[] {
  if (family === 4) return address.split('.').map(Number);
  const [head = '', tail = ''] = address.includes('::') ? address.split('::') : [address, ''];
  const groups = (part: string) => (part ? part.split(':') : []);
  const words = (part: string) =>
    groups(part).flatMap((g) => {
      if (!g.includes('.')) return [parseInt(g, 16)];
      const [a = 0, b = 0, c = 0, d = 0] = g.split('.').map(Number);
      return [(a << 8) | b, (c << 8) | d];
    });
  const left = words(head);
  const right = words(tail);
  const all = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  return all.flatMap((w) => [w >> 8, w & 0xff]);
}

function textOf(bytes: number[], family: 4 | 6): string {
  if (family === 4) return bytes.join('.');
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return canonicalIp(words.join(':'))!;
}

/** `address` or `address/prefix` in its canonical form, or null when it is neither. */
export function canonicalCidr(value: string): string | null {
  const parts = value.split('/');
  if (parts.length > 2) return null;
  const [rawAddress = '', rawBits] = parts;
  const address = canonicalIp(rawAddress);
  if (!address) return null;
  const family = isIP(address) as 4 | 6;
  const width = family === 4 ? 32 : 128;
  if (rawBits !== undefined && !/^(0|[1-9]\d{0,2})$/.test(rawBits)) return null;
  const bits = rawBits === undefined ? width : Number(rawBits);
  if (bits > width) return null;
  const bytes = bytesOf(address, family).map((byte, i) => {
    const kept = Math.max(0, Math.min(8, bits - i * 8));
    return byte & ((0xff << (8 - kept)) & 0xff);
  });
  return `${textOf(bytes, family)}/${bits}`;
}
