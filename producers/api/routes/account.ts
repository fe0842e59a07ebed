/**
 * `/v1/account/*`: the caller's own account. Every route acts on the caller's
 * id from the token; ids in paths (sessions, API keys) must belong to the
 * caller, and someone else's answers exactly like an unknown one (404).
 */
import type { FastifyInstance } from 'fastify';
import type { Visibility } from '../../identity/privacy.js';
import { actorOf, principalOf, SIGNED_IN } from '../authenticate.js';
import type { ApiDeps } from '../app.js';
import { MIN_SEQUENCE_HEADER, SEQUENCE_HEADER, waitForProjection } from '../read-your-writes.js';
import { HttpError } from '../errors.js';
import { body, EMAIL, idParams, PASSWORD, ROLE, UUID, VISIBILITY } from './schemas.js';
import { apiKeyView, API_KEY, SESSION_PROPERTIES, sessionView } from './views.js';
import { answers, BOOLEAN, INTEGER, listOf, NO_CONTENT, READS, SEQUENCE, shape, STRING, STRINGS, TIME, WRITTEN } from '../contract.js';

/** Everything held about a person: its shape is the export's own (producers/identity/accounts.ts). */
const EXPORT = { type: 'object', additionalProperties: true };
const LOGIN = shape({ username: STRING, password: STRING });
const PROXY_CREDENTIALS = shape({
  generation: INTEGER,
  status: { type: 'string', enum: ['active', 'revoked'] },
  vless: shape({ id: STRING }),
  trojan: shape({ password: STRING }),
  http: LOGIN,
  socks5: LOGIN,
  issuedAt: TIME,
  sequence: SEQUENCE,
});
const PRIVACY_PROPERTIES = { presence: VISIBILITY, readReceipts: VISIBILITY };
const PRIVACY = shape(PRIVACY_PROPERTIES);

