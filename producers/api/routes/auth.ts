/** `/v1/auth/*`: register, verify email, log in, refresh, log out, who am I, reset a forgotten password. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ClientInfo } from '../../identity/authentication.js';
import { actorOf, principalOf, SIGNED_IN } from '../authenticate.js';
import type { ApiDeps } from '../app.js';
import { SEQUENCE_HEADER } from '../read-your-writes.js';
import { answers, BOOLEAN, INTEGER, NO_CONTENT, nullable, SEQUENCE, shape, STRING, STRINGS } from '../contract.js';
import { body, EMAIL, PASSWORD, UUID } from './schemas.js';

const CREATED = shape({ id: UUID, sequence: SEQUENCE });
const TOKENS = shape({ accessToken: STRING, refreshToken: STRING, expiresIn: INTEGER, tokenType: { type: 'string', enum: ['Bearer'] } });
const ME = shape({
  id: UUID,
  email: nullable(STRING),
  emailVerified: BOOLEAN,
  status: STRING,
  roles: STRINGS,
  sessionId: nullable(STRING),
  apiKeyId: nullable(STRING),
  totpEnabled: BOOLEAN,
});

function clientOf(request: FastifyRequest): ClientInfo {
  const agent = request.headers['user-agent'];
  return { ip: request.ip, device: (typeof agent === 'string' ? agent : 'unknown').slice(0, 200) };
}

export function authRoutes(app: FastifyInstance, { identity }: ApiDeps): void {
  const tags = ['auth'];

  app.post<{ Body: { email: string; password: string; displayName?: string } }>(
    '/v1/auth/register',
    {
      config: { access: 'public' },
      schema: { tags, summary: 'Create an account (roles: client)', response: answers({ 201: CREATED }, [409, 422, 429]), body: body({ email: EMAIL, password: PASSWORD, displayName: { type: 'string', minLength: 1, maxLength: 100 } }, ['email', 'password']) },
    },
    async (request, reply) => {
      await identity.auth.limitRegistration(request.ip, request.body.email);
      const { traceparent, correlationId } = actorOf(request);
      const user = await identity.accounts.register(request.body, { traceparent, correlationId });
      return reply.status(201).header(SEQUENCE_HEADER, String(user.seq)).send({ id: user.userId, sequence: user.seq });
    },
  );

  app.post<{ Body: { token: string } }>(
    '/v1/auth/verify-email',
    { config: { access: 'public' }, schema: { tags, summary: 'Confirm an email address with the token mailed to it', response: answers({ 200: shape({ verified: BOOLEAN, sequence: SEQUENCE }) }, [410, 422]), body: body({ token: { type: 'string', minLength: 10, maxLength: 200 } }, ['token']) } },
    async (request) => {
      const result = await identity.accounts.verifyEmail(request.body.token);
      return { verified: true, sequence: result.seq };
    },
  );

  app.post<{ Body: { email: string; password: string; totp?: string } }>(
    '/v1/auth/login',
    {
      config: { access: 'public' },
      schema: {
        tags,
        summary: 'Log in: an access token (minutes) and a rotating refresh token', response: answers({ 200: TOKENS }, [401, 403, 429]),
        body: body({ email: EMAIL, password: { type: 'string', minLength: 1, maxLength: 256 }, totp: { type: 'string', minLength: 6, maxLength: 20 } }, ['email', 'password']),
      },
    },
    async (request) => {
      const { userId: _userId, ...tokens } = await identity.auth.login(request.body, clientOf(request));
      return tokens;
    },
  );

  app.post<{ Body: { refreshToken: string } }>(
    '/v1/auth/refresh',
    {
      config: { access: 'public' },
      schema: { tags, summary: 'Swap a refresh token for new tokens; a reused one revokes its session', response: answers({ 200: TOKENS }, [401, 403]), body: body({ refreshToken: { type: 'string', minLength: 10, maxLength: 200 } }, ['refreshToken']) },
    },
    (request) => identity.auth.refresh(request.body.refreshToken, clientOf(request)),
  );

  app.post('/v1/auth/logout', { config: { access: SIGNED_IN }, schema: { tags, summary: 'End the current session', response: answers({ 204: NO_CONTENT }) } }, async (request, reply) => {
    await identity.auth.logout(principalOf(request));
    return reply.status(204).send();
  });

  app.get('/v1/auth/me', { config: { access: SIGNED_IN }, schema: { tags, summary: 'The caller: id, roles, session', response: answers({ 200: ME }) } }, async (request) => {
    const principal = principalOf(request);
    const state = await identity.deps.loadUser(principal.userId);
    const email = await identity.accounts.currentEmail(principal.userId, state).catch(() => null);
    return {
      id: principal.userId,
      email,
      emailVerified: state.emailVerified,
      status: state.status,
      roles: principal.roles,
      sessionId: principal.sessionId ?? null,
      apiKeyId: principal.apiKeyId ?? null,
      totpEnabled: state.totp !== null,
    };
  });

  app.post('/v1/auth/resend-verification', { config: { access: ['client'] }, schema: { tags, summary: 'A new verification token for the current address', response: answers({ 200: shape({ sent: BOOLEAN, sequence: SEQUENCE }) }, [410, 422]) } }, async (request) => {
    const result = await identity.accounts.resendVerification(principalOf(request).userId, actorOf(request));
    return { sent: result.verificationToken !== null, sequence: result.seq };
  });
  // POST /v1/auth/password-reset and /confirm wait for the notifier that mails the token
  // (producers/identity/password-reset.ts is built; issue 15): a route promising a mail that is
  // never sent would be worse than none.
}
