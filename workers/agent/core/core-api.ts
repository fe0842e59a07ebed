/**
 * A gRPC client for the two core services the agent uses: HandlerService
 * (AlterInbound with Add/RemoveUserOperation) and StatsService (QueryStats).
 *
 * Xray-core and its ancestor V2Ray share these messages field for field; only
 * the protobuf package prefix differs (`xray.` vs `v2ray.core.`). That prefix
 * is part of every method path and of every TypedMessage type string the core
 * looks up, so one schema is built per flavour from a single definition.
 * Field numbers were checked against the descriptors embedded in the V2Ray
 * 4.34 binary and against Xray-core's .proto files.
 */
import { Client, credentials, status, type ServiceError } from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import type { CoreAccount, CoreUser, UserTraffic } from './driver.js';

export type CoreFlavour = 'v2ray' | 'xray';

/** Protobuf package prefix of each flavour: `${prefix}.app.proxyman.command.HandlerService`, … */
export const PROTO_PREFIX: Readonly<Record<CoreFlavour, string>> = { v2ray: 'v2ray.core', xray: 'xray' };

export const DEFAULT_API_TIMEOUT_MS = 3_000;

// ---------------------------------------------------------------------------
// Schema: one definition, parameterised by the package prefix.

const str = (id: number) => ({ type: 'string', id });

function defineSchema(prefix: string): protobuf.Root {
  const root = new protobuf.Root();
  // Absolute references (leading dot), so a message never resolves against a same-named one elsewhere.
  const ref = (name: string) => `.${prefix}.${name}`;
  root.define(`${prefix}.common.serial`, {
    TypedMessage: { fields: { type: str(1), value: { type: 'bytes', id: 2 } } },
  });
  root.define(`${prefix}.common.protocol`, {
    User: { fields: { level: { type: 'uint32', id: 1 }, email: str(2), account: { type: ref('common.serial.TypedMessage'), id: 3 } } },
  });
  root.define(`${prefix}.app.proxyman.command`, {
    AddUserOperation: { fields: { user: { type: ref('common.protocol.User'), id: 1 } } },
    RemoveUserOperation: { fields: { email: str(1) } },
    AlterInboundRequest: { fields: { tag: str(1), operation: { type: ref('common.serial.TypedMessage'), id: 2 } } },
    AlterInboundResponse: { fields: {} },
    HandlerService: { methods: { AlterInbound: { requestType: 'AlterInboundRequest', responseType: 'AlterInboundResponse' } } },
  });
  root.define(`${prefix}.app.stats.command`, {
    Stat: { fields: { name: str(1), value: { type: 'int64', id: 2 } } },
    QueryStatsRequest: { fields: { pattern: str(1), reset: { type: 'bool', id: 2 } } },
    QueryStatsResponse: { fields: { stat: { rule: 'repeated', type: 'Stat', id: 1 } } },
    StatsService: { methods: { QueryStats: { requestType: 'QueryStatsRequest', responseType: 'QueryStatsResponse' } } },
  });
  // Trojan's Account had a `flow = 2` in some versions (XTLS); neither V2Ray 4.34 nor current Xray has it.
  root.define(`${prefix}.proxy.vless`, { Account: { fields: { id: str(1), flow: str(2), encryption: str(3) } } });
  root.define(`${prefix}.proxy.trojan`, { Account: { fields: { password: str(1) } } });
  root.define(`${prefix}.proxy.http`, { Account: { fields: { username: str(1), password: str(2) } } });
  root.define(`${prefix}.proxy.socks`, { Account: { fields: { username: str(1), password: str(2) } } });
  root.resolveAll();
  return root;
}

export interface CoreProtos {
  readonly prefix: string;
  readonly root: protobuf.Root;
  readonly typedMessage: protobuf.Type;
  readonly user: protobuf.Type;
  readonly addUserOperation: protobuf.Type;
  readonly removeUserOperation: protobuf.Type;
  readonly alterInbound: protobuf.Method;
  readonly queryStats: protobuf.Method;
  readonly accounts: Readonly<Record<CoreAccount['protocol'], protobuf.Type>>;
}

const schemas = new Map<CoreFlavour, CoreProtos>();

