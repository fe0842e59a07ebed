/**
 * Who sent a request to `relaygrid-ops`. A console user's request crosses from
 * the CONSOLE account through an import with `share: true`, and nats-server
 * then sets `Nats-Request-Info` itself (ClientInfo JSON: acc, user, …),
 * replacing any header of that name the client sent; so `acc` CONSOLE and its
 * `user` are what the server authenticated. The actor is `nats:<user>`.
 *
 * A request from inside the RELAYGRID account (service credentials, or a
 * development NATS without users) carries no such proof: a header it sets
 * reaches the responder as sent. Those credentials can append any event with
 * any actor anyway, so such a request keeps the name it gives (`by`, else
 * `nats`) as `operator:<by>`, a claim, and never the `nats:` form.
 */
import type { ServiceMsg } from '@nats-io/services';
import { CONSOLE_ACCOUNT } from '../../infra/nats/server-config.js';

export const REQUEST_INFO_HEADER = 'Nats-Request-Info';
const NAME = /^[\w.@-]{1,64}$/;

export function actorOf(headers: ServiceMsg['headers'], body: Record<string, unknown>): string {
  const info = headers?.get(REQUEST_INFO_HEADER);
  if (info) {
    const { acc, user } = JSON.parse(info) as { acc?: unknown; user?: unknown };
    if (acc === CONSOLE_ACCOUNT && typeof user === 'string' && NAME.test(user)) return `nats:${user}`;
  }
  const by = body['by'];
  return `operator:${typeof by === 'string' && NAME.test(by) ? by : 'nats'}`;
}
