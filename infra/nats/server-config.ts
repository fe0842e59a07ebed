/**
 * nats-server configuration with accounts and permissions, as code. One
 * account holds Relaygrid; its users get only what their role needs:
 *
 * - `operator`: everything (migrate creates and updates streams and buckets);
 * - `service` (api, projectors, workers): append events, read streams, create
 *   consumers, use KV; never delete, purge or update a stream, never delete a
 *   message — so no application credential can rewrite the log — and never
 *   publish an audit checkpoint (one it wrote could never be removed);
 * - `audit` (the audit worker): what `service` may, but publish checkpoints
 *   instead of events;
 * - `gateway` (the messenger gateway): what `service` may, and delete messages
 *   of the inbox stream (acknowledged or expired ciphertext), of no other;
 * - `analyst`: read only: stream info, consumers, direct gets; cannot publish
 *   events.
 * - `console` (people at the operators' console, `nats req <ns>.ops.…`): a user
 *   of an account of its own, CONSOLE, which imports only the `relaygrid-ops`
 *   service (`<ns>.ops.>`) from RELAYGRID: request/reply and nothing else, no
 *   JetStream, no events. The import shares the caller's identity
 *   (`share: true`): nats-server itself sets the `Nats-Request-Info` header
 *   the responder reads (acc CONSOLE, user `console`), replacing any header of
 *   that name the client sent, so the user in the events is the one that
 *   authenticated (workers/fleet/ops-actor.ts).
 * - `node-<nodeId>` (one per enrolled node agent, bcrypt hash from its
 *   NodeEnrolled event): publish only its own requests
 *   (`<ns>.fleet.agent.<nodeId>.>`), receive only its own pushes and replies
 *   (`<ns>.fleet.push.<nodeId>`, inbox prefix `<ns>.fleet.inbox.<nodeId>`). No
 *   JetStream at all: everything it needs comes through the fleet service,
 *   which reads the node id from the subject.
 *
 * nats-server 2.9 matches the JetStream API by subject, so the permissions are
 * lists of `$JS.API.…` subjects. Stream configs add `deny_delete`/`deny_purge`
 * on top, for every user.
 */
import { EVENT_CONTEXTS } from '../../contracts/catalogue.js';
import { Names } from '../naming.js';

export interface NatsUserSecrets {
  operator: string;
  service: string;
  analyst: string;
  audit: string;
  gateway: string;
  /** The operators' console user; without it no CONSOLE account is rendered. */
  console?: string;
}

/** The account of the operators' console users (ops-actor.ts trusts a request's identity only from it). */
export const CONSOLE_ACCOUNT = 'CONSOLE';

export interface NatsServerConfigOptions {
  namespace: string;
  port: number;
  /** Listen address; loopback unless told otherwise. */
  host?: string;
  storeDir: string;
  passwords: NatsUserSecrets;
  serverName?: string;
  /** Enrolled node agents (fleet_nodes), each with a bcrypt hash of its password. */
  nodes?: readonly NodeUser[];
  /** One member of a cluster: absent for a single server. */
  cluster?: ClusterMember;
}

/**
 * This server's place in a cluster. Every member gets the same `routes` (its
 * own included: nats-server ignores a route to itself), so one list serves
 * every node's configuration.
 */
export interface ClusterMember {
  /** The cluster's name, the same on every member. */
  name: string;
  /** Where this server listens for routes from the others. */
  host: string;
  port: number;
  /** host:port of every member's cluster listener. */
  routes: readonly string[];
  /**
   * The routes' shared password (user `route`): anything that can reach the
   * cluster port could otherwise join and be sent every stream's data.
   */
  password: string;
  /** JetStream domain; only needed when leaf nodes extend this cluster's JetStream. */
  domain?: string;
}

export interface NodeUser {
  nodeId: string;
  user: string;
  passwordHash: string;
}

/** What may never be asked of JetStream with application credentials. */
const LOG_REWRITING_APIS = ['$JS.API.STREAM.DELETE.>', '$JS.API.STREAM.PURGE.>', '$JS.API.STREAM.UPDATE.>', '$JS.API.STREAM.MSG.DELETE.>', '$JS.API.STREAM.CREATE.>'];

/** The read side of JetStream: info, consumers (create, fetch, ack, delete), direct gets. */
const READ_APIS = [
  '$JS.API.INFO',
  '$JS.API.STREAM.INFO.>',
  '$JS.API.STREAM.NAMES',
  '$JS.API.STREAM.LIST',
  '$JS.API.STREAM.MSG.GET.>',
  '$JS.API.DIRECT.GET.>',
  '$JS.API.CONSUMER.>',
  '$JS.ACK.>',
  '$JS.FC.>',
];

const quote = (s: string) => JSON.stringify(s);
const list = (subjects: readonly string[]) => `[${subjects.map(quote).join(', ')}]`;

