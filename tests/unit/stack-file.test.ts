/** What the commands take from `.relaygrid/stack.json`, and what they refuse to take. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { envFromStack, readStack, recordableUrl, recordStack, type StackRecord } from '../../infra/stack/stack-file.js';

const KEY = Buffer.alloc(32, 1).toString('base64');
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rg-stack-file-'));
  writeFileSync(join(dir, 'master.key'), `${KEY}\n`, { mode: 0o600 });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const record = (over: Partial<StackRecord> = {}): StackRecord => ({
  pid: process.pid,
  startedAt: new Date().toISOString(),
  urls: { NATS_URL: 'nats://127.0.0.1:4300/', DATABASE_URL: 'postgres://postgres:relaygrid@127.0.0.1:5433/relaygrid', REDIS_URL: 'redis://127.0.0.1:6400/' },
  namespace: 'rg',
  masterKeyFile: 'master.key',
  ...over,
});

describe('envFromStack', () => {
  it('without a record changes nothing and says nothing', () => {
    expect(envFromStack({ A: '1' }, dir)).toEqual({ env: { A: '1' } });
  });

  it('fills only the unset variables from a live record, and names them', () => {
    const remove = recordStack(dir, record());
    try {
      const { env, notice } = envFromStack({ REDIS_URL: 'redis://elsewhere:6379', RG_MASTER_KEY: '' }, dir);
      expect(env).toMatchObject({ NATS_URL: 'nats://127.0.0.1:4300/', DATABASE_URL: 'postgres://postgres:relaygrid@127.0.0.1:5433/relaygrid', REDIS_URL: 'redis://elsewhere:6379', RG_NAMESPACE: 'rg', RG_MASTER_KEY: KEY });
      expect(notice).toMatch(/^NATS_URL, DATABASE_URL, RG_NAMESPACE, RG_MASTER_KEY \(the key in .*master\.key\) from .*stack\.json: the stack `npm start` runs here \(pid \d+\)$/);
    } finally {
      remove();
    }
    expect(readStack(dir)).toBeUndefined();
  });

  it('ignores the record of a stack that is gone, and says so', () => {
    // A pid far above any the kernel hands out (pid_max is at most 2^22).
    writeFileSync(join(dir, 'stack.json'), JSON.stringify(record({ pid: 2 ** 30 })));
    const { env, notice } = envFromStack({}, dir);
    expect(env).toEqual({});
    expect(notice).toMatch(/^ignoring .*stack\.json: the stack it records \(pid 1073741824\) is no longer running/);
  });

  it('asks for a variable that start took from its environment with a password', () => {
    const remove = recordStack(dir, record({ urls: { NATS_URL: 'nats://127.0.0.1:4300/', DATABASE_URL: null, REDIS_URL: 'redis://127.0.0.1:6400/' } }));
    try {
      expect(() => envFromStack({}, dir)).toThrow(/^DATABASE_URL: `npm start` here \(pid \d+\) took it from its environment, and it holds a password/);
      expect(envFromStack({ DATABASE_URL: 'postgres://app:secret@db:5432/x' }, dir).env['DATABASE_URL']).toBe('postgres://app:secret@db:5432/x');
    } finally {
      remove();
    }
  });
});

describe('recordableUrl', () => {
  it('records what start chose, and URLs from the environment unless they hold a password', () => {
    expect(recordableUrl('postgres://postgres:relaygrid@127.0.0.1:5433/relaygrid', false)).toBe('postgres://postgres:relaygrid@127.0.0.1:5433/relaygrid');
    expect(recordableUrl('nats://a:4222,nats://b:4222', true)).toBe('nats://a:4222,nats://b:4222');
    expect(recordableUrl('nats://a:4222,nats://svc:pw@b:4222', true)).toBeNull();
  });
});
