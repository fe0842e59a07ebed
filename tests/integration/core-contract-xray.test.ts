/**
 * The core API client against Xray's wire contract, without an Xray binary:
 * an in-process gRPC server registers the services under Xray's package names
 * and decodes requests with its own schema, written here from Xray-core's
 * .proto files (not the client's), so a wrong field number or type string in
 * the client fails here. QueryStats answers with int64 values above 2^53 to
 * prove no precision is lost on the way to bigint.
 */
import { Metadata, Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall, type ServiceDefinition, type StatusObject } from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CoreApiClient,
  coreProtos,
  isAlreadyApplied,
  isUserExistsError,
  isUserNotFoundError,
  methodPath,
  typeName,
  type CoreApiError,
} from '../../workers/agent/core/core-api.js';
import { freePort } from '../../infra/stack/ports.js';

// Xray-core's messages, field numbers as in its app/proxyman/command, app/stats/command,
// common/protocol, common/serial, proxy/vless and proxy/trojan .proto files.
const XRAY_PROTO = `
syntax = "proto3";
package xray.common.serial;
message TypedMessage { string type = 1; bytes value = 2; }
`;
const XRAY_PROTOCOL = `
syntax = "proto3";
package xray.common.protocol;
message User { uint32 level = 1; string email = 2; xray.common.serial.TypedMessage account = 3; }
`;
const XRAY_COMMAND = `
syntax = "proto3";
package xray.app.proxyman.command;
message AddUserOperation { xray.common.protocol.User user = 1; }
message RemoveUserOperation { string email = 1; }
message AlterInboundRequest { string tag = 1; xray.common.serial.TypedMessage operation = 2; }
message AlterInboundResponse {}
`;
const XRAY_STATS = `
syntax = "proto3";
package xray.app.stats.command;
message Stat { string name = 1; int64 value = 2; }
message QueryStatsRequest { string pattern = 1; bool reset = 2; }
message QueryStatsResponse { repeated Stat stat = 1; }
`;
const XRAY_ACCOUNTS = `
syntax = "proto3";
package xray.proxy.vless;
message Account { string id = 1; string flow = 2; string encryption = 3; }
`;
const XRAY_TROJAN = `
syntax = "proto3";
package xray.proxy.trojan;
message Account { string password = 1; }
`;

const xray = new protobuf.Root();
for (const source of [XRAY_PROTO, XRAY_PROTOCOL, XRAY_COMMAND, XRAY_STATS, XRAY_ACCOUNTS, XRAY_TROJAN]) protobuf.parse(source, xray, { keepCase: true });
xray.resolveAll();
const T = (name: string) => xray.lookupType(name);

interface Decoded {
  [key: string]: unknown;
}

function decoder(type: protobuf.Type) {
  return (bytes: Buffer): Decoded => type.toObject(type.decode(bytes), { longs: String, bytes: Buffer, defaults: true });
}

function encoder(type: protobuf.Type) {
  return (value: Decoded): Buffer => Buffer.from(type.encode(type.fromObject(value)).finish());
}

/** A TypedMessage as the server sees it: its type string and its value decoded by the type it names. */
function openTyped(typed: Decoded): { type: string; value: Decoded } {
  const type = typed['type'] as string;
  return { type, value: decoder(T(type))(typed['value'] as Buffer) };
}

function unary(path: string, request: protobuf.Type, response: protobuf.Type) {
  return {
    path,
    requestStream: false,
    responseStream: false,
    requestSerialize: encoder(request),
    requestDeserialize: decoder(request),
    responseSerialize: encoder(response),
    responseDeserialize: decoder(response),
  };
}

/** A failure the way Xray reports it: status UNKNOWN and the Go error chain as text. */
function coreFailure(details: string): Partial<StatusObject> {
  return { code: status.UNKNOWN, details, metadata: new Metadata() };
}

const TWO_POW_53_PLUS_1 = 2n ** 53n + 1n;
const BIG = 2n ** 62n + 7n;

