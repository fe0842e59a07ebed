import { describe, expect, it } from 'vitest';
import { canonicalEndpoint, endpointIp, parseAccessLine } from '../../workers/agent/connections/access-log.js';
import { ConnectionTable } from '../../workers/agent/connections/connection-table.js';
import { chunkTargets, killFilter } from '../../workers/agent/connections/socket-killer.js';

describe('access log lines', () => {
  it('reads the client endpoint and the user from V2Ray 4.34 lines (as it prints them, without the inbound)', () => {
    expect(parseAccessLine('2026/12/06 21:08:38 127.0.0.1:48026 accepted tcp:127.0.0.1:38115 [direct] email: 5f0c')).toEqual({ client: '127.0.0.1:48026', email: '5f0c', inboundTag: null });
  });

  it('reads Xray lines, with `from`, a network prefix, microseconds and the inbound tag', () => {
    expect(parseAccessLine('2026/12/06 21:08:38.123456 from 203.0.113.7:5000 accepted tcp:example.com:443 [vless-a >> direct] email: u1')).toEqual({ client: '203.0.113.7:5000', email: 'u1', inboundTag: 'vless-a' });
    expect(parseAccessLine('2026/12/06 21:08:38 from tcp:[2001:db8::1]:5000 accepted udp:1.1.1.1:53 [vless-a -> direct] email: u2')).toEqual({ client: '[2001:db8::1]:5000', email: 'u2', inboundTag: 'vless-a' });
  });

  it('ignores lines without a user, refusals and noise', () => {
    expect(parseAccessLine('2026/12/06 21:08:38 127.0.0.1:48026 accepted tcp:127.0.0.1:38115 [direct]')).toBeNull();
    expect(parseAccessLine('2026/12/06 21:08:38 127.0.0.1:48026 rejected  proxy/vless/encoding: invalid request user id')).toBeNull();
    expect(parseAccessLine('')).toBeNull();
  });

  it('treats a v4-mapped endpoint (a dual-stack socket in `ss`) as the IPv4 client', () => {
    expect(canonicalEndpoint('[::ffff:198.51.100.2]:4000')).toBe('198.51.100.2:4000');
    expect(endpointIp('[2001:db8::1]:5000')).toBe('2001:db8::1');
    expect(endpointIp('198.51.100.2:4000')).toBe('198.51.100.2');
  });
});

describe('the connection table', () => {
  it('gives a reused endpoint to the user of the later line, so a cut never aims at another user', () => {
    const t = new ConnectionTable();
    t.record('10.0.0.1:1000', 'a');
    t.record('10.0.0.1:1000', 'b');
    expect([...t.endpointsOf('a')]).toEqual([]);
    expect([...t.endpointsOf('b')]).toEqual(['10.0.0.1:1000']);
  });

  it('prunes only what was recorded before the socket listing began', () => {
    const t = new ConnectionTable();
    t.record('10.0.0.1:1', 'a');
    t.record('10.0.0.1:2', 'a');
    const mark = t.mark;
    t.record('10.0.0.1:3', 'a');
    expect(t.retain(new Set(['10.0.0.1:2']), mark)).toBe(1);
    expect([...t.endpointsOf('a')].sort()).toEqual(['10.0.0.1:2', '10.0.0.1:3']);
  });

  it('stays within its bound, oldest out first, and counts distinct IPs per user', () => {
    const t = new ConnectionTable(2);
    t.record('10.0.0.1:1', 'a');
    t.record('10.0.0.2:1', 'a');
    t.record('10.0.0.2:2', 'a');
    expect(t.size).toBe(2);
    expect(t.evicted).toBe(1);
    expect([...t.ipsOf('a')]).toEqual(['10.0.0.2']);
  });
});

describe('ss filters', () => {
  it('names each endpoint on its own port only', () => {
    expect(killFilter(new Map([[443, ['1.2.3.4:5', '[2001:db8::1]:6']], [8443, ['1.2.3.4:7']]]))).toBe('( sport = :443 and ( dst 1.2.3.4:5 or dst [2001:db8::1]:6 ) ) or ( sport = :8443 and ( dst 1.2.3.4:7 ) )');
  });

  it('splits many endpoints into bounded invocations, keeping each with its port', () => {
    const chunks = chunkTargets(new Map([[1, new Set(['a', 'b', 'c'])], [2, new Set(['d'])]]), 2);
    expect(chunks.map((c) => [...c])).toEqual([[[1, ['a', 'b']]], [[1, ['c']], [2, ['d']]]]);
  });
});