/** The flavour's message types and methods (built once per flavour). */
export function coreProtos(flavour: CoreFlavour): CoreProtos {
  const cached = schemas.get(flavour);
  if (cached) return cached;
  const prefix = PROTO_PREFIX[flavour];
  const root = defineSchema(prefix);
  const type = (name: string) => root.lookupType(`${prefix}.${name}`);
  const method = (service: string, name: string): protobuf.Method => {
    const found = root.lookupService(`${prefix}.${service}`).methods[name];
    if (!found) throw new Error(`schema has no ${service}.${name}`);
    found.resolve();
    return found;
  };
  const protos: CoreProtos = {
    prefix,
    root,
    typedMessage: type('common.serial.TypedMessage'),
    user: type('common.protocol.User'),
    addUserOperation: type('app.proxyman.command.AddUserOperation'),
    removeUserOperation: type('app.proxyman.command.RemoveUserOperation'),
    alterInbound: method('app.proxyman.command.HandlerService', 'AlterInbound'),
    queryStats: method('app.stats.command.StatsService', 'QueryStats'),
    accounts: {
      vless: type('proxy.vless.Account'),
      trojan: type('proxy.trojan.Account'),
      http: type('proxy.http.Account'),
      socks: type('proxy.socks.Account'),
    },
  };
  schemas.set(flavour, protos);
  return protos;
}

/** The name a core expects in TypedMessage.type: the full protobuf name without the leading dot. */
export function typeName(reflected: protobuf.ReflectionObject): string {
  return reflected.fullName.replace(/^\./, '');
}

/** gRPC path of a method: `/package.Service/Method`. */
export function methodPath(method: protobuf.Method): string {
  const service = method.parent;
  if (!service) throw new Error(`method ${method.name} has no service`);
  return `/${typeName(service)}/${method.name}`;
}

/** A message wrapped as `TypedMessage { type, value }`, the form AlterInbound and User.account take. */
export function typedMessage(type: protobuf.Type, fields: Record<string, unknown>): { type: string; value: Uint8Array } {
  return { type: typeName(type), value: type.encode(type.fromObject(fields)).finish() };
}

function accountMessage(protos: CoreProtos, account: CoreAccount): { type: string; value: Uint8Array } {
  switch (account.protocol) {
    case 'vless':
      // `encryption` is a client-side setting; an inbound's users leave it empty.
      return typedMessage(protos.accounts.vless, { id: account.id, flow: account.flow ?? '' });
    case 'trojan':
      return typedMessage(protos.accounts.trojan, { password: account.password });
    case 'http':
    case 'socks':
      return typedMessage(protos.accounts[account.protocol], { username: account.username, password: account.password });
  }
}

// ---------------------------------------------------------------------------
// Errors

/**
 * What went wrong, for callers that react differently: `user-exists` on add
 * and `user-not-found` on remove mean the core is already in the wanted state
 * (see isAlreadyApplied); `unavailable`/`timeout` mean the core did not answer;
 * `account-mismatch` is refused before sending (see ProcessCoreDriver.addUser).
 */
export type CoreApiErrorKind = 'user-exists' | 'user-not-found' | 'inbound-not-found' | 'account-mismatch' | 'unavailable' | 'timeout' | 'core';

export class CoreApiError extends Error {
  override readonly name = 'CoreApiError';

  constructor(
    readonly kind: CoreApiErrorKind,
    /** The gRPC status code (the cores answer their own failures with UNKNOWN). */
    readonly code: status,
    /** The core's own message, e.g. "… > proxy/vless: User alice already exists." */
    readonly coreMessage: string,
    /** The gRPC method path that failed. */
    readonly method: string,
  ) {
    super(`${method}: ${coreMessage}`);
  }
}

// The cores report user errors only as text (status UNKNOWN), the same in
// V2Ray and Xray, VLESS and Trojan: `User <email> already exists.` and
// `User <email> not found.`. An unknown inbound tag says "handler not found".
const USER_EXISTS = /\bUser .* already exists/;
const USER_NOT_FOUND = /\bUser .* not found/;
const HANDLER_NOT_FOUND = /handler not found/i;

function toCoreApiError(method: string, err: ServiceError): CoreApiError {
  const message = err.details || err.message;
  const kind: CoreApiErrorKind =
    err.code === status.UNAVAILABLE
      ? 'unavailable'
      : err.code === status.DEADLINE_EXCEEDED
        ? 'timeout'
        : USER_EXISTS.test(message)
          ? 'user-exists'
          : USER_NOT_FOUND.test(message)
            ? 'user-not-found'
            : HANDLER_NOT_FOUND.test(message)
              ? 'inbound-not-found'
              : 'core';
  return new CoreApiError(kind, err.code, message, method);
}

export function isUserExistsError(err: unknown): boolean {
  return err instanceof CoreApiError && err.kind === 'user-exists';
}

export function isUserNotFoundError(err: unknown): boolean {
  return err instanceof CoreApiError && err.kind === 'user-not-found';
}

