/**
 * `relaygrid replay state <aggregate subject> [--at <seq|ISO time>]`: time
 * travel. The aggregate's state as its decider saw it at that point of the
 * log, with the events that made it (who, when, what).
 */
import { parseArgs } from 'node:util';
import type { StoredEvent } from '../contracts/envelope.js';
import type { Runtime } from '../infra/runtime.js';
import { fold } from '../producers/decider.js';
import { DECIDERS } from '../producers/deciders.js';
import { EventStore } from '../producers/event-store/event-store.js';
import { readableJson } from './json.js';
import { parseBound, ReplayArgumentError, resolveRange, type Bound } from './range.js';

export interface AggregateAt {
  subject: string;
  at: string;
  /** Stream sequence of the last event folded (0: the aggregate did not exist yet). */
  sequence: number;
  state: unknown;
  events: { sequence: number; id: string; type: string; time: string; actor: string | null }[];
}

export async function stateAt(rt: Runtime, subject: string, at?: Bound): Promise<AggregateAt> {
  let parsed;
  try {
    parsed = rt.names.parse(subject);
  } catch {
    throw new ReplayArgumentError(`<aggregate subject>: "${subject}" is not an aggregate subject, e.g. ${rt.names.prefix}.evt.identity.user.<id>`);
  }
  const decider = DECIDERS.get(`${parsed.context}.${parsed.aggregate}`);
  if (!decider) throw new ReplayArgumentError(`<aggregate subject>: no aggregate kind "${parsed.context}.${parsed.aggregate}" (known: ${[...DECIDERS.keys()].join(', ')})`);
  const { events } = await new EventStore(rt.nats, rt.names, rt.registry).read(subject);
  // A time means what was stored by then, as for every replay range (not the events' own ce-time).
  const lastSeq = at === undefined ? Infinity : 'seq' in at ? at.seq : (await resolveRange(rt, parsed.stream, undefined, at)).to;
  const upTo = events.filter((e) => e.seq <= lastSeq);
  const state = fold(decider, decider.initialState, upTo as unknown as StoredEvent<never>[]);
  return {
    subject,
    at: at === undefined ? 'now' : 'seq' in at ? `sequence ${at.seq}` : at.time.toISOString(),
    sequence: upTo.at(-1)?.seq ?? 0,
    state,
    events: upTo.map((e) => ({ sequence: e.seq, id: e.id, type: e.ceType, time: e.time.toISOString(), actor: e.meta.actor ?? null })),
  };
}

export async function runState(rt: Runtime, args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { at: { type: 'string' } } });
  const [subject, ...extra] = positionals;
  if (!subject || extra.length > 0) throw new ReplayArgumentError('<aggregate subject>: name one aggregate, e.g. rg.evt.identity.user.<id>');
  console.log(readableJson(await stateAt(rt, subject, parseBound('--at', values.at))));
}
