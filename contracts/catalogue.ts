/**
 * The event catalogue: every event type Relaygrid writes, every historical
 * version the log may hold, and the typed data of the current versions.
 */
import { SCHEMA_FILES, type EventDataMap } from './catalogue.generated.js';
import { SchemaRegistry } from './codec.js';

export type { EventDataMap } from './catalogue.generated.js';
export type EventKey = keyof EventDataMap;
/** Data of the current version of an event. */
export type EventData<K extends EventKey> = EventDataMap[K];

/** The bounded contexts, each with its own event stream. `core` holds envelope records only. */
export const EVENT_CONTEXTS = ['identity', 'fleet', 'usage', 'plans', 'billing', 'messaging', 'edge'] as const;
export type EventContext = (typeof EVENT_CONTEXTS)[number];

export const COMMIT_KEY = 'core.Commit' satisfies EventKey;

/** A registry holding every schema of the catalogue. Cheap enough to build once per process. */
export function catalogueRegistry(): SchemaRegistry {
  const registry = new SchemaRegistry();
  for (const entry of SCHEMA_FILES) registry.register(`${entry.context}.${entry.name}`, entry.version, entry.schema);
  return registry;
}

let shared: SchemaRegistry | undefined;
export function sharedRegistry(): SchemaRegistry {
  shared ??= catalogueRegistry();
  return shared;
}
