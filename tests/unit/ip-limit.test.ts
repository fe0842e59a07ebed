import { describe, expect, it } from 'vitest';
import { createLogger } from '../../infra/logger.js';
import type { FleetDeps } from '../../producers/fleet/fleet-deps.js';
import type { PersonKeys } from '../../producers/identity/crypto/person-keys.js';
import { parseConnections, type ConnectionWire } from '../../producers/usage/connection-reports.js';
import { ConnectionTable } from '../../workers/agent/connections/connection-table.js';
import { parseSockets } from '../../workers/agent/connections/socket-killer.js';
import { ipLimitEventId, IpLimiter, ipsOverLimit } from '../../workers/fleet/ip-limit.js';

const log = createLogger('silent', { test: 'ip-limit-unit' });

describe('which IPs are over the limit', () => {
  it('cuts the newest until the limit remains, the same in every worker', () => {
    const live = [
      { ip: '10.0.0.1', since: 1, nodes: ['a'] },
      { ip: '10.0.0.3', since: 3, nodes: ['b'] },
      { ip: '10.0.0.2', since: 2, nodes: ['a', 'b'] },
    ];
    expect(ipsOverLimit(live, 1).map((l) => l.ip)).toEqual(['10.0.0.3', '10.0.0.2']);
    expect(ipsOverLimit(live, 3)).toEqual([]);
    expect(ipsOverLimit([...live].reverse(), 2).map((l) => l.ip)).toEqual(['10.0.0.3']);
    expect(ipLimitEventId('u', '10.0.0.3', 3)).toBe(ipLimitEventId('u', '10.0.0.3', 3));
    expect(ipLimitEventId('u', '10.0.0.3', 3)).not.toBe(ipLimitEventId('u', '10.0.0.3', 4));
  });
});

describe('the fleet’s union of live IPs', () => {
  /** No subscriptions are read here: users have one IP per node at most, or the limiter's query is never reached. */
  function limiter(now: { t: number }) {
    const deps = { db: null, push: () => undefined } as unknown as FleetDeps;
    return new IpLimiter(deps, {} as PersonKeys, log, { nodeTimeoutMs: 1_000, now: () => now.t });
  }
  const ips = (...list: [string, number][]) => list.map(([ip, since]) => ({ ip, since: new Date(since).toISOString() }));

  it('joins nodes, replaces a node’s entry per report, and forgets a node that stops heartbeating', async () => {
    const now = { t: 10_000 };
    const l = limiter(now);
    await l.report('a', { ttlMs: 60_000, users: [{ userId: 'u', ips: ips(['10.0.0.1', 5_000]) }] });
    await l.report('b', { ttlMs: 60_000, users: [{ userId: 'v', ips: ips(['10.0.0.1', 6_000]) }] });
    expect(l.liveIps('u')).toEqual([{ ip: '10.0.0.1', since: 5_000, nodes: ['a'] }]);
    await l.report('a', { ttlMs: 60_000, users: [{ userId: 'u', ips: [] }] });
    expect(l.liveIps('u')).toEqual([]);
    await l.report('a', { ttlMs: 60_000, users: [{ userId: 'u', ips: ips(['10.0.0.2', 7_000]) }] });
    now.t += 900;
    l.beat('a');
    now.t += 900;
    // b sent nothing for 1.8 s: its IPs no longer count; a heartbeat kept a's.
    expect(l.liveIps('v')).toEqual([]);
    expect(l.liveIps('u').map((x) => x.ip)).toEqual(['10.0.0.2']);
  });

  it('drops an entry its agent did not refresh within the ttl', async () => {
    const now = { t: 0 };
    const l = limiter(now);
    await l.report('a', { ttlMs: 1_000, users: [{ userId: 'u', ips: ips(['10.0.0.1', 0]) }] });
    now.t = 500;
    l.beat('a');
    expect(l.liveIps('u')).toHaveLength(1);
    now.t = 1_000;
    l.beat('a');
    expect(l.liveIps('u')).toEqual([]);
  });
});

describe('the agent’s connection table as history and IP counts', () => {
  it('reports opens, first sightings and closes, and a user’s IP set only when it changes', () => {
    const events: string[] = [];
    const t = new ConnectionTable(10, {
      opened: (c) => events.push(`open ${c.email} ${c.ip}`),
      seen: (c) => events.push(`seen ${c.port}`),
      closed: (c) => events.push(`close ${c.ip} ${c.downlink}`),
      ipsChanged: (email) => events.push(`ips ${email}`),
    });
    t.record('10.0.0.1:1', 'a');
    t.record('10.0.0.1:2', 'a');
    // A second line for the same endpoint and user is the same connection.
    t.record('10.0.0.1:2', 'a');
    const mark = t.mark;
    t.retain(new Map([['10.0.0.1:2', { localPort: 443, uplink: 5n, downlink: 7n }]]), mark);
    expect(events).toEqual(['open a 10.0.0.1', 'ips a', 'open a 10.0.0.1', 'close 10.0.0.1 0', 'seen 443']);
    expect([...t.ipsSince('a').keys()]).toEqual(['10.0.0.1']);
    events.length = 0;
    t.clear();
    expect(events).toEqual(['close 10.0.0.1 7', 'ips a']);
  });
});

describe('ss -ti output', () => {
  it('reads each socket’s peer, local port and byte counters, with or without a State column', () => {
    const out = [
      '0      0      127.0.0.1:443  127.0.0.2:40000',
      '\t cubic wscale:7,7 rto:204 bytes_sent:3112 bytes_acked:3112 bytes_received:11627 segs_out:58',
      'ESTAB 0 0 [::ffff:127.0.0.1]:443 [::ffff:127.0.0.3]:40001',
      '\t cubic bytes_received:9',
    ].join('\n');
    expect(parseSockets(out)).toEqual(
      new Map([
        ['127.0.0.2:40000', { localPort: 443, uplink: 11_627n, downlink: 3_112n }],
        ['127.0.0.3:40001', { localPort: 443, uplink: 9n, downlink: 0n }],
      ]),
    );
  });
});

describe('connection reports from the wire', () => {
  const good: ConnectionWire = { connectionId: '0193a1b2-0000-4000-8000-000000000001', userId: 'u', inboundTag: null, port: 443, clientIp: '203.0.113.9', openedAt: '2026-12-06T10:00:00Z', closedAt: null, uplink: '1', downlink: '2' };
  const parse = (c: Partial<ConnectionWire>) => parseConnections({ reportId: '0193a1b2-0000-7000-8000-000000000000', connections: [{ ...good, ...c }] });

  it('takes a good report, bytes as bigints', () => {
    expect(parse({}).connections[0]).toMatchObject({ clientIp: '203.0.113.9', uplink: 1n, downlink: 2n, closedAt: null });
  });

  it('refuses bad fields with invalid_report naming the field', () => {
    for (const [bad, field] of [
      [{ clientIp: '1.2.3.4; rm -rf' }, 'connections.0.clientIp'],
      [{ uplink: '-1' }, 'connections.0.uplink'],
      [{ closedAt: '2026-12-06T09:00:00Z' }, 'connections.0.closedAt'],
      [{ port: 70_000 }, 'connections.0.port'],
      [{ connectionId: 'x' }, 'connections.0.connectionId'],
    ] as const) {
      expect(() => parse(bad)).toThrowError(expect.objectContaining({ code: 'invalid_report', details: { field } }) as Error);
    }
  });
});