describe('core API client against Xray’s gRPC contract', () => {
  let server: Server;
  let port: number;
  let client: CoreApiClient;
  const alterCalls: Array<{ tag: string; operation: { type: string; value: Decoded } }> = [];
  const statsCalls: Decoded[] = [];

  beforeAll(async () => {
    server = new Server();
    const handler: ServiceDefinition = {
      AlterInbound: unary('/xray.app.proxyman.command.HandlerService/AlterInbound', T('xray.app.proxyman.command.AlterInboundRequest'), T('xray.app.proxyman.command.AlterInboundResponse')),
    };
    server.addService(handler, {
      AlterInbound: (call: ServerUnaryCall<Decoded, Decoded>, callback: sendUnaryData<Decoded>) => {
        const operation = openTyped(call.request['operation'] as Decoded);
        alterCalls.push({ tag: call.request['tag'] as string, operation });
        const user = operation.value['user'] as Decoded | undefined;
        const email = (user?.['email'] ?? operation.value['email']) as string;
        if (email === 'slow@x') return; // never answers: the client's deadline must end the call
        if (email === 'exists@x') return callback(coreFailure(`app/proxyman/command: failed to add user > proxy/vless: User ${email} already exists.`));
        if (email === 'ghost@x') return callback(coreFailure(`proxy/vless: User ${email} not found.`));
        if (call.request['tag'] === 'nope') return callback(coreFailure('app/proxyman/command: failed to get handler: nope > app/proxyman/inbound: handler not found: nope'));
        callback(null, {});
      },
    });
    const stats: ServiceDefinition = {
      QueryStats: unary('/xray.app.stats.command.StatsService/QueryStats', T('xray.app.stats.command.QueryStatsRequest'), T('xray.app.stats.command.QueryStatsResponse')),
    };
    server.addService(stats, {
      QueryStats: (call: ServerUnaryCall<Decoded, Decoded>, callback: sendUnaryData<Decoded>) => {
        statsCalls.push(call.request);
        callback(null, {
          stat: [
            { name: 'user>>>alice@x>>>traffic>>>uplink', value: TWO_POW_53_PLUS_1.toString() },
            { name: 'user>>>alice@x>>>traffic>>>downlink', value: BIG.toString() },
            { name: 'user>>>bob>>>x@y>>>traffic>>>downlink', value: '12' },
            { name: 'user>>>idle@x>>>traffic>>>uplink', value: '0' },
            { name: 'inbound>>>vless-in>>>traffic>>>uplink', value: '99' },
          ],
        });
      },
    });
    port = await freePort();
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
    );
    client = new CoreApiClient({ flavour: 'xray', address: `127.0.0.1:${port}`, timeoutMs: 1_000 });
  });

  afterAll(async () => {
    client?.close();
    await new Promise<void>((resolve) => (server ? server.tryShutdown(() => resolve()) : resolve()));
  });

  it('names messages and methods with each flavour’s package prefix', () => {
    const x = coreProtos('xray');
    const v = coreProtos('v2ray');
    expect(methodPath(x.alterInbound)).toBe('/xray.app.proxyman.command.HandlerService/AlterInbound');
    expect(methodPath(x.queryStats)).toBe('/xray.app.stats.command.StatsService/QueryStats');
    expect(methodPath(v.alterInbound)).toBe('/v2ray.core.app.proxyman.command.HandlerService/AlterInbound');
    expect(methodPath(v.queryStats)).toBe('/v2ray.core.app.stats.command.StatsService/QueryStats');
    expect(typeName(x.accounts.vless)).toBe('xray.proxy.vless.Account');
    expect(typeName(v.accounts.vless)).toBe('v2ray.core.proxy.vless.Account');
    expect(typeName(v.addUserOperation)).toBe('v2ray.core.app.proxyman.command.AddUserOperation');
  });

  it('adds a VLESS user as AlterInbound(AddUserOperation(User(TypedMessage(vless.Account))))', async () => {
    alterCalls.length = 0;
    await client.addUser('vless-in', { email: 'alice@x', level: 2, account: { protocol: 'vless', id: '9b0c8b6e-4d1c-4d8b-8d0b-2a7f0e8f5b11', flow: 'xtls-rprx-vision' } });
    expect(alterCalls).toHaveLength(1);
    const [call] = alterCalls;
    expect(call?.tag).toBe('vless-in');
    expect(call?.operation.type).toBe('xray.app.proxyman.command.AddUserOperation');
    const user = call?.operation.value['user'] as Decoded;
    expect(user['email']).toBe('alice@x');
    expect(user['level']).toBe(2);
    const account = openTyped(user['account'] as Decoded);
    expect(account.type).toBe('xray.proxy.vless.Account');
    expect(account.value).toEqual({ id: '9b0c8b6e-4d1c-4d8b-8d0b-2a7f0e8f5b11', flow: 'xtls-rprx-vision', encryption: '' });
  });

  it('adds a Trojan user with a trojan.Account', async () => {
    alterCalls.length = 0;
    await client.addUser('trojan-in', { email: 'tom@x', account: { protocol: 'trojan', password: 's3cret' } });
    const user = alterCalls[0]?.operation.value['user'] as Decoded;
    expect(user['level']).toBe(0);
    const account = openTyped(user['account'] as Decoded);
    expect(account.type).toBe('xray.proxy.trojan.Account');
    expect(account.value).toEqual({ password: 's3cret' });
  });

  it('removes a user as AlterInbound(RemoveUserOperation(email))', async () => {
    alterCalls.length = 0;
    await client.removeUser('vless-in', 'alice@x');
    expect(alterCalls[0]?.tag).toBe('vless-in');
    expect(alterCalls[0]?.operation).toEqual({ type: 'xray.app.proxyman.command.RemoveUserOperation', value: { email: 'alice@x' } });
  });

  it('surfaces the core’s errors as typed errors, telling "already so" apart', async () => {
    const exists = await client.addUser('vless-in', { email: 'exists@x', account: { protocol: 'vless', id: '9b0c8b6e-4d1c-4d8b-8d0b-2a7f0e8f5b11' } }).catch((e: unknown) => e);
    expect(isUserExistsError(exists)).toBe(true);
    expect(isAlreadyApplied(exists)).toBe(true);
    expect((exists as CoreApiError).coreMessage).toContain('User exists@x already exists.');
    expect((exists as CoreApiError).code).toBe(status.UNKNOWN);

    const ghost = await client.removeUser('vless-in', 'ghost@x').catch((e: unknown) => e);
    expect(isUserNotFoundError(ghost)).toBe(true);
    expect(isAlreadyApplied(ghost)).toBe(true);

    // "handler not found" also says "not found", but it is not an already-removed user.
    const noInbound = await client.removeUser('nope', 'alice@x').catch((e: unknown) => e);
    expect((noInbound as CoreApiError).kind).toBe('inbound-not-found');
    expect(isAlreadyApplied(noInbound)).toBe(false);
  });

  it('puts a deadline on every call', async () => {
    const quick = new CoreApiClient({ flavour: 'xray', address: `127.0.0.1:${port}`, timeoutMs: 200 });
    try {
      const started = Date.now();
      const err = await quick.removeUser('vless-in', 'slow@x').catch((e: unknown) => e);
      expect((err as CoreApiError).kind).toBe('timeout');
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      quick.close();
    }
  });

  it('reports an unreachable core as unavailable', async () => {
    const nobody = new CoreApiClient({ flavour: 'xray', address: `127.0.0.1:${await freePort()}`, timeoutMs: 1_000 });
    try {
      const err = await nobody.takeUserTraffic().catch((e: unknown) => e);
      expect((err as CoreApiError).kind).toBe('unavailable');
      expect(isAlreadyApplied(err)).toBe(false);
    } finally {
      nobody.close();
    }
  });

  it('takes per-user traffic with reset, keeping int64 precision above 2^53', async () => {
    statsCalls.length = 0;
    const traffic = await client.takeUserTraffic();
    expect(statsCalls).toEqual([{ pattern: 'user>>>', reset: true }]);
    expect(traffic.get('alice@x')).toEqual({ uplink: TWO_POW_53_PLUS_1, downlink: BIG });
    // The email is everything between the fixed prefix and suffix, even if it contains the separator.
    expect(traffic.get('bob>>>x@y')).toEqual({ uplink: 0n, downlink: 12n });
    // Counters at zero and non-user counters are left out.
    expect([...traffic.keys()].sort()).toEqual(['alice@x', 'bob>>>x@y']);
  });
});
