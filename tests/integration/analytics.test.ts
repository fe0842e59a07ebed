/**
 * Analytics over HTTP against real NATS, Postgres and Redis: usage ticks are
 * appended through the real append path, the real projectors fold them, and
 * every figure the API answers is compared with a fold of the same ticks
 * computed here, independently (Temporal for the local days). Ownership:
 * a client reads and exports only their own rows; the fleet is for analysts.
 */
import { randomUUID } from 'node:crypto';
import { Temporal } from '@js-temporal/polyfill';
import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import type { UsageTickedV1 } from '../../contracts/catalogue.generated.js';
import { appendTick } from '../../producers/usage/usage-ticks.js';
import { apiSuite, expectStatus } from '../support/api-suite.js';
import { eventually } from '../support/isolated.js';
import { createPlan, grantPlan } from '../support/plans.js';

type Traffic = { uplink: string; downlink: string; total: string };
type Bucket = Traffic & { start: string; end: string; groups?: (Traffic & { key: string })[] };
type Trends = { timeZone: string; buckets: Bucket[] };
type ExportJob = { id: string; status: string; rowsDone: number; rowsTotal: number | null; progress: number; personal: boolean; download: { url: string; expiresAt: string } | null };

const HOUR_MS = 3_600_000;
const ZONE = 'America/New_York';

