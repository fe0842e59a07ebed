/**
 * The parts of a core configuration that only the local agent needs: the gRPC
 * API (HandlerService to change users without a restart, StatsService to read
 * per-user traffic), the stats counters behind it, and a loopback-only inbound
 * routed to the API. The control plane renders the proxy part; the agent adds
 * this just before writing the file, so the API port never leaves the node.
 */

export const API_TAG = 'api';
const LOOPBACK = '127.0.0.1';

/** A rendered core configuration (Xray/V2Ray JSON). Only the keys touched here are typed. */
export interface CoreConfig {
  inbounds?: unknown[];
  outbounds?: unknown[];
  routing?: { rules?: unknown[]; [key: string]: unknown };
  policy?: { levels?: Record<string, Record<string, unknown>>; [key: string]: unknown };
  [key: string]: unknown;
}

function hasTag(value: unknown, tag: string): boolean {
  return typeof value === 'object' && value !== null && (value as { tag?: unknown }).tag === tag;
}

function routesToApi(rule: unknown): boolean {
  return typeof rule === 'object' && rule !== null && (rule as { outboundTag?: unknown }).outboundTag === API_TAG;
}

/**
 * A copy of `config` with the local API on 127.0.0.1:`apiPort`. An `api`
 * inbound or API rule already present is replaced rather than duplicated:
 * the core refuses duplicate tags, and a second rule would be dead anyway.
 * Level 0 counts per-user traffic, since users are added at level 0 unless
 * they say otherwise; other levels and policy keys are kept as they are.
 */
export function withLocalApi<T extends CoreConfig>(config: T, apiPort: number): T {
  if (!Number.isInteger(apiPort) || apiPort < 1 || apiPort > 65_535) throw new RangeError(`invalid API port ${apiPort}`);
  // Typed as the base shape while editing: a generic T does not accept writes to its keys.
  const copy: CoreConfig = structuredClone(config);

  copy.api = { tag: API_TAG, services: ['HandlerService', 'StatsService'] };
  copy.stats = {};

  const policy = copy.policy ?? {};
  const levels = policy.levels ?? {};
  levels['0'] = { ...levels['0'], statsUserUplink: true, statsUserDownlink: true };
  copy.policy = { ...policy, levels };

  const apiInbound = {
    tag: API_TAG,
    listen: LOOPBACK,
    port: apiPort,
    protocol: 'dokodemo-door',
    settings: { address: LOOPBACK },
  };
  copy.inbounds = [...(copy.inbounds ?? []).filter((inbound) => !hasTag(inbound, API_TAG)), apiInbound];

  // First, so no broader rule of the rendered config can send API calls elsewhere.
  const routing = copy.routing ?? {};
  const apiRule = { type: 'field', inboundTag: [API_TAG], outboundTag: API_TAG };
  copy.routing = { ...routing, rules: [apiRule, ...(routing.rules ?? []).filter((rule) => !routesToApi(rule))] };

  return copy as T;
}

/**
 * A copy of `config` whose core writes its access log to `path` (the agent's
 * FIFO, see workers/agent/connections/access-fifo.ts): one line per accepted
 * connection, naming the user and the client's address, which is how the
 * agent knows whose connections to close. The error log keeps its settings.
 */
export function withAccessLog<T extends CoreConfig>(config: T, path: string): T {
  const copy: CoreConfig = structuredClone(config);
  const log = (copy.log ?? {}) as Record<string, unknown>;
  copy.log = { ...log, access: path };
  return copy as T;
}