/**
 * True when an addUser/removeUser failed only because the core already was in
 * the wanted state: the user existed (add) or did not (remove). The core keys
 * users by email, so "exists" does not prove the same credentials: to change
 * a user's account, remove it and add it again.
 */
export function isAlreadyApplied(err: unknown): boolean {
  return isUserExistsError(err) || isUserNotFoundError(err);
}

// ---------------------------------------------------------------------------
// Stats names

const USER_TRAFFIC = /^user>>>(.+)>>>traffic>>>(uplink|downlink)$/;

/** `user>>>EMAIL>>>traffic>>>uplink|downlink` → email and direction; undefined for other counters. */
export function parseUserTrafficStat(name: string): { email: string; direction: 'uplink' | 'downlink' } | undefined {
  const match = USER_TRAFFIC.exec(name);
  if (!match) return undefined;
  return { email: match[1] as string, direction: match[2] as 'uplink' | 'downlink' };
}

export interface CoreStat {
  name: string;
  value: bigint;
}

// ---------------------------------------------------------------------------
// Client

export interface CoreApiOptions {
  flavour: CoreFlavour;
  /** host:port of the core's API inbound. */
  address: string;
  /** Deadline of each call, unless the call gives its own. */
  timeoutMs?: number;
}

export class CoreApiClient {
  readonly protos: CoreProtos;
  private readonly client: Client;
  private readonly timeoutMs: number;

  constructor(options: CoreApiOptions) {
    this.protos = coreProtos(options.flavour);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_API_TIMEOUT_MS;
    this.client = new Client(options.address, credentials.createInsecure(), {
      // The core restarts on every configuration change; the default backoff
      // (1 s growing to 2 min) would leave the channel waiting long after it is back.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1_000,
    });
  }

  /** Adds `user` to the inbound tagged `inboundTag`. */
  async addUser(inboundTag: string, user: CoreUser): Promise<void> {
    // The core skips its duplicate check for an empty email, and removal and stats go by email.
    if (user.email === '') throw new TypeError('a core user needs an email');
    const { addUserOperation } = this.protos;
    const account = accountMessage(this.protos, user.account);
    const operation = typedMessage(addUserOperation, { user: { level: user.level ?? 0, email: user.email, account } });
    await this.unary(this.protos.alterInbound, { tag: inboundTag, operation });
  }

  /** Removes the user with this email from the inbound tagged `inboundTag`. */
  async removeUser(inboundTag: string, email: string): Promise<void> {
    if (email === '') throw new TypeError('a core user needs an email');
    const operation = typedMessage(this.protos.removeUserOperation, { email });
    await this.unary(this.protos.alterInbound, { tag: inboundTag, operation });
  }

  /** Counters whose name contains `pattern` (a substring match in both cores); `reset` zeroes them as they are read. */
  async queryStats(pattern: string, reset: boolean, timeoutMs?: number): Promise<CoreStat[]> {
    const response = await this.unary(this.protos.queryStats, { pattern, reset }, timeoutMs);
    const stats = (response['stat'] ?? []) as Array<{ name: string; value: string }>;
    return stats.map((stat) => ({ name: stat.name, value: BigInt(stat.value) }));
  }

  /** Per-user traffic since the last call (read and reset atomically per counter); users without traffic are left out. */
  async takeUserTraffic(): Promise<Map<string, UserTraffic>> {
    const traffic = new Map<string, UserTraffic>();
    for (const stat of await this.queryStats('user>>>', true)) {
      const parsed = parseUserTrafficStat(stat.name);
      if (!parsed || stat.value === 0n) continue;
      const entry = traffic.get(parsed.email) ?? { uplink: 0n, downlink: 0n };
      entry[parsed.direction] += stat.value;
      traffic.set(parsed.email, entry);
    }
    return traffic;
  }

  close(): void {
    this.client.close();
  }

  private unary(method: protobuf.Method, request: Record<string, unknown>, timeoutMs = this.timeoutMs): Promise<Record<string, unknown>> {
    const requestType = method.resolvedRequestType;
    const responseType = method.resolvedResponseType;
    if (!requestType || !responseType) throw new Error(`method ${method.name} is not resolved`);
    const path = methodPath(method);
    const serialize = (value: protobuf.Message) => Buffer.from(requestType.encode(value).finish());
    // int64 as decimal strings: a JS number would silently round counters above 2^53.
    const deserialize = (bytes: Buffer) => responseType.toObject(responseType.decode(bytes), { longs: String, defaults: true });
    const message = requestType.fromObject(request);
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(path, serialize, deserialize, message, { deadline: Date.now() + timeoutMs }, (err, response) => {
        if (err) reject(toCoreApiError(path, err));
        else resolve(response ?? {});
      });
    });
  }
}
