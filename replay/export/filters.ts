/**
 * What an export keeps: `--type` (event types, checked against every schema
 * any client can decode) and `--subject` (checked against the stream's
 * subjects, so a typo is an error rather than an empty file).
 */
import { COMMIT_KEY } from '../../contracts/catalogue.js';
import { keyOfCeType } from '../../contracts/codec.js';
import { ReplayArgumentError } from '../range.js';
import type { WriterSchemas } from './writer-schemas.js';

/** Decides on a CloudEvents type; undefined when every type is kept. */
export type TypeFilter = ((ceType: string) => boolean) | undefined;

/**
 * `identity.UserRegistered` keeps every version of the event,
 * `relaygrid.identity.UserRegistered.v2` that version only.
 */
export function typeFilter(types: readonly string[], schemas: WriterSchemas): TypeFilter {
  if (types.length === 0) return undefined;
  const known = schemas.list();
  const ceTypes = new Set<string>();
  const keys = new Set<string>();
  for (const raw of types) {
    const type = raw.trim();
    if (keyOfCeType(type) === COMMIT_KEY || type === COMMIT_KEY) {
      throw new ReplayArgumentError(`--type: ${type} is the envelope of multi-event commits; their events are exported one by one under their own types`);
    }
    if (known.some((s) => s.ceType === type)) ceTypes.add(type);
    else if (known.some((s) => s.key === type)) keys.add(type);
    else {
      const names = [...new Set(known.map((s) => s.key).filter((k): k is string => k !== undefined && k !== COMMIT_KEY))].sort();
      throw new ReplayArgumentError(`--type: unknown event type "${type}" (known: ${names.join(', ')}; or a CloudEvents type such as relaygrid.identity.UserRegistered.v3)`);
    }
  }
  return (ceType) => ceTypes.has(ceType) || keys.has(keyOfCeType(ceType) ?? '');
}

/** True when every subject `filter` matches is also matched by `pattern` (NATS wildcards on both sides). */
export function subjectWithin(filter: string, pattern: string): boolean {
  const f = filter.split('.');
  const p = pattern.split('.');
  for (let i = 0; i < f.length; i++) {
    const pt = p[i];
    if (pt === undefined) return false;
    if (pt === '>') return true;
    const ft = f[i];
    if (ft === '>') return false;
    if (pt === '*') continue;
    if (ft === '*' || ft !== pt) return false;
  }
  return f.length === p.length;
}

/** Throws unless `filter` selects subjects the stream holds (a stream that only sources others has none of its own: anything goes). */
export function checkSubjectFilter(stream: string, subjects: readonly string[], filter: string | undefined): void {
  if (filter === undefined || subjects.length === 0) return;
  if (!subjects.some((pattern) => subjectWithin(filter, pattern))) {
    throw new ReplayArgumentError(`--subject: "${filter}" is not within stream ${stream}'s subjects (${subjects.join(', ')})`);
  }
}
