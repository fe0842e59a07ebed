/**
 * Blue/green rebuilds against real NATS and Postgres: the rebuilt read models
 * equal the live ones table by table, reads never fail while a rebuild runs
 * (even with writes arriving), the live projector carries on afterwards
 * without applying anything twice, and index names survive.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { openIdentity } from '../../infra/roles/api.js';
import { startProjectors, type RunningProjectors } from '../../infra/roles/projectors.js';
import type { Identity } from '../../producers/identity/identity.js';
import { caughtUp, rebuild } from '../../replay/rebuild.js';
import { PROJECTIONS } from '../../projectors/catalogue.js';
import { eventually, isolated, type Isolated } from '../support/isolated.js';

const TABLES = ['users', 'proxy_credentials', 'api_keys'] as const;

describe('replay rebuild', () => {
  let env: Isolated;
  let identity: Identity;
  let live: RunningProjectors;

  beforeAll(async () => {
    env = await isolated();
    identity = openIdentity(env.rt);
    await identity.start();
    const actor = { actor: 'operator:test' };
    for (let i = 0; i < 12; i++) {
      const { userId } = await identity.accounts.register({ email: `r${i}@example.org`, password: 'rebuild password', displayName: i % 2 ? `R ${i}` : null });
      if (i % 3 === 0) await identity.admin.suspend(userId, `reason ${i}`, actor);
      if (i % 4 === 0) await identity.accounts.rotateProxyCredentials(userId, actor).catch(() => undefined);
      if (i % 5 === 0) await identity.admin.issueApiKey(userId, `key ${i}`, ['client'], actor).catch(() => undefined);
      if (i === 7) await identity.accounts.forget(userId, actor);
    }
    live = startProjectors(env.rt);
    await settled();
  });
  afterAll(async () => {
    await live?.close();
    await identity?.stop();
    await env?.cleanup();
  });

  /** Every live projector has applied every message of its filter: "running with no lag" alone can precede its first batch. */
  async function settled(): Promise<void> {
    await eventually(async () => {
      const last = (await env.rt.nats.jsm.streams.info(env.rt.names.stream('identity'))).state.last_seq;
      for (const p of live.projectors) {
        const row = await env.rt.db.selectFrom('projector_checkpoints').select('seq').where('projector', '=', p.name).executeTakeFirst();
        if (!row || p.status().state !== 'running' || !(await caughtUp(env.rt, PROJECTIONS.get(p.name)!, row.seq, last))) return false;
      }
      return true;
    }, 20_000);
  }

  async function snapshot(): Promise<Record<string, unknown[]>> {
    const out: Record<string, unknown[]> = {};
    for (const table of TABLES) out[table] = (await sql`select * from ${sql.table(table)} order by 1`.execute(env.rt.db)).rows;
    return out;
  }

  it('rebuilt tables equal the live ones, table by table, and keep their index names', async () => {
    const before = await snapshot();
    expect(before['users']).toHaveLength(12);
    const indexesBefore = (await sql<{ indexname: string }>`select indexname from pg_indexes where schemaname = 'public' and tablename = 'users' order by 1`.execute(env.rt.db)).rows;
    for (const name of ['users', 'proxy-credentials', 'api-keys']) {
      const report = await rebuild(env.rt, name);
      expect(report.messages).toBeGreaterThan(0);
    }
    await settled();
    expect(await snapshot()).toEqual(before);
    const indexesAfter = (await sql<{ indexname: string }>`select indexname from pg_indexes where schemaname = 'public' and tablename = 'users' order by 1`.execute(env.rt.db)).rows;
    expect(indexesAfter).toEqual(indexesBefore);
    const leftovers = await sql<{ nspname: string }>`select nspname from pg_namespace where nspname like 'rebuild_%'`.execute(env.rt.db);
    expect(leftovers.rows).toEqual([]);
  });

  it('reads keep working and writes keep landing while a rebuild switches tables', async () => {
    let reading = true;
    const failures: unknown[] = [];
    let reads = 0;
    const reader = (async () => {
      while (reading) {
        try {
          await env.rt.db.selectFrom('users').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
          reads++;
        } catch (err) {
          failures.push(err);
        }
      }
    })();
    let writing = true;
    let written = 0;
    let lastSeq = 0;
    const writer = (async () => {
      while (writing) {
        lastSeq = (await identity.accounts.register({ email: `during-${written}@example.org`, password: 'rebuild password' })).seq;
        written++;
      }
    })();
    await rebuild(env.rt, 'users');
    writing = false;
    await writer;
    await settled();
    expect(lastSeq).toBeGreaterThan(0);
    reading = false;
    await reader;
    expect(failures).toEqual([]);
    expect(reads).toBeGreaterThan(0);
    const during = await env.rt.db.selectFrom('users').select('email').where('email', 'like', 'during-%').execute();
    expect(during).toHaveLength(written);
    // Nothing applied twice, nothing lost: the live projector's table still equals a fresh rebuild of it.
    const now = await snapshot();
    await rebuild(env.rt, 'users');
    await settled();
    expect((await snapshot())['users']).toEqual(now['users']);
  });

  it('refuses an unknown projector by name', async () => {
    await expect(rebuild(env.rt, 'nope')).rejects.toThrow(`unknown projector "nope" (known: ${[...PROJECTIONS.keys()].join(', ')})`);
  });
});