describe('analytics', () => {
  const suite = apiSuite();

  async function projected(projector: string, seq: number): Promise<void> {
    await eventually(async () => ((await suite.env.rt.db.selectFrom('projector_checkpoints').select('seq').where('projector', '=', projector).executeTakeFirst())?.seq ?? 0) >= seq, 20_000);
  }

  /** Local day (in ZONE) of an instant, as its start's ISO time: the fold's own bucketing. */
  const localDay = (at: Date) => new Date(Temporal.Instant.fromEpochMilliseconds(at.getTime()).toZonedDateTimeISO(ZONE).startOfDay().epochMilliseconds).toISOString();

  function add(map: Map<string, bigint>, key: string, bytes: bigint) {
    map.set(key, (map.get(key) ?? 0n) + bytes);
  }

  it('trends, KPIs, costs and exports equal a fold of the log; clients see only their own', async () => {
    const { call, api } = suite;
    const operator = await suite.signedIn(['operator']);
    const analyst = await suite.signedIn(['analyst']);
    const owner = await suite.signedIn(['client']);
    const other = await suite.signedIn(['client']);
    expectStatus(await call('PUT', '/v1/account/time-zone', { token: owner.token, body: { timeZone: ZONE } }), 200);
    const nodes = [`an-de-${randomUUID().slice(0, 8)}`, `an-fr-${randomUUID().slice(0, 8)}`];
    for (const [i, nodeId] of nodes.entries()) expectStatus(await call('POST', '/v1/fleet/nodes', { token: operator.token, body: { nodeId, address: `203.0.113.${20 + i}`, country: i === 0 ? 'DE' : 'FR' } }), 201);
    const planId = await createPlan(api.plans, { price: { amountMinor: 500, currency: 'EUR' } });
    const planSeq = await grantPlan(api.plans, owner.id, planId);

    // Three days of ticks ending now, on both nodes, for both users; one tick sent twice.
    const now = Date.now();
    const ticks: UsageTickedV1[] = [];
    for (let h = 0; h < 72; h += 5) {
      for (const [i, nodeId] of nodes.entries()) {
        const end = new Date(now - h * HOUR_MS - i * 60_000);
        ticks.push({ tickId: randomUUID(), nodeId, intervalStart: new Date(end.getTime() - 30_000), intervalEnd: end, users: [{ userId: owner.id, uplink: BigInt(1_000 + h * 7 + i), downlink: BigInt(50_000 * (h + 1)) }, { userId: other.id, uplink: 3n, downlink: BigInt(h + 1) }] });
      }
    }
    let last = 0;
    for (const tick of ticks) last = (await appendTick(api.fleet.deps.handler.store, tick)).seq;
    last = Math.max(last, (await appendTick(api.fleet.deps.handler.store, ticks[0] as UsageTickedV1)).seq);
    await projected('analytics-usage', last);
    await projected('analytics-plans', planSeq);

    // The fold: the owner's bytes per local day and node; the fleet's per country; per node overall.
    const ownerDays = new Map<string, bigint>();
    const ownerDayNode = new Map<string, bigint>();
    const countries = new Map<string, bigint>();
    let ownerTotal = 0n;
    for (const t of ticks) {
      for (const u of t.users) {
        const bytes = u.uplink + u.downlink;
        add(countries, t.nodeId === nodes[0] ? 'DE' : 'FR', bytes);
        if (u.userId !== owner.id) continue;
        ownerTotal += bytes;
        add(ownerDays, localDay(t.intervalEnd), bytes);
        add(ownerDayNode, `${localDay(t.intervalEnd)} ${t.nodeId}`, bytes);
      }
    }
    const from = new Date(now - 4 * 24 * HOUR_MS).toISOString();
    const to = new Date(now + HOUR_MS).toISOString();

    const days = expectStatus(await call<Trends>('GET', `/v1/analytics/usage-trends?granularity=day&groupBy=node&from=${from}&to=${to}`, { token: owner.token }), 200).body;
    expect(days.timeZone).toBe(ZONE);
    const answered = new Map(days.buckets.filter((b) => b.total !== '0').map((b) => [b.start, BigInt(b.total)]));
    expect(answered).toEqual(ownerDays);
    const byNode = new Map(days.buckets.flatMap((b) => (b.groups ?? []).map((g) => [`${b.start} ${g.key}`, BigInt(g.total)] as const)));
    expect(byNode).toEqual(ownerDayNode);
    // Local midnights: consecutive buckets, each starting at 00:00 in the zone.
    for (const b of days.buckets) expect(Temporal.Instant.from(b.start).toZonedDateTimeISO(ZONE).hour).toBe(0);

    const weeks = expectStatus(await call<Trends>('GET', `/v1/analytics/usage-trends?granularity=week&groupBy=plan&from=${from}&to=${to}`, { token: owner.token }), 200).body;
    expect(weeks.buckets.reduce((sum, b) => sum + BigInt(b.total), 0n)).toBe(ownerTotal);
    for (const b of weeks.buckets) expect(Temporal.Instant.from(b.start).toZonedDateTimeISO(ZONE).dayOfWeek).toBe(1);
    const planKeys = new Set(weeks.buckets.flatMap((b) => (b.groups ?? []).map((g) => g.key)));
    // Ticks before the grant count as no plan; after it, the plan's.
    expect([...planKeys].every((k) => k === planId || k === 'none')).toBe(true);

    const hours = expectStatus(await call<Trends>('GET', `/v1/analytics/usage-trends?granularity=hour&from=${from}&to=${to}`, { token: owner.token }), 200).body;
    expect(hours.buckets.reduce((sum, b) => sum + BigInt(b.total), 0n)).toBe(ownerTotal);

    const fleet = expectStatus(await call<Trends>('GET', `/v1/analytics/usage-trends?fleet=true&groupBy=country&from=${from}&to=${to}`, { token: analyst.token }), 200).body;
    const fleetCountries = new Map<string, bigint>();
    for (const b of fleet.buckets) for (const g of b.groups ?? []) add(fleetCountries, g.key, BigInt(g.total));
    expect(fleetCountries).toEqual(countries);

    // Ownership: another client gets neither the owner's figures nor the fleet's.
    expect(expectStatus(await call('GET', `/v1/analytics/usage-trends?userId=${owner.id}`, { token: other.token }), 403).body).toMatchObject({ code: 'forbidden' });
    expect(expectStatus(await call('GET', '/v1/analytics/usage-trends?fleet=true', { token: other.token }), 403).body).toMatchObject({ code: 'forbidden' });
    expect(expectStatus(await call('GET', '/v1/analytics/kpis', { token: other.token }), 403).body).toMatchObject({ code: 'forbidden' });
    expect(expectStatus(await call('GET', `/v1/analytics/cost-analysis?userId=${owner.id}`, { token: other.token }), 403).body).toMatchObject({ code: 'forbidden' });
    const asAnalyst = expectStatus(await call<Trends>('GET', `/v1/analytics/usage-trends?userId=${owner.id}&granularity=day&from=${from}&to=${to}`, { token: analyst.token }), 200).body;
    expect(asAnalyst.buckets.reduce((sum, b) => sum + BigInt(b.total), 0n)).toBe(ownerTotal);

    // KPIs: both users active; the nodes ranked by the fold's bytes.
    const k = expectStatus(await call<{ activeUsers: { now: number; day: number; month: number }; topNodes: (Traffic & { key: string })[]; topCountries: (Traffic & { key: string })[]; subscriptions: { started: number } }>('GET', `/v1/analytics/kpis?from=${from}&to=${to}`, { token: operator.token }), 200).body;
    expect(k.activeUsers).toEqual({ now: 2, day: 2, month: 2 });
    expect(new Map(k.topCountries.map((c) => [c.key, BigInt(c.total)]))).toEqual(countries);
    expect(k.topNodes.map((n) => n.key)).toEqual([...nodes].sort((a, b) => Number((countries.get(b === nodes[0] ? 'DE' : 'FR') ?? 0n) - (countries.get(a === nodes[0] ? 'DE' : 'FR') ?? 0n))));
    expect(k.subscriptions.started).toBe(1);

    // Costs: no invoice yet, so no spend; the projection extrapolates this month's bytes; MRR counts the grant.
    const cost = expectStatus(await call<{ usedBytes: string; periods: unknown[]; projection: { usedBytes: string; projectedBytes: string } }>('GET', '/v1/analytics/cost-analysis', { token: owner.token }), 200).body;
    expect(cost.usedBytes).toBe(ownerTotal.toString());
    expect(cost.periods).toEqual([]);
    expect(BigInt(cost.projection.projectedBytes)).toBeGreaterThanOrEqual(BigInt(cost.projection.usedBytes));
    const fleetCost = expectStatus(await call<{ mrr: { planId: string; currency: string; subscriptions: number; mrrMinor: number }[] }>('GET', '/v1/analytics/cost-analysis?fleet=true', { token: operator.token }), 200).body;
    expect(fleetCost.mrr).toContainEqual({ planId, currency: 'EUR', subscriptions: 1, mrrMinor: 500 });

    // Exports: the owner's usage as CSV holds exactly the owner's rows, summing to the fold.
    const csv = await finishedExport(owner.token, { dataset: 'usage', format: 'csv', from, to });
    expect(csv.job.personal).toBe(true);
    const [header, ...lines] = csv.text.trim().split('\r\n');
    expect(header).toBe('user_id,hour,node_id,uplink,downlink');
    expect(lines.every((l) => l.startsWith(`${owner.id},`))).toBe(true);
    expect(lines.reduce((sum, l) => sum + BigInt(l.split(',')[3] ?? '0') + BigInt(l.split(',')[4] ?? '0'), 0n)).toBe(ownerTotal);
    expect(csv.job.rowsDone).toBe(lines.length);

    // The fleet's as an Avro container file, for the analyst: both users, 64-bit longs.
    const fleetAvro = await finishedExport(analyst.token, { dataset: 'usage', format: 'avro', from, to });
    expect(fleetAvro.job.personal).toBe(false);
    const records = await avroRecords(fleetAvro.bytes);
    expect(records.reduce((sum, r) => sum + BigInt(r['uplink'] as bigint) + BigInt(r['downlink'] as bigint), 0n)).toBe([...countries.values()].reduce((a, b) => a + b, 0n));

    // A client may not export someone else's rows, nor read another's job; a tampered link is refused.
    expect(expectStatus(await call('POST', '/v1/analytics/exports', { token: other.token, body: { dataset: 'usage', format: 'csv', from, to, userId: owner.id } }), 403).body).toMatchObject({ code: 'forbidden_export' });
    expect(expectStatus(await call('GET', `/v1/analytics/exports/${csv.job.id}`, { token: other.token }), 404).body).toMatchObject({ code: 'export_not_found' });
    const link = csv.job.download?.url ?? '';
    const tampered = await fetch(`${api.url}${link.replace(/signature=./, (m) => (m.endsWith('A') ? m.slice(0, -1) + 'B' : m.slice(0, -1) + 'A'))}`);
    expect(tampered.status).toBe(403);
    const expired = await fetch(`${api.url}${link.replace(/expires=\d+/, 'expires=1')}`);
    expect(expired.status).toBe(403); // the signature covers the expiry
  });

  async function finishedExport(token: string, body: Record<string, string>): Promise<{ job: ExportJob; text: string; bytes: Buffer }> {
    const started = expectStatus(await suite.call<ExportJob>('POST', '/v1/analytics/exports', { token, body }), 202).body;
    const job = await eventually(async () => {
      const j = expectStatus(await suite.call<ExportJob>('GET', `/v1/analytics/exports/${started.id}`, { token }), 200).body;
      return j.status === 'done' || j.status === 'failed' ? j : undefined;
    }, 20_000);
    expect(job.status).toBe('done');
    expect(job.progress).toBe(1);
    const res = await fetch(`${suite.api.url}${job.download?.url ?? ''}`);
    expect(res.status).toBe(200);
    const bytes = Buffer.from(await res.arrayBuffer());
    return { job, text: bytes.toString('utf8'), bytes };
  }
});

/** Decodes an Avro container file with avsc's own reader (its schema from the header). */
async function avroRecords(file: Buffer): Promise<Record<string, unknown>[]> {
  const decoder = new avro.streams.BlockDecoder({ parseHook: (schema) => avro.Type.forSchema(schema, { registry: { long: avro.types.LongType.__with({ fromBuffer: (b: Buffer) => b.readBigInt64LE(), toBuffer: (n: bigint) => { const b = Buffer.alloc(8); b.writeBigInt64LE(n); return b; }, fromJSON: BigInt, toJSON: String, isValid: (n: unknown) => typeof n === 'bigint', compare: () => 0 }) } }) });
  const records: Record<string, unknown>[] = [];
  decoder.on('data', (r: Record<string, unknown>) => records.push(r));
  const done = new Promise<void>((resolve, reject) => {
    decoder.on('end', resolve);
    decoder.on('error', reject);
  });
  decoder.end(file);
  await done;
  return records;
}
