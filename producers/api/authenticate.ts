/**
 * Route access. Every route declares `config.access`: `'public'`, or the roles
 * that may call it. A route without a declaration fails at startup, so none
 * can be added open by accident. Admins pass every role check; ownership of
 * the resources a route touches is checked by the route itself.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Authentication, Principal } from '../identity/authentication.js';
import { AuthError } from '../identity/auth-error.js';
import { ROLES, type Role } from '../identity/roles.js';

export type Access = 'public' | readonly Role[];

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

class RouteAccessError extends Error {}

/** Any signed-in caller, whatever their role. */
export const SIGNED_IN: readonly Role[] = ROLES;

const BEARER = /^bearer\s+/i;

function bearerOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const scheme = BEARER.exec(header);
  const token = scheme ? header.slice(scheme[0].length) : '';
  if (!token || token.includes(' ')) throw new AuthError(401, 'invalid_authorization', 'Authorization: expected "Bearer <token>"');
  return token;
}

/** Whether the principal holds one of the roles; admins hold them all. Routes that check more than access use it too. */
export function mayCall(principal: Principal, access: readonly Role[]): boolean {
  return principal.roles.includes('admin') || principal.roles.some((r) => access.includes(r));
}

export function authentication(app: FastifyInstance, auth: Authentication): void {
  app.decorateRequest('principal', null);
  app.addHook('onRoute', (route) => {
    if (route.config?.access === undefined) throw new RouteAccessError(`route ${String(route.method)} ${route.url} declares no access (config.access)`);
  });
  const admit = (request: FastifyRequest, access: readonly Role[], principal: Principal): void => {
    if (!mayCall(principal, access)) throw new AuthError(403, 'forbidden', `this route needs one of the roles: ${access.join(', ')}`);
    request.principal = principal;
  };
  // onRequest: before the body is even parsed, so anonymous callers cannot make us do work.
  // Callback style, and synchronous for access tokens (the common case): no promise per request.
  app.addHook('onRequest', (request, _reply, done) => {
    const access = request.routeOptions.config.access;
    if (access === undefined || access === 'public') return done();
    try {
      const bearer = bearerOf(request);
      if (!bearer) throw new AuthError(401, 'unauthenticated', 'Authorization: a bearer token or API key is required');
      if (!auth.isApiKey(bearer)) {
        admit(request, access, auth.authenticateToken(bearer));
        return done();
      }
      auth.authenticateApiKey(bearer).then(
        (principal) => {
          try {
            admit(request, access, principal);
            done();
          } catch (err) {
            done(err as Error);
          }
        },
        (err: unknown) => done(err as Error),
      );
    } catch (err) {
      done(err as Error);
    }
  });
}

/** The caller of an authenticated route (the preHandler guarantees it). */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new AuthError(401, 'unauthenticated', 'Authorization: a bearer token or API key is required');
  return request.principal;
}

/** The actor recorded in events for what this request does. */
export function actorOf(request: FastifyRequest): { actor: string; correlationId: string; traceparent?: string } {
  return {
    actor: request.principal ? `user:${request.principal.userId}` : 'anonymous',
    correlationId: request.id,
    ...(request.traceparent ? { traceparent: request.traceparent } : {}),
  };
}
