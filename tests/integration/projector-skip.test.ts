import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headers } from '@nats-io/transport-node';
import { uuidv7 } from '../../contracts/ids.js';
import { projectorDeps } from '../../infra/roles/projectors.js';
import { CommandHandler } from '../../producers/event-store/command-handler.js';
import { EventStore } from '../../producers/event-store/event-store.js';
import { usersProjection } from '../../projectors/identity/users.projection.js';
import { Projector } from '../../projectors/runtime/projector.js';
import { skipFailedEvent, SkipRefusedError } from '../../projectors/runtime/skip.js';
import { eventually, isolated, type Isolated } from '../support/isolated.js';
import { testUsers } from '../support/users.js';

describe('operator skip of an event a projector cannot apply', () => {
  let env: Isolated;
  let projector: Projector;
  let run: Promise<void>;

  beforeAll(async () => {
    env = await isolated();
    projector = new Projector({ ...projectorDeps(env.rt), projection: usersProjection, stoppedPollMs: 100 });
    run = projector.run();
  });
  afterAll(async () => {
    await projector.close();
    await run;
    await env.cleanup();
  });

  it('stays stopped until skipped, records who skipped and why, then resumes', async () => {
    const handler = new CommandHandler(new EventStore(env.rt.nats, env.rt.names, env.rt.registry));
    const users = testUsers(env.rt);
    const before = await users.register(handler, { email: 'before@example.org' }, { source: 'test' });
    const h = headers();
    h.set('ce-id', uuidv7());
    h.set('ce-type', 'relaygrid.identity.UserRegistered.v3');
    h.set('ce-time', new Date().toISOString());
    h.set('ce-dataschema', 'sha256:' + '0'.repeat(64));
    const poison = await env.rt.nats.js.publish(env.rt.names.aggregate('identity', 'user', uuidv7()), new Uint8Array([1, 2, 3]), { headers: h });
    const after = await users.register(handler, { email: 'after@example.org' }, { source: 'test' });

    await eventually(() => projector.status().state === 'stopped');
    expect(projector.status()).toMatchObject({ checkpoint: before.seq, failure: { seq: poison.seq } });
    const emails = () => env.rt.db.selectFrom('users').select('email').orderBy('email').execute();
    expect(await emails()).toEqual([{ email: 'before@example.org' }]);

    await expect(skipFailedEvent(env.rt.db, { projector: 'users', seq: poison.seq + 1, actor: 'operator:test', reason: 'wrong seq' })).rejects.toBeInstanceOf(SkipRefusedError);
    await expect(skipFailedEvent(env.rt.db, { projector: 'users', seq: poison.seq, actor: 'operator:test', reason: ' ' })).rejects.toBeInstanceOf(SkipRefusedError);
    await skipFailedEvent(env.rt.db, { projector: 'users', seq: poison.seq, actor: 'operator:test', reason: 'garbage from a broken client' });

    await eventually(async () => (await emails()).length === 2);
    expect(await emails()).toEqual([{ email: 'after@example.org' }, { email: 'before@example.org' }]);
    expect(projector.status()).toMatchObject({ state: 'running', checkpoint: after.seq });
    const failure = await env.rt.db.selectFrom('projector_failures').selectAll().executeTakeFirstOrThrow();
    expect(failure).toMatchObject({ seq: poison.seq, resolution: 'skipped by operator:test: garbage from a broken client' });
    expect(failure.resolved_at).toBeInstanceOf(Date);
    expect(await env.rt.metrics.registry.getSingleMetricAsString('relaygrid_projector_stopped')).toMatch(/projector="users"\} 0/);
  });
});
