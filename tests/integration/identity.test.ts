/**
 * Identity end to end over HTTP against real NATS, Postgres and Redis: accounts,
 * sessions with rotating refresh tokens, roles and ownership, API keys, abuse
 * limits, proxy credentials, privacy, TOTP, and forgetting a person.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeMessage, type StoredEvent } from '../../contracts/envelope.js';
import { startApi, type RunningApi } from '../../infra/roles/api.js';
import { startProjectors, type RunningProjectors } from '../../infra/roles/projectors.js';
import { openText } from '../../producers/identity/crypto/person-keys.js';
import { totpCode } from '../../producers/identity/totp.js';
import { ARGON2_PARAMS } from '../../producers/identity/passwords.js';
import { hash, verify } from '@node-rs/argon2';
import { client } from '../support/http.js';
import { eventually, isolated, type Isolated } from '../support/isolated.js';
import { readLog } from '../support/log.js';

type Tokens = { accessToken: string; refreshToken: string; expiresIn: number };
const PASSWORD = 'correct horse battery';

describe('identity over HTTP', () => {
  let env: Isolated;
  let api: RunningApi;
  let projectors: RunningProjectors;
  let call: ReturnType<typeof client>;
  let ipCounter = 0;
  /** Each test user logs in from its own address, so per-IP limits of one test never touch another. */
  const freshIp = () => `10.1.${Math.floor(++ipCounter / 250)}.${ipCounter % 250}`;

  beforeAll(async () => {
    env = await isolated({ env: { RG_TRUST_PROXY: 'true', RG_REGISTER_LIMIT_PER_IP: '10000' } });
    projectors = startProjectors(env.rt);
    api = await startApi(env.rt, { host: '127.0.0.1', readTimeoutMs: 5000, projectorStatus: () => projectors.projectors.map((p) => p.status()) });
    call = client(api.url);
  });
  afterAll(async () => {
    await api?.close();
    await projectors?.close();
    await env?.cleanup();
  });

  async function register(email: string, password = PASSWORD): Promise<{ id: string; sequence: number }> {
    const res = await call<{ id: string; sequence: number }>('POST', '/v1/auth/register', { body: { email, password, displayName: `Name of ${email}` } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body;
  }

  async function login(email: string, password = PASSWORD, extra: Record<string, string> = {}, ip = freshIp()): Promise<Tokens> {
    const res = await call<Tokens>('POST', '/v1/auth/login', { body: { email, password, ...extra }, ip });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body;
  }

  async function userEvents(userId: string): Promise<StoredEvent[]> {
    return readLog(env.rt, env.rt.names.aggregate('identity', 'user', userId));
  }

  async function makeAdmin(email: string): Promise<{ id: string; token: string }> {
    const created = await api.identity.accounts.register({ email, password: PASSWORD, roles: ['admin', 'client'] }, { actor: 'operator:test' });
    return { id: created.userId, token: (await login(email)).accessToken };
  }

  it('register, verify the email from the outbox event, log in, and read yourself back', async () => {
    const { id, sequence } = await register('Alice@Example.org');
    const tokens = await login('alice@example.org');
    expect(tokens.expiresIn).toBe(300);

    const me = await call('GET', '/v1/auth/me', { token: tokens.accessToken });
    expect(me.body).toMatchObject({ id, email: 'alice@example.org', emailVerified: false, status: 'active', roles: ['client'] });

    const self = await call('GET', `/v1/users/${id}`, { token: tokens.accessToken, headers: { 'x-min-sequence': String(sequence) } });
    expect(self.body).toMatchObject({ id, email: 'alice@example.org', displayName: 'Name of Alice@Example.org', status: 'active', roles: ['client'] });

    // The mail sender reads the token from the outbox event, sealed under the person's key.
    const request = (await userEvents(id)).find((e) => e.type === 'identity.EmailVerificationRequested');
    if (request?.type !== 'identity.EmailVerificationRequested') throw new Error('no verification requested');
    const key = await api.identity.deps.keys.get(id);
    const token = openText(key, id, request.data.tokenSealed);
    expect(openText(key, id, request.data.emailSealed)).toBe('alice@example.org');
    expect((await call('POST', '/v1/auth/verify-email', { body: { token: `${token}x` } })).body).toMatchObject({ code: 'invalid_token' });
    expect((await call('POST', '/v1/auth/verify-email', { body: { token } })).status).toBe(200);
    expect((await call('GET', '/v1/auth/me', { token: tokens.accessToken })).body).toMatchObject({ emailVerified: true });
  });

  it('a refresh token used twice fails, and every token of its family is revoked', async () => {
    const bob = await register('bob@example.org');
    const first = await login('bob@example.org');
    // A refresh keeps the user's list of sessions alive with the session itself.
    const sessionList = `${env.rt.names.namespace}:user-sess:${bob.id}`;
    await env.rt.redis.pexpire(sessionList, 5_000);
    const rotated = await call<Tokens>('POST', '/v1/auth/refresh', { body: { refreshToken: first.refreshToken } });
    expect(rotated.status).toBe(200);
    expect(await env.rt.redis.pttl(sessionList)).toBeGreaterThan(60_000);
    expect(rotated.body.refreshToken).not.toBe(first.refreshToken);
    expect((await call('GET', '/v1/auth/me', { token: rotated.body.accessToken })).status).toBe(200);

    const reuse = await call('POST', '/v1/auth/refresh', { body: { refreshToken: first.refreshToken } });
    expect(reuse.status).toBe(401);
    expect(reuse.body).toMatchObject({ code: 'refresh_token_reused' });
    // The family is gone: the newest refresh token and the access tokens too.
    expect((await call('POST', '/v1/auth/refresh', { body: { refreshToken: rotated.body.refreshToken } })).body).toMatchObject({ code: 'invalid_refresh_token' });
    expect((await call('GET', '/v1/auth/me', { token: rotated.body.accessToken })).body).toMatchObject({ code: 'token_revoked' });
    expect((await call('GET', '/v1/auth/me', { token: first.accessToken })).status).toBe(401);
  });

  it('sessions are listed with device and IP, and one can be revoked; logout ends the current one', async () => {
    await register('carol@example.org');
    const a = await login('carol@example.org', PASSWORD, {}, '10.9.0.1');
    const b = await login('carol@example.org', PASSWORD, {}, '10.9.0.2');
    const list = await call<{ sessions: { id: string; ip: string; current: boolean }[] }>('GET', '/v1/account/sessions', { token: a.accessToken });
    expect(list.body.sessions.map((s) => s.ip).sort()).toEqual(['10.9.0.1', '10.9.0.2']);
    const other = list.body.sessions.find((s) => !s.current);
    expect((await call('DELETE', `/v1/account/sessions/${other?.id}`, { token: a.accessToken })).status).toBe(204);
    expect((await call('GET', '/v1/auth/me', { token: b.accessToken })).status).toBe(401);
    expect((await call('POST', '/v1/auth/refresh', { body: { refreshToken: b.refreshToken } })).status).toBe(401);
    expect((await call('POST', '/v1/auth/logout', { token: a.accessToken })).status).toBe(204);
    expect((await call('GET', '/v1/auth/me', { token: a.accessToken })).status).toBe(401);
  });

  it('wrong passwords: 100 concurrent attempts lock only the attacked account, and unknown emails answer the same', async () => {
    await register('victim@example.org');
    await register('bystander@example.org');
    const attempts = await Promise.all(
      Array.from({ length: 100 }, (_, i) => call('POST', '/v1/auth/login', { body: { email: 'victim@example.org', password: `wrong-${i}` }, ip: `10.66.0.${i % 250}` })),
    );
    expect(attempts.filter((r) => r.status === 200)).toHaveLength(0);
    const codes = attempts.map((r) => (r.body as { code: string }).code);
    expect(new Set(codes).size).toBeGreaterThan(1);
    for (const code of codes) expect(['invalid_credentials', 'rate_limited', 'account_locked']).toContain(code);
    // The per-account limit bounds the password checks an attacker gets, however many addresses they use.
    expect(codes.filter((c) => c === 'invalid_credentials').length).toBeLessThanOrEqual(10);
    // The attacked account is locked, even with the right password…
    expect((await call('POST', '/v1/auth/login', { body: { email: 'victim@example.org', password: PASSWORD }, ip: freshIp() })).status).toBe(429);
    // …while another account logs in as usual.
    await login('bystander@example.org');

    // No oracle: an unknown email gets the same answer and, past the threshold, the same lock.
    const unknown = await call('POST', '/v1/auth/login', { body: { email: 'nobody@example.org', password: 'wrong' }, ip: freshIp() });
    const wrong = await call('POST', '/v1/auth/login', { body: { email: 'bystander@example.org', password: 'wrong' }, ip: freshIp() });
    expect(unknown.status).toBe(wrong.status);
    expect(unknown.body).toEqual(wrong.body);
    for (let i = 0; i < 5; i++) await call('POST', '/v1/auth/login', { body: { email: 'ghost@example.org', password: 'wrong' }, ip: freshIp() });
    expect((await call('POST', '/v1/auth/login', { body: { email: 'ghost@example.org', password: 'wrong' }, ip: freshIp() })).body).toMatchObject({ code: 'account_locked' });
  });

  it('an unknown email costs the same argon2 work as a wrong password', async () => {
    // Two known accounts, so 8 rounds stay under the lockout threshold of 5 per account.
    await register('timing-a@example.org');
    await register('timing-b@example.org');
    const stored = await hash('some password', ARGON2_PARAMS);
    const time = async (attempt: () => Promise<unknown>) => {
      const t0 = performance.now();
      await attempt();
      return performance.now() - t0;
    };
    const login = (email: string) => () => call('POST', '/v1/auth/login', { body: { email, password: 'not the password' }, ip: freshIp() });
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const known: number[] = [];
    const unknown: number[] = [];
    const argon: number[] = [];
    // Interleaved, so all three see the same load (other test files share the 2 cores).
    for (let i = 0; i < 8; i++) {
      known.push(await time(login(i % 2 ? 'timing-a@example.org' : 'timing-b@example.org')));
      unknown.push(await time(login(`unknown-${i}@example.org`)));
      argon.push(await time(() => verify(stored, 'not the password')));
    }
    // An unknown email does a full argon2id verification (no early exit)…
    expect(median(unknown)).toBeGreaterThan(0.7 * median(argon));
    // …so it takes about as long as a wrong password for a real account.
    const ratio = median(known) / median(unknown);
    expect(ratio).toBeGreaterThan(0.4);
    expect(ratio).toBeLessThan(2.5);
  });

  it('clients see only their own resources; other ids answer like unknown ones', async () => {
    const owner = await register('owner@example.org');
    const ownerTokens = await login('owner@example.org');
    await register('intruder@example.org');
    const intruder = (await login('intruder@example.org')).accessToken;
    const ownerSessions = await call<{ sessions: { id: string }[] }>('GET', '/v1/account/sessions', { token: ownerTokens.accessToken });
    const key = await call<{ id: string }>('POST', '/v1/account/api-keys', { token: ownerTokens.accessToken, body: { name: 'script', roles: ['client'] } });

    expect((await call('GET', `/v1/users/${owner.id}`, { token: intruder })).body).toMatchObject({ code: 'user_not_found' });
    expect((await call('DELETE', `/v1/account/sessions/${ownerSessions.body.sessions[0]?.id}`, { token: intruder })).body).toMatchObject({ code: 'session_not_found' });
    expect((await call('DELETE', `/v1/account/api-keys/${key.body.id}`, { token: intruder })).body).toMatchObject({ code: 'api_key_not_found' });
    expect((await call('GET', '/v1/admin/users', { token: intruder })).status).toBe(403);
    expect((await call('POST', `/v1/admin/users/${owner.id}/suspend`, { token: intruder, body: { reason: 'x' } })).status).toBe(403);
    // The owner's things are untouched.
    expect((await call('GET', '/v1/auth/me', { token: ownerTokens.accessToken })).status).toBe(200);
    const keys = await call<{ apiKeys: { id: string; revokedAt: string | null }[] }>('GET', '/v1/account/api-keys', { token: ownerTokens.accessToken, headers: { 'x-min-sequence': '0' } });
    expect(keys.body.apiKeys.find((k) => k.id === key.body.id)?.revokedAt ?? null).toBeNull();
    // Without a token nothing but the public routes answers.
    for (const [method, path] of [['GET', '/v1/auth/me'], ['GET', '/v1/account/sessions'], ['GET', '/v1/account/export'], ['GET', '/v1/account/proxy-credentials'], ['PUT', '/v1/account/privacy'], ['GET', `/v1/users/${owner.id}`]] as const) {
      expect((await call(method, path)).status, `${method} ${path}`).toBe(401);
    }
  });

  it('API keys: shown once, scoped to roles the owner holds, usable, revocable, last use tracked', async () => {
    await register('scripter@example.org');
    const token = (await login('scripter@example.org')).accessToken;
    expect((await call('POST', '/v1/account/api-keys', { token, body: { name: 'too much', roles: ['admin'] } })).body).toMatchObject({ code: 'role_not_held' });
    const issued = await call<{ id: string; apiKey: string; sequence: number }>('POST', '/v1/account/api-keys', { token, body: { name: 'backup job', roles: ['client'] } });
    expect(issued.status).toBe(201);
    expect(issued.body.apiKey).toMatch(/^rgk_/);
    expect((await call('GET', '/v1/auth/me', { token: issued.body.apiKey })).body).toMatchObject({ apiKeyId: issued.body.id, roles: ['client'] });
    const listed = await call<{ apiKeys: Record<string, unknown>[] }>('GET', '/v1/account/api-keys', { token, headers: { 'x-min-sequence': String(issued.body.sequence) } });
    expect(listed.body.apiKeys[0]).toMatchObject({ id: issued.body.id, name: 'backup job', roles: ['client'], revokedAt: null });
    expect(listed.body.apiKeys[0]?.['lastUsedAt']).toBeTruthy();
    // The secret is base64url (it may itself contain '_'): everything after `rgk_<id>_`.
    expect(JSON.stringify(listed.body)).not.toContain(issued.body.apiKey.slice(`rgk_${issued.body.id}_`.length));
    expect((await call('DELETE', `/v1/account/api-keys/${issued.body.id}`, { token })).status).toBe(204);
    expect((await call('GET', '/v1/auth/me', { token: issued.body.apiKey })).body).toMatchObject({ code: 'invalid_api_key' });
    expect((await call('GET', '/v1/auth/me', { token: `${issued.body.apiKey.slice(0, -2)}xx` })).status).toBe(401);
  });

  it('admins suspend and reinstate; every change is an event naming its actor; roles change access', async () => {
    const admin = await makeAdmin('admin@example.org');
    const user = await register('suspect@example.org');
    const userTokens = await login('suspect@example.org');

    expect((await call('PUT', `/v1/admin/users/${user.id}/roles/operator`, { token: admin.token })).status).toBe(200);
    const suspended = await call<{ sequence: number }>('POST', `/v1/admin/users/${user.id}/suspend`, { token: admin.token, body: { reason: 'abuse report 7' } });
    expect(suspended.status).toBe(200);
    // The live access token dies at once, the refresh token and new logins are refused.
    expect((await call('GET', '/v1/auth/me', { token: userTokens.accessToken })).body).toMatchObject({ code: 'token_revoked' });
    expect((await call('POST', '/v1/auth/refresh', { body: { refreshToken: userTokens.refreshToken } })).status).toBe(401);
    expect((await call('POST', '/v1/auth/login', { body: { email: 'suspect@example.org', password: PASSWORD }, ip: freshIp() })).body).toMatchObject({ code: 'account_suspended' });

    const listed = await call<{ users: { id: string; status: string; roles: string[]; suspendedReason: string }[] }>('GET', '/v1/admin/users?q=suspect&status=suspended', {
      token: admin.token,
      headers: { 'x-min-sequence': String(suspended.body.sequence) },
    });
    expect(listed.body.users).toEqual([expect.objectContaining({ id: user.id, status: 'suspended', roles: ['client', 'operator'], suspendedReason: 'abuse report 7' })]);
    const detail = await call<{ id: string; status: string; sessions: unknown[]; apiKeys: unknown[] }>('GET', `/v1/admin/users/${user.id}`, { token: admin.token });
    expect(detail.body).toMatchObject({ id: user.id, status: 'suspended', sessions: [], apiKeys: [] });
    expect((await call('GET', `/v1/admin/users/${user.id}`, { token: userTokens.accessToken })).status).toBe(401);
    const creds = await env.rt.db.selectFrom('proxy_credentials').select('status').where('user_id', '=', user.id).executeTakeFirst();
    expect(creds?.status).toBe('revoked');

    expect((await call('POST', `/v1/admin/users/${user.id}/reinstate`, { token: admin.token })).status).toBe(200);
    const again = await login('suspect@example.org');
    expect((await call('GET', '/v1/admin/users', { token: again.accessToken })).status).toBe(200); // operator now

    const events = await userEvents(user.id);
    const byType = (type: string) => events.find((e) => e.type === type);
    expect(byType('identity.UserRegistered')?.meta.actor).toBe(`user:${user.id}`);
    for (const type of ['identity.RoleGranted', 'identity.UserSuspended', 'identity.UserReinstated']) expect(byType(type)?.meta.actor, type).toBe(`user:${admin.id}`);
  });

  it('proxy credentials are issued at registration and rotate as a whole', async () => {
    const user = await register('proxy@example.org');
    const token = (await login('proxy@example.org')).accessToken;
    const first = await call<{ generation: number; vless: { id: string }; trojan: { password: string }; http: { username: string; password: string } }>(
      'GET',
      '/v1/account/proxy-credentials',
      { token, headers: { 'x-min-sequence': String(user.sequence) } },
    );
    expect(first.body).toMatchObject({ generation: 1, status: 'active' });
    expect(first.body.vless.id).toMatch(/^[0-9a-f-]{36}$/);
    const rotated = await call<{ sequence: number }>('POST', '/v1/account/proxy-credentials', { token });
    expect(rotated.status).toBe(201);
    const second = await call<typeof first.body>('GET', '/v1/account/proxy-credentials', { token, headers: { 'x-min-sequence': String(rotated.body.sequence) } });
    expect(second.body.generation).toBe(2);
    expect(second.body.vless.id).not.toBe(first.body.vless.id);
    expect(second.body.trojan.password).not.toBe(first.body.trojan.password);
    expect(second.body.http.username).toBe(first.body.http.username);
    // Secrets are sealed in the log: the raw message holds neither.
    const raw = await env.rt.nats.jsm.direct.getMessage(env.rt.names.stream('identity'), { seq: rotated.body.sequence });
    expect(Buffer.from(raw!.data).toString('latin1')).not.toContain(second.body.trojan.password);
  });

  it('privacy settings: read, change, and a bad value is a 400 naming the field', async () => {
    await register('private@example.org');
    const token = (await login('private@example.org')).accessToken;
    expect((await call('GET', '/v1/account/privacy', { token })).body).toEqual({ presence: 'contacts', readReceipts: 'contacts' });
    expect((await call('PUT', '/v1/account/privacy', { token, body: { presence: 'nobody', readReceipts: 'everyone' } })).status).toBe(200);
    expect((await call('GET', '/v1/account/privacy', { token })).body).toEqual({ presence: 'nobody', readReceipts: 'everyone' });
    const bad = await call('PUT', '/v1/account/privacy', { token, body: { presence: 'friends', readReceipts: 'everyone' } });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'invalid_body', field: 'presence' });
  });

  it('TOTP: enroll, confirm, then logins need a code or a one-time recovery code', async () => {
    await register('totp@example.org');
    const token = (await login('totp@example.org')).accessToken;
    const { secret } = (await call<{ secret: string; otpauthUri: string }>('POST', '/v1/account/totp', { token })).body;
    expect((await call('POST', '/v1/account/totp/confirm', { token, body: { code: '000000' } })).body).toMatchObject({ code: 'invalid_totp' });
    const confirmed = await call<{ recoveryCodes: string[] }>('POST', '/v1/account/totp/confirm', { token, body: { code: totpCode(secret, Date.now()) } });
    expect(confirmed.body.recoveryCodes).toHaveLength(10);

    const ip = freshIp();
    expect((await call('POST', '/v1/auth/login', { body: { email: 'totp@example.org', password: PASSWORD }, ip })).body).toMatchObject({ code: 'totp_required' });
    const recovery = confirmed.body.recoveryCodes[0]!;
    await login('totp@example.org', PASSWORD, { totp: recovery });
    expect((await call('POST', '/v1/auth/login', { body: { email: 'totp@example.org', password: PASSWORD, totp: recovery }, ip })).body).toMatchObject({ code: 'invalid_totp' });
  });

  it('bad input is a 400 naming the field and appends nothing', async () => {
    const before = (await env.rt.nats.jsm.streams.info(env.rt.names.stream('identity'))).state.messages;
    const short = await call('POST', '/v1/auth/register', { body: { email: 'short@example.org', password: 'short' } });
    expect(short.body).toMatchObject({ code: 'invalid_body', field: 'password' });
    expect((await call('POST', '/v1/auth/register', { body: { email: 'nope', password: PASSWORD } })).body).toMatchObject({ field: 'email' });
    expect((await call('POST', '/v1/auth/register', { body: { email: 'x@example.org', password: PASSWORD, admin: true } })).body).toMatchObject({ field: 'admin' });
    expect((await call('GET', '/v1/auth/me', { headers: { authorization: 'Basic abc' } })).body).toMatchObject({ code: 'invalid_authorization' });
    expect((await call('GET', '/v1/auth/me', { token: 'not.a.jwt' })).body).toMatchObject({ code: 'invalid_token' });
    expect((await env.rt.nats.jsm.streams.info(env.rt.names.stream('identity'))).state.messages).toBe(before);
    await register('dup@example.org');
    expect((await call('POST', '/v1/auth/register', { body: { email: 'DUP@example.org', password: PASSWORD } })).body).toMatchObject({ code: 'email_taken' });
  });

  it('changing the password needs the current one and signs out the other sessions', async () => {
    await register('rotate@example.org');
    const here = await login('rotate@example.org');
    const elsewhere = await login('rotate@example.org');
    const wrong = await call('PUT', '/v1/account/password', { token: here.accessToken, body: { currentPassword: 'not it', newPassword: 'a brand new passphrase' } });
    expect(wrong.status).toBe(403);
    expect(wrong.body).toMatchObject({ code: 'wrong_password' });
    expect((await call('PUT', '/v1/account/password', { token: here.accessToken, body: { currentPassword: PASSWORD, newPassword: 'a brand new passphrase' } })).status).toBe(200);
    expect((await call('GET', '/v1/auth/me', { token: here.accessToken })).status).toBe(200);
    expect((await call('GET', '/v1/auth/me', { token: elsewhere.accessToken })).body).toMatchObject({ code: 'token_revoked' });
    expect((await call('POST', '/v1/auth/refresh', { body: { refreshToken: elsewhere.refreshToken } })).status).toBe(401);
    expect((await call('POST', '/v1/auth/login', { body: { email: 'rotate@example.org', password: PASSWORD }, ip: freshIp() })).status).toBe(401);
    await login('rotate@example.org', 'a brand new passphrase');
  });

  it('password confirmations are rate-limited, so a stolen access token cannot guess the password', async () => {
    await register('guarded@example.org');
    const token = (await login('guarded@example.org')).accessToken;
    const answers = [];
    for (let i = 0; i < 11; i++) answers.push((await call('DELETE', '/v1/account', { token, body: { password: `guess ${i}` } })).body);
    expect(answers.slice(0, 10).every((a) => (a as { code: string }).code === 'wrong_password')).toBe(true);
    expect(answers[10]).toMatchObject({ code: 'rate_limited' });
    expect((await call('GET', '/v1/auth/me', { token })).body).toMatchObject({ status: 'active' });
  });

  it('changing the email moves the reservation: the old address is free, the new one unverified and taken', async () => {
    const user = await register('old-address@example.org');
    await register('taken@example.org');
    const token = (await login('old-address@example.org')).accessToken;
    expect((await call('PUT', '/v1/account/email', { token, body: { password: PASSWORD, email: 'taken@example.org' } })).body).toMatchObject({ code: 'email_taken' });
    const changed = await call<{ sequence: number }>('PUT', '/v1/account/email', { token, body: { password: PASSWORD, email: 'New-Address@example.org' } });
    expect(changed.status).toBe(200);
    expect((await call('GET', '/v1/auth/me', { token })).body).toMatchObject({ email: 'new-address@example.org', emailVerified: false });
    await login('new-address@example.org');
    expect((await call('POST', '/v1/auth/login', { body: { email: 'old-address@example.org', password: PASSWORD }, ip: freshIp() })).status).toBe(401);
    expect((await call('POST', '/v1/auth/register', { body: { email: 'old-address@example.org', password: PASSWORD } })).status).toBe(201);
    const row = await call('GET', `/v1/users/${user.id}`, { token, headers: { 'x-min-sequence': String(changed.body.sequence) } });
    expect(row.body).toMatchObject({ email: 'new-address@example.org', emailVerified: false });
  });

  it('OpenAPI at /docs lists the routes with their schemas', async () => {
    const docs = await call<{ openapi: string; paths: Record<string, unknown> }>('GET', '/docs');
    expect(docs.body.openapi).toMatch(/^3\./);
    for (const path of ['/v1/auth/register', '/v1/auth/login', '/v1/auth/refresh', '/v1/account/sessions/{id}', '/v1/admin/users', '/v1/account/proxy-credentials']) {
      expect(docs.body.paths, path).toHaveProperty([path]);
    }
  });

  it('DELETE /v1/account: the read models drop the email, and a rebuild from the log cannot bring it back', async () => {
    const email = 'forget-me@example.org';
    const user = await register(email);
    const tokens = await login(email);
    const exported = await call<{ events: { type: string; data: Record<string, unknown> }[] }>('GET', '/v1/account/export', { token: tokens.accessToken });
    expect(JSON.stringify(exported.body)).toContain(email);
    expect(exported.body.events.map((e) => e.type)).toContain('relaygrid.identity.UserRegistered.v3');

    expect((await call('DELETE', '/v1/account', { token: tokens.accessToken, body: { password: 'wrong password' } })).status).toBe(403);
    const deleted = await call<{ sequence: number }>('DELETE', '/v1/account', { token: tokens.accessToken, body: { password: PASSWORD } });
    expect(deleted.status).toBe(200);
    expect((await call('GET', '/v1/auth/me', { token: tokens.accessToken })).status).toBe(401);
    expect((await call('POST', '/v1/auth/login', { body: { email, password: PASSWORD }, ip: freshIp() })).body).toMatchObject({ code: 'invalid_credentials' });

    const admin = await makeAdmin('dpo@example.org');
    const row = await call('GET', `/v1/users/${user.id}`, { token: admin.token, headers: { 'x-min-sequence': String(deleted.body.sequence) } });
    expect(row.body).toMatchObject({ id: user.id, status: 'forgotten', email: null, displayName: null });
    expect(await databaseContains(email)).toBe(false);

    // Rebuild every read model from the start of the log.
    await projectors.close();
    await env.rt.db.deleteFrom('projector_checkpoints').execute();
    for (const table of ['users', 'proxy_credentials', 'api_keys'] as const) await env.rt.db.deleteFrom(table).execute();
    projectors = startProjectors(env.rt);
    const rebuilt = await eventually(async () => {
      const answer = await call('GET', `/v1/users/${user.id}`, { token: admin.token });
      return answer.status === 200 ? answer : undefined;
    });
    expect(rebuilt.body).toMatchObject({ status: 'forgotten', email: null });
    await eventually(() => projectors.projectors.every((p) => p.status().lag === 0 && p.status().state === 'running'));
    const alice = await env.rt.db.selectFrom('users').select('email').where('email', '=', 'alice@example.org').executeTakeFirst();
    expect(alice?.email).toBe('alice@example.org'); // everyone else's data came back
    expect(await databaseContains(email)).toBe(false);

    // The log is unchanged and never held the address in the clear.
    const messages = await readRaw();
    expect(messages.some((m) => m.includes(email))).toBe(false);
    // The address is free again.
    expect((await call('POST', '/v1/auth/register', { body: { email, password: PASSWORD } })).status).toBe(201);
  });

  /** Any text column of any table in the test database holding the string. */
  async function databaseContains(needle: string): Promise<boolean> {
    const { rows } = await env.rt.pool.query<{ table_name: string; column_name: string }>(
      `select table_name, column_name from information_schema.columns where table_schema = 'public' and data_type in ('text', 'character varying', 'ARRAY', 'jsonb')`,
    );
    for (const { table_name, column_name } of rows) {
      const hit = await env.rt.pool.query(`select 1 from "${table_name}" where "${column_name}"::text like $1 limit 1`, [`%${needle}%`]);
      if (hit.rowCount) return true;
    }
    return false;
  }

  async function readRaw(): Promise<string[]> {
    const consumer = await env.rt.nats.js.consumers.get(env.rt.names.stream('identity'));
    const out: string[] = [];
    const messages = await consumer.consume({ max_messages: 1000 });
    for await (const msg of messages) {
      out.push(Buffer.from(msg.data).toString('latin1') + JSON.stringify([...(msg.headers ?? [])]));
      decodeMessage(env.rt.registry, { seq: msg.seq, subject: msg.subject, headers: msg.headers, data: msg.data });
      if (msg.info.pending === 0) break;
    }
    await messages.close();
    return out;
  }
});
