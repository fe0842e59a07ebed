/**
 * Ingesting usage ticks. A tick is a record of what happened, guarded by no
 * decision: appended without an expectation, with its tick id as the event id
 * (and so as Nats-Msg-Id), so a resend inside JetStream's duplicate window is
 * not stored twice; the usage projection drops resends after it.
 */
import type { UsageTickedV1 } from '../../contracts/catalogue.generated.js';
import { uuidv7 } from '../../contracts/ids.js';
import { DomainError } from '../decider.js';
import type { EventStore } from '../event-store/event-store.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
export const isUuid = (value: string): boolean => UUID.test(value);
/** Users per tick: 5,000 keep a tick's JSON (about 450 KB) under NATS's 1 MiB max_payload. */
export const MAX_USERS_PER_TICK = 5_000;

/** A tick as an agent sends it (JSON: byte counts as decimal strings, times as ISO strings). */
export interface TickWire {
  tickId: string;
  intervalStart: string;
  intervalEnd: string;
  users: { userId: string; uplink: string; downlink: string }[];
}

/**
 * One interval of a node's per-user traffic (the core's counters, by email =
 * user id) as the ticks an agent sends: at most MAX_USERS_PER_TICK users each,
 * each with its own id.
 */
export function ticksOf(traffic: ReadonlyMap<string, { uplink: bigint; downlink: bigint }>, start: Date, end: Date): TickWire[] {
  const users = [...traffic].map(([userId, t]) => ({ userId, uplink: t.uplink.toString(), downlink: t.downlink.toString() }));
  const ticks: TickWire[] = [];
  for (let i = 0; i < users.length; i += MAX_USERS_PER_TICK) {
    ticks.push({ tickId: uuidv7(end.getTime()), intervalStart: start.toISOString(), intervalEnd: end.toISOString(), users: users.slice(i, i + MAX_USERS_PER_TICK) });
  }
  return ticks;
}

const bytes = (field: string, value: unknown): bigint => {
  if (typeof value !== 'string' || !/^\d{1,19}$/.test(value)) throw new DomainError('invalid_tick', `${field}: must be a whole number of bytes, as a decimal string`, { field });
  return BigInt(value);
};

/** Checks a tick from the wire; the node id comes from the subject the agent may publish on, never from the body. */
export function parseTick(nodeId: string, wire: TickWire): UsageTickedV1 {
  if (typeof wire?.tickId !== 'string' || !isUuid(wire.tickId)) throw new DomainError('invalid_tick', 'tickId: must be a UUID', { field: 'tickId' });
  const start = new Date(wire.intervalStart);
  const end = new Date(wire.intervalEnd);
  if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || end < start) throw new DomainError('invalid_tick', 'intervalStart, intervalEnd: must be ISO times, start before end', { field: 'intervalEnd' });
  if (!Array.isArray(wire.users) || wire.users.length > MAX_USERS_PER_TICK) throw new DomainError('invalid_tick', `users: at most ${MAX_USERS_PER_TICK} per tick; split the interval`, { field: 'users' });
  const users = wire.users.map((u, i) => {
    if (typeof u?.userId !== 'string' || u.userId.length === 0 || u.userId.length > 64) throw new DomainError('invalid_tick', `users.${i}.userId: must be a user id`, { field: `users.${i}.userId` });
    return { userId: u.userId, uplink: bytes(`users.${i}.uplink`, u.uplink), downlink: bytes(`users.${i}.downlink`, u.downlink) };
  });
  return { tickId: wire.tickId, nodeId, intervalStart: start, intervalEnd: end, users };
}

export async function appendTick(store: EventStore, tick: UsageTickedV1): Promise<{ seq: number; duplicate: boolean }> {
  const subject = store.names.aggregate('usage', 'node', tick.nodeId);
  const result = await store.append(subject, [{ type: 'usage.UsageTicked', data: tick }], {
    expectedSeq: null,
    meta: { source: 'relaygrid/fleet', actor: `node:${tick.nodeId}` },
    ids: [tick.tickId],
    time: tick.intervalEnd,
  });
  return { seq: result.seq, duplicate: result.duplicate };
}
