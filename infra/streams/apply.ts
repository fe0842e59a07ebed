/**
 * Applies stream specs idempotently: create what is missing, update what
 * differs, leave the rest alone, and say which it was.
 */
import { JetStreamApiError, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import type { StreamSpec } from './definitions.js';

export type ApplyOutcome = { name: string; action: 'created' | 'updated' | 'unchanged'; changed: string[] };

/** JetStream's code for "stream not found". */
const STREAM_NOT_FOUND = 10059;

/** Fields of `wanted` whose value differs in `actual` (recursively; extra fields in actual are ignored). */
export function differingFields(wanted: object, actual: object, path = ''): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(wanted)) {
    const there = (actual as Record<string, unknown>)[key];
    const where = path ? `${path}.${key}` : key;
    if (value !== null && typeof value === 'object') {
      if (there === null || typeof there !== 'object') out.push(where);
      else if (Array.isArray(value) && (!Array.isArray(there) || there.length !== value.length)) out.push(where);
      else out.push(...differingFields(value as object, there, where));
    } else if (there !== value) {
      out.push(where);
    }
  }
  return out;
}

export async function applyStream(jsm: JetStreamManager, spec: StreamSpec): Promise<ApplyOutcome> {
  let current: StreamConfig;
  try {
    current = (await jsm.streams.info(spec.name)).config;
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === STREAM_NOT_FOUND) {
      await jsm.streams.add(spec);
      return { name: spec.name, action: 'created', changed: [] };
    }
    throw err;
  }
  const changed = differingFields(spec, current);
  if (changed.length === 0) return { name: spec.name, action: 'unchanged', changed };
  await jsm.streams.update(spec.name, spec);
  return { name: spec.name, action: 'updated', changed };
}
