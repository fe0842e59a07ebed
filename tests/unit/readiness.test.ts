import { describe, expect, it } from 'vitest';
import { projectorCheck } from '../../infra/readiness.js';
import type { ProjectorStatus } from '../../projectors/runtime/projector.js';

const status = (s: Partial<ProjectorStatus>): ProjectorStatus => ({ name: 'users', state: 'running', checkpoint: 0, lag: 0, ...s });

describe('a projector is ready when it runs or stands by with its lag known', () => {
  it.each([
    [{ state: 'running' }, { ok: true }],
    [{ state: 'running', lag: 5000 }, { ok: true }],
    [{ state: 'standby' }, { ok: true, detail: 'standby: another instance holds the lock' }],
    [{ state: 'running', lag: null }, { ok: false, detail: 'lag not measured yet' }],
    [{ state: 'standby', lag: null }, { ok: false, detail: 'lag not measured yet' }],
    [{ state: 'starting' }, { ok: false, detail: 'starting (or retrying: NATS or Postgres unavailable, or its stream missing)' }],
    [{ state: 'closed' }, { ok: false, detail: 'closed' }],
    [{ state: 'stopped', failure: { seq: 7, eventId: null, eventType: null, error: 'bad bytes' } }, { ok: false, detail: 'stopped at sequence 7: bad bytes' }],
  ] as [Partial<ProjectorStatus>, object][])('%o → %o', (s, expected) => {
    expect(projectorCheck(status(s))).toEqual(expected);
  });
});
