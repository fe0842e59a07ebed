/**
 * Which event ids a stored message carries: its `ce-id`, and for a commit
 * (several events of one decision, contracts/envelope.ts) each inner event's
 * id too, so `prove <event id>` finds any event, whether it travelled alone or
 * in a commit. Only the commit record is decoded, never the inner events: an
 * inner schema this process does not know must not hide the ids. Needs no
 * NATS (the commit schema ships with the code), so offline verification uses
 * it too.
 */
import { COMMIT_KEY } from '../../contracts/catalogue.js';
import type { CommitV1 } from '../../contracts/catalogue.generated.js';
import { keyOfCeType, type SchemaRegistry } from '../../contracts/codec.js';
import type { CloudEventAttributes } from '../../contracts/envelope.js';

type Carried = Pick<CloudEventAttributes, 'id' | 'type' | 'dataschema'>;

/** The ids, message id first; throws when a commit cannot be decoded (its ce-id is still usable). */
export function eventIdsOf(registry: SchemaRegistry, attrs: Carried | undefined, data: Uint8Array): string[] {
  const id = attrs?.id;
  if (!attrs || !id) return [];
  if (!attrs.type || keyOfCeType(attrs.type) !== COMMIT_KEY) return [id];
  if (!attrs.dataschema) throw new Error(`commit ${id} has no ce-dataschema header`);
  const commit = registry.decode(attrs.dataschema, data);
  if (commit.key !== COMMIT_KEY) throw new Error(`message ${id} says it is a commit but its schema is ${commit.key}`);
  return [id, ...(commit.data as CommitV1).events.map((e) => e.id)];
}

/** Like eventIdsOf, but a commit that cannot be decoded yields its ce-id alone and the error. */
export function eventIdsOrError(registry: SchemaRegistry, attrs: Carried | undefined, data: Uint8Array): { ids: string[]; error?: Error } {
  try {
    return { ids: eventIdsOf(registry, attrs, data) };
  } catch (err) {
    return { ids: attrs?.id ? [attrs.id] : [], error: err instanceof Error ? err : new Error(String(err)) };
  }
}