export function natsServerConfig(opts: NatsServerConfigOptions): string {
  const ns = opts.namespace;
  const names = new Names(ns);
  // A wildcard is a whole token, so buckets are named one by one ("$KV.RG_>" would match nothing).
  const KV = `$KV.${names.schemaBucket}.>`;
  // Object stores (the fleet's templates and configurations) publish chunks and metadata under $O.<bucket>.
  const OBJ = [names.fleetTemplateBucket, names.fleetConfigBucket, names.edgeCertBucket].map((bucket) => `$O.${bucket}.>`);
  const jetstream = ['$JS.API.>', '$JS.ACK.>', '$JS.FC.>', '_INBOX.>'];
  const service = {
    publish: { allow: [`${ns}.>`, KV, ...OBJ, ...jetstream], deny: [...LOG_REWRITING_APIS, `${ns}.audit.>`] },
    // $SRV.>: the relaygrid-ops micro service answers discovery (`nats micro ls`) on the protocol's own subjects.
    subscribe: { allow: ['_INBOX.>', `${ns}.>`, KV, '$SRV.>'] },
  };
  // Deny wins over allow in nats-server, so the gateway may delete inbox entries because every other stream is denied by name.
  const logs = [...EVENT_CONTEXTS.map((c) => names.stream(c)), names.auditStream, names.auditCheckpointStream];
  const gateway = {
    publish: {
      allow: service.publish.allow,
      deny: [...LOG_REWRITING_APIS.filter((api) => !api.startsWith('$JS.API.STREAM.MSG.DELETE')), ...logs.map((stream) => `$JS.API.STREAM.MSG.DELETE.${stream}`), `${ns}.audit.>`],
    },
    subscribe: service.subscribe,
  };
  const audit = {
    publish: { allow: [`${ns}.audit.checkpoint`, ...jetstream], deny: LOG_REWRITING_APIS },
    subscribe: { allow: ['_INBOX.>'] },
  };
  const analyst = {
    publish: { allow: [...READ_APIS, '_INBOX.>'], deny: [`${ns}.>`] },
    subscribe: { allow: ['_INBOX.>'] },
  };
  const permissions = (p: { publish: { allow: string[]; deny: string[] }; subscribe: { allow: string[] } }) =>
    `{ publish: { allow: ${list(p.publish.allow)}, deny: ${list(p.publish.deny)} }, subscribe: { allow: ${list(p.subscribe.allow)} } }`;
  const node = (n: NodeUser) => ({
    publish: { allow: [`${ns}.fleet.agent.${n.nodeId}.>`], deny: [] },
    subscribe: { allow: [names.fleetPush(n.nodeId), `${names.fleetInbox(n.nodeId)}.>`] },
  });
  const cluster = opts.cluster;
  // Request/reply only: publish requests under <ns>.ops., receive their replies on _INBOX.
  const consoleUser = { publish: { allow: [`${ns}.ops.>`], deny: [] }, subscribe: { allow: ['_INBOX.>'] } };
  const consoleAccount =
    opts.passwords.console === undefined
      ? ''
      : `
  ${CONSOLE_ACCOUNT}: {
    users: [
      { user: "console", password: ${quote(opts.passwords.console)}, permissions: ${permissions(consoleUser)} }
    ]
    imports: [ { service: { account: "RELAYGRID", subject: ${quote(`${ns}.ops.>`)} }, share: true } ]
  }`;
  const exports = opts.passwords.console === undefined ? '' : `
    exports: [ { service: ${quote(`${ns}.ops.>`)}, accounts: [${quote(CONSOLE_ACCOUNT)}] } ]`;
  const nodeUsers = (opts.nodes ?? []).map((n) => `\n      { user: ${quote(n.user)}, password: ${quote(n.passwordHash)}, permissions: ${permissions(node(n))} }`).join('');
  return `# Generated by infra/nats/server-config.ts: Relaygrid's account and users.
server_name: ${quote(opts.serverName ?? `relaygrid-${ns}`)}
listen: ${quote(`${opts.host ?? '127.0.0.1'}:${opts.port}`)}
jetstream: { store_dir: ${quote(opts.storeDir)}${cluster?.domain ? `, domain: ${quote(cluster.domain)}` : ''} }
${cluster ? clusterBlock(cluster) : ''}accounts: {
  RELAYGRID: {
    jetstream: enabled
    users: [
      { user: "operator", password: ${quote(opts.passwords.operator)} }
      { user: "service", password: ${quote(opts.passwords.service)}, permissions: ${permissions(service)} }
      { user: "analyst", password: ${quote(opts.passwords.analyst)}, permissions: ${permissions(analyst)} }
      { user: "audit", password: ${quote(opts.passwords.audit)}, permissions: ${permissions(audit)} }
      { user: "gateway", password: ${quote(opts.passwords.gateway)}, permissions: ${permissions(gateway)} }${nodeUsers}
    ]${exports}
  }${consoleAccount}
}
`;
}

/** The cluster block: routes authenticated with one shared user, so that no stranger joins. */
function clusterBlock(c: ClusterMember): string {
  const routes = c.routes.map((route) => quote(`nats-route://route:${encodeURIComponent(c.password)}@${route}`)).join(', ');
  return `cluster: {
  name: ${quote(c.name)}
  listen: ${quote(`${c.host}:${c.port}`)}
  authorization: { user: "route", password: ${quote(c.password)}, timeout: 2 }
  routes: [${routes}]
}
`;
}
