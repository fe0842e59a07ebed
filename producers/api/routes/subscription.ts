/**
 * Subscriptions for proxy clients. `/v1/subscription` tells a signed-in user
 * their link; `/v1/sub/<token>` is that link, fetched by clients without any
 * other credential (the token is one, see producers/fleet/subscriptions.ts).
 *
 * The body is the endpoint list in the client's format; the headers carry
 * what clients show besides: this period's usage, the allowance and the
 * expiry of the user's subscription (`subscription-userinfo`),
 * how often to refresh (`profile-update-interval`, hours) and a file name.
 */
import type { FastifyInstance } from 'fastify';
import { base64SubscriptionOf, clashSubscription, singboxSubscription, subscriptionUserinfo } from '../../fleet/subscription/formats.js';
import type { Endpoint } from '../../fleet/subscription/endpoint.js';
import { entitled } from '../../fleet/subscriptions.js';
import type { ApiDeps } from '../app.js';
import { principalOf, SIGNED_IN } from '../authenticate.js';
import { HttpError } from '../errors.js';
import { MIN_SEQUENCE_HEADER, waitForProjection } from '../read-your-writes.js';
import { answers, READS, shape, STRING } from '../contract.js';

const FORMATS = ['base64', 'singbox', 'clash'] as const;
type Format = (typeof FORMATS)[number];

const BODY: Record<Format, { contentType: string; extension: string; render: (endpoints: readonly Endpoint[]) => string }> = {
  base64: { contentType: 'text/plain; charset=utf-8', extension: 'txt', render: base64SubscriptionOf },
  singbox: { contentType: 'application/json; charset=utf-8', extension: 'json', render: (e) => JSON.stringify(singboxSubscription(e), null, 2) },
  clash: { contentType: 'text/yaml; charset=utf-8', extension: 'yaml', render: clashSubscription },
};

/** Hours between client refreshes: nodes come and go by rollouts and drains, not by the minute. */
const UPDATE_INTERVAL_HOURS = 12;

export function subscriptionRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { subscriptions } = deps;
  const tags = ['subscription'];

  app.get(
    '/v1/subscription',
    {
      config: { access: SIGNED_IN },
      schema: {
        tags,
        summary: 'Your subscription link for proxy clients; it changes when you rotate your proxy credentials',
        response: answers({ 200: shape({ token: STRING, url: STRING }) }, [...READS, 404]),
      },
    },
    async (request, reply) => {
      await waitForProjection(deps, 'proxy-credentials', request.headers[MIN_SEQUENCE_HEADER]);
      const token = await subscriptions.tokenOf(principalOf(request).userId);
      if (!token) throw new HttpError(404, 'credentials_not_found', 'no proxy credentials yet: retry with x-min-sequence from your last write');
      return reply.header('cache-control', 'no-store').send({ token, url: `/v1/sub/${token}` });
    },
  );

  app.get<{ Params: { token: string }; Querystring: { format?: Format } }>(
    '/v1/sub/:token',
    {
      config: { access: 'public' },
      schema: {
        tags,
        summary: 'The subscription itself: share links in base64 (default), sing-box JSON or Clash.Meta YAML',
        security: [],
        params: { type: 'object', required: ['token'], properties: { token: { type: 'string', minLength: 1, maxLength: 100 } } },
        // No additionalProperties: false here: some clients append parameters of their own to the URL they were given.
        querystring: { type: 'object', properties: { format: { type: 'string', enum: [...FORMATS], default: 'base64' } } },
        response: answers(
          {
            200: {
              content: {
                'text/plain': { schema: { type: 'string', description: 'share links, one a line, base64-encoded' } },
                'application/json': { schema: { type: 'object', additionalProperties: true, description: 'a sing-box configuration' } },
                'text/yaml': { schema: { type: 'string', description: 'a Clash.Meta configuration' } },
              },
            },
          },
          [404],
        ),
      },
    },
    async (request, reply) => {
      const subscriber = await subscriptions.resolve(request.params.token);
      if (!subscriber) throw new HttpError(404, 'subscription_not_found', 'no such subscription: the link is wrong or outdated (credentials were rotated)');
      const format = BODY[request.query.format ?? 'base64'];
      // A suspended user, or one without a subscription that gives access, keeps a valid link that
      // lists nothing, so their client empties instead of erroring.
      const endpoints = entitled(subscriber) ? await subscriptions.endpoints(subscriber.user, subscriber.plan) : [];
      const plan = subscriber.plan;
      // Clients' convention: total=0 is no cap, expire=0 no end (formats.ts).
      const usage = plan ? { upload: plan.uplinkBytes, download: plan.downlinkBytes, total: plan.allowanceBytes ?? 0n, expire: plan.expiresAt } : { upload: 0n, download: 0n };
      return reply
        .header('content-type', format.contentType)
        .header('subscription-userinfo', subscriptionUserinfo(usage))
        .header('profile-update-interval', String(UPDATE_INTERVAL_HOURS))
        .header('content-disposition', `attachment; filename="relaygrid.${format.extension}"`)
        // The body holds the user's credentials: no shared cache may keep it.
        .header('cache-control', 'no-store')
        .send(format.render(endpoints));
    },
  );
}
