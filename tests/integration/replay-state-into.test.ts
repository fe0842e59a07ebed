/**
 * Time travel and scratch copies: an aggregate's state at a sequence or an
 * instant, with the events that made it; all projectors over a range into
 * another database, pseudonymous; and one clear line for bad arguments.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentity } from '../../infra/roles/api.js';
import type { Identity } from '../../producers/identity/identity.js';
import type { UserState } from '../../producers/identity/user.decider.js';
import { replayInto } from '../../replay/into.js';
import { stateAt } from '../../replay/state.js';
import { createDb, createPool } from '../../schema/db.js';
import { runCli } from '../support/cli.js';
import { isolated, scratchDatabase, type Isolated } from '../support/isolated.js';

describe('replay state and replay into', () => {
  let env: Isolated;
  let identity: Identity;
  let userId: string;
  const seqs: Record<string, number> = {};
  let beforeSuspension: Date;
  let scratch: { url: string; drop(): Promise<void> };

  beforeAll(async () => {
    env = await isolated();
    identity = openIdentity(env.rt);
    await identity.start();
    const actor = { actor: 'user:admin-1' };
    const registered = await identity.accounts.register({ email: 'travel@example.org', password: 'time travel pass' });
    userId = registered.userId;
    seqs['registered'] = registered.seq;
    seqs['granted'] = await identity.admin.grantRole(userId, 'analyst', actor);
    await new Promise((r) => setTimeout(r, 20));
    beforeSuspension = new Date();
    await new Promise((r) => setTimeout(r, 20));
    seqs['suspended'] = await identity.admin.suspend(userId, 'chargeback', actor);
    await identity.accounts.register({ email: 'second@example.org', password: 'time travel pass' });
    scratch = await scratchDatabase();
  });
  afterAll(async () => {
    await identity?.stop();
    await env?.cleanup();
    await scratch?.drop();
  });

  it('state at a sequence and at an instant, with the events that made it and who acted', async () => {
    const subject = env.rt.names.aggregate('identity', 'user', userId);
    const atGrant = await stateAt(env.rt, subject, { seq: seqs['granted']! });
    expect((atGrant.state as UserState).roles).toEqual(['client', 'analyst']);
    expect((atGrant.state as UserState).status).toBe('active');
    expect(atGrant.events.map((e) => e.type)).toEqual([
      'relaygrid.identity.UserRegistered.v3',
      'relaygrid.identity.ProxyCredentialsIssued.v1',
      'relaygrid.identity.EmailVerificationRequested.v1',
      'relaygrid.identity.RoleGranted.v1',
    ]);
    expect(atGrant.events.at(-1)?.actor).toBe('user:admin-1');
    expect((await stateAt(env.rt, subject, { time: beforeSuspension })).sequence).toBe(seqs['granted']);
    const now = await stateAt(env.rt, subject);
    expect((now.state as UserState).status).toBe('suspended');
    expect(now.sequence).toBe(seqs['suspended']);
    expect((await stateAt(env.rt, subject, { seq: 1 })).events.length).toBeLessThanOrEqual(1);
  });

  it('into: every projector over a range into a scratch database, with personal data left sealed', async () => {
    const applied = await replayInto(env.rt, scratch.url, undefined, { seq: seqs['granted']! });
    expect(applied['users']).toBeGreaterThan(0);
    const pool = createPool(scratch.url, 1);
    const db = createDb(pool);
    try {
      const users = await db.selectFrom('users').selectAll().execute();
      // The range ends before the suspension and before the second registration.
      expect(users).toHaveLength(1);
      expect(users[0]).toMatchObject({ id: userId, status: 'active', roles: ['client', 'analyst'], email: null, display_name: null });
      expect(await db.selectFrom('proxy_credentials').selectAll().execute()).toEqual([]);
      const checkpoint = await db.selectFrom('projector_checkpoints').select('seq').where('projector', '=', 'users').executeTakeFirst();
      expect(checkpoint?.seq).toBe(seqs['granted']);
    } finally {
      await db.destroy();
    }
    // Production's read models were not touched.
    expect(await env.rt.db.selectFrom('users').selectAll().execute()).toEqual([]);
  });

  const cli = (args: string[]) => runCli(env.config, ['replay', ...args]);

  it('the CLI prints the state as JSON without sealed bytes', async () => {
    const result = await cli(['state', env.rt.names.aggregate('identity', 'user', userId), '--at', String(seqs['registered'])]);
    expect(result.code, result.stderr).toBe(0);
    const parsed = JSON.parse(result.stdout) as { state: { emailSealed: string; roles: string[] } };
    expect(parsed.state.roles).toEqual(['client']);
    expect(parsed.state.emailSealed).toMatch(/^<\d+ bytes>$/);
  });

  it.each([
    [['state', 'not.a.subject'], /<aggregate subject>: "not.a.subject" is not an aggregate subject/],
    [['state', 'x', '--at', 'yesterday'], /--at: "yesterday" is neither a stream sequence nor an ISO time/],
    [['rebuild', 'nope'], /unknown projector "nope"/],
    [['into'], /--database-url: a postgres:\/\/ URL/],
    [['into', '--database-url', 'postgres://postgres@127.0.0.1:5432/rg_does_not_exist_x'], /--database-url: cannot prepare rg_does_not_exist_x/],
    [['frobnicate'], /unknown replay command "frobnicate"/],
  ])('bad arguments %j: one line, exit 2', async (args, message) => {
    const result = await cli(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