export function accountRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { identity } = deps;
  const tags = ['account'];
  const access = SIGNED_IN;

  app.get('/v1/account/sessions', { config: { access }, schema: { tags, summary: 'Live sessions: device, IP, last seen', response: answers({ 200: shape({ sessions: listOf(shape({ ...SESSION_PROPERTIES, current: BOOLEAN })) }) }) } }, async (request) => {
    const principal = principalOf(request);
    const sessions = await identity.deps.sessions.list(principal.userId);
    return {
      sessions: sessions.map((s) => ({ ...sessionView(s), current: s.id === principal.sessionId })),
    };
  });

  app.delete<{ Params: { id: string } }>('/v1/account/sessions/:id', { config: { access }, schema: { tags, summary: 'Revoke one of your sessions', response: answers({ 204: NO_CONTENT }, [404]), params: idParams } }, async (request, reply) => {
    await identity.auth.revokeSession(principalOf(request).userId, request.params.id);
    return reply.status(204).send();
  });

  app.get('/v1/account/export', { config: { access }, schema: { tags, summary: 'Everything held about you, as JSON', response: answers({ 200: EXPORT }) } }, async (request, reply) => {
    const data = await identity.accounts.export(principalOf(request).userId);
    return reply.header('content-disposition', 'attachment; filename="relaygrid-export.json"').send(data);
  });

  app.delete<{ Body: { password: string } }>(
    '/v1/account',
    { config: { access }, schema: { tags, summary: 'Delete your account: your personal data becomes unreadable everywhere', response: answers({ 200: shape({ deleted: BOOLEAN, sequence: SEQUENCE }) }, [409, 410, 422, 429]), body: body({ password: { type: 'string', minLength: 1, maxLength: 256 } }, ['password']) } },
    async (request, reply) => {
      const { userId } = principalOf(request);
      await identity.accounts.checkPassword(userId, request.body.password);
      const result = await identity.accounts.forget(userId, actorOf(request));
      return reply.header(SEQUENCE_HEADER, String(result.seq)).status(200).send({ deleted: true, sequence: result.seq });
    },
  );

  app.get('/v1/account/proxy-credentials', { config: { access: ['client'] }, schema: { tags, summary: 'Your VLESS, Trojan and HTTP/SOCKS5 credentials', response: answers({ 200: PROXY_CREDENTIALS }, [...READS, 404]) } }, async (request) => {
    await waitForProjection(deps, 'proxy-credentials', request.headers[MIN_SEQUENCE_HEADER]);
    const row = await deps.db.selectFrom('proxy_credentials').selectAll().where('user_id', '=', principalOf(request).userId).executeTakeFirst();
    if (!row) throw new HttpError(404, 'credentials_not_found', 'no proxy credentials yet: retry with x-min-sequence from your last write');
    return {
      generation: row.generation,
      status: row.status,
      vless: { id: row.vless_id },
      trojan: { password: row.trojan_password },
      http: { username: row.proxy_username, password: row.proxy_password },
      socks5: { username: row.proxy_username, password: row.proxy_password },
      issuedAt: row.issued_at.toISOString(),
      sequence: row.last_seq,
    };
  });

  app.post('/v1/account/proxy-credentials', { config: { access: ['client'] }, schema: { tags, summary: 'Rotate your proxy credentials (the old ones stop working)', response: answers({ 201: WRITTEN }, [410, 422]) } }, async (request, reply) => {
    const result = await identity.accounts.rotateProxyCredentials(principalOf(request).userId, actorOf(request));
    return reply.status(201).header(SEQUENCE_HEADER, String(result.seq)).send({ sequence: result.seq });
  });

  app.get('/v1/account/privacy', { config: { access }, schema: { tags, summary: 'Who may see your presence and read receipts', response: answers({ 200: PRIVACY }) } }, async (request) => {
    const state = await identity.deps.loadUser(principalOf(request).userId);
    return state.privacy;
  });

  app.put<{ Body: { presence: Visibility; readReceipts: Visibility } }>(
    '/v1/account/privacy',
    { config: { access }, schema: { tags, summary: 'Change who may see your presence and read receipts', response: answers({ 200: shape({ ...PRIVACY_PROPERTIES, sequence: SEQUENCE }) }, [410, 422]), body: body({ presence: VISIBILITY, readReceipts: VISIBILITY }, ['presence', 'readReceipts']) } },
    async (request) => {
      const result = await identity.accounts.changePrivacy(principalOf(request).userId, request.body.presence, request.body.readReceipts, actorOf(request));
      return { presence: request.body.presence, readReceipts: request.body.readReceipts, sequence: result.seq };
    },
  );

  app.put<{ Body: { currentPassword: string; newPassword: string } }>(
    '/v1/account/password',
    {
      config: { access },
      schema: { tags, summary: 'Change your password; your other sessions end', response: answers({ 200: WRITTEN }, [410, 422, 429]), body: body({ currentPassword: { type: 'string', minLength: 1, maxLength: 256 }, newPassword: PASSWORD }, ['currentPassword', 'newPassword']) },
    },
    async (request) => {
      const principal = principalOf(request);
      const result = await identity.accounts.changePassword(principal.userId, request.body.currentPassword, request.body.newPassword, {
        ...actorOf(request),
        ...(principal.sessionId ? { sessionId: principal.sessionId } : {}),
      });
      return { sequence: result.seq };
    },
  );

  app.put<{ Body: { password: string; email: string } }>(
    '/v1/account/email',
    { config: { access }, schema: { tags, summary: 'Change your email address (unverified until confirmed)', response: answers({ 200: WRITTEN }, [409, 410, 422, 429]), body: body({ password: { type: 'string', minLength: 1, maxLength: 256 }, email: EMAIL }, ['password', 'email']) } },
    async (request) => {
      const result = await identity.accounts.changeEmail(principalOf(request).userId, request.body.password, request.body.email, actorOf(request));
      return { sequence: result.seq };
    },
  );

  app.post('/v1/account/totp', { config: { access }, schema: { tags, summary: 'Begin TOTP enrollment: a secret and otpauth URI for your app', response: answers({ 200: shape({ secret: STRING, otpauthUri: STRING }) }, [409]) } }, (request) => identity.auth.beginTotp(principalOf(request).userId));

  app.post<{ Body: { code: string } }>(
    '/v1/account/totp/confirm',
    { config: { access }, schema: { tags, summary: 'Confirm TOTP with a code; answers your recovery codes, once', response: answers({ 200: shape({ recoveryCodes: STRINGS, sequence: SEQUENCE }) }, [409, 410, 422]), body: body({ code: { type: 'string', pattern: '^[0-9]{6}$' } }, ['code']) } },
    async (request) => {
      const result = await identity.auth.confirmTotp(principalOf(request).userId, request.body.code, actorOf(request));
      return { recoveryCodes: result.recoveryCodes, sequence: result.seq };
    },
  );

  app.delete<{ Body: { password: string } }>(
    '/v1/account/totp',
    { config: { access }, schema: { tags, summary: 'Turn TOTP off (needs your password)', response: answers({ 200: WRITTEN }, [409, 410, 422, 429]), body: body({ password: { type: 'string', minLength: 1, maxLength: 256 } }, ['password']) } },
    async (request) => {
      const { userId } = principalOf(request);
      await identity.accounts.checkPassword(userId, request.body.password);
      return { sequence: await identity.auth.disableTotp(userId, actorOf(request)) };
    },
  );

  app.get('/v1/account/api-keys', { config: { access }, schema: { tags, summary: 'Your API keys (never their secrets)', response: answers({ 200: shape({ apiKeys: listOf(API_KEY) }) }, READS) } }, async (request) => {
    await waitForProjection(deps, 'api-keys', request.headers[MIN_SEQUENCE_HEADER]);
    const rows = await deps.db.selectFrom('api_keys').selectAll().where('user_id', '=', principalOf(request).userId).orderBy('issued_at', 'desc').execute();
    const lastUsed = await identity.deps.authState.apiKeysLastUsed(rows.map((r) => r.id));
    return {
      apiKeys: rows.map((r, i) => apiKeyView(r, lastUsed[i] ?? null)),
    };
  });

  app.post<{ Body: { name: string; roles: string[] } }>(
    '/v1/account/api-keys',
    {
      config: { access },
      schema: { tags, summary: 'Issue an API key scoped to roles you hold; the key is shown this once', response: answers({ 201: shape({ id: UUID, apiKey: STRING, sequence: SEQUENCE }) }, [422]), body: body({ name: { type: 'string', minLength: 1, maxLength: 100 }, roles: { type: 'array', items: ROLE, minItems: 1, uniqueItems: true } }, ['name', 'roles']) },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      if (principal.apiKeyId) throw new HttpError(403, 'forbidden', 'an API key cannot issue API keys');
      const result = await identity.admin.issueApiKey(principal.userId, request.body.name, request.body.roles, actorOf(request));
      return reply.status(201).header(SEQUENCE_HEADER, String(result.seq)).send({ id: result.keyId, apiKey: result.apiKey, sequence: result.seq });
    },
  );

  app.delete<{ Params: { id: string } }>('/v1/account/api-keys/:id', { config: { access }, schema: { tags, summary: 'Revoke one of your API keys', response: answers({ 204: NO_CONTENT }, [404]), params: idParams } }, async (request, reply) => {
    await identity.admin.revokeApiKey(principalOf(request).userId, request.params.id, false, actorOf(request));
    return reply.status(204).send();
  });
}
