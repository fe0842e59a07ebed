/**
 * The agent's connection cut against the real kernel, without a proxy core:
 * a TCP server stands in for an inbound, access lines go through the real
 * FIFO as a core writes them, and `ss -K` closes the sockets named. The
 * kernel's refusal is real too: `ss` run without CAP_NET_ADMIN (capsh).
 */
import { chmod, mkdtemp, open, rm, writeFile, type FileHandle } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../infra/logger.js';
import { LOOPBACK } from '../../infra/stack/ports.js';
import { ConnectionTracker } from '../../workers/agent/connections/connection-tracker.js';
import { SocketKiller, SS } from '../../workers/agent/connections/socket-killer.js';
import { eventually } from '../support/isolated.js';

const log = createLogger(process.env['LOG_LEVEL'] ?? 'silent', { test: 'connection-cut' });

interface Client {
  socket: net.Socket;
  endpoint: string;
  closed: boolean;
}

describe('closing a removed user’s connections', () => {
  let dir: string;
  let server: net.Server;
  let port: number;
  const clients: Client[] = [];
  const trackers: ConnectionTracker[] = [];
  const writers: FileHandle[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rg-cut-'));
    server = net.createServer((s) => s.on('error', () => undefined));
    await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
    port = (server.address() as net.AddressInfo).port;
  });

  afterEach(() => {
    for (const c of clients.splice(0)) c.socket.destroy();
    for (const t of trackers.splice(0)) t.close();
  });

  afterEach(async () => {
    for (const w of writers.splice(0)) await w.close();
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  async function connectClient(): Promise<Client> {
    const socket = net.connect({ host: LOOPBACK, port });
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const client: Client = { socket, endpoint: `${LOOPBACK}:${socket.localPort}`, closed: false };
    socket.on('error', () => undefined).on('close', () => (client.closed = true));
    clients.push(client);
    return client;
  }

  /** A tracker reading its FIFO, and a writer appending to it as the core does. */
  async function tracker(name: string, killer?: SocketKiller): Promise<{ t: ConnectionTracker; logAccepted: (c: Client, email: string) => Promise<void> }> {
    const t = new ConnectionTracker({ fifoPath: join(dir, `${name}.fifo`), log, followUpMs: 50, ...(killer ? { killer } : {}) });
    trackers.push(t);
    await t.open();
    const writer = await open(t.accessLogPath, 'a');
    writers.push(writer);
    return {
      t,
      logAccepted: async (c, email) => {
        await writer.write(`2026/12/06 21:00:00 ${c.endpoint} accepted tcp:example.com:80 [direct] email: ${email}\n`);
        await eventually(() => t.table.endpointsOf(email).has(c.endpoint), 2_000, 5);
      },
    };
  }

  it('closes exactly the user’s sockets on the inbound’s port, and leaves everyone else’s open', async () => {
    const { t, logAccepted } = await tracker('ok');
    const alice = [await connectClient(), await connectClient()];
    const bob = await connectClient();
    for (const c of alice) await logAccepted(c, 'alice');
    await logAccepted(bob, 'bob');

    const closed = await t.cut([{ port, email: 'alice' }], () => true);
    expect(closed).toBe(2);
    await eventually(() => alice.every((c) => c.closed), 1_000, 5);
    expect(bob.closed).toBe(false);
    expect(t.support).toBe('ok');
    // Gone sockets leave the table; Bob's stays.
    expect(await t.prune([port])).toBe(2);
    expect([...t.table.endpointsOf('bob')]).toEqual([bob.endpoint]);
  });

  it('reports `unsupported`, without throwing, when the kernel refuses SOCK_DESTROY (no CAP_NET_ADMIN)', async () => {
    const wrapper = join(dir, 'ss-without-net-admin');
    await writeFile(wrapper, `#!/bin/sh\nexec capsh --drop=cap_net_admin -- -c 'exec ${SS} "$@"' ss "$@"\n`);
    await chmod(wrapper, 0o755);
    const { t, logAccepted } = await tracker('refused', new SocketKiller(wrapper));
    const alice = await connectClient();
    await logAccepted(alice, 'alice');

    expect(await t.cut([{ port, email: 'alice' }], () => true)).toBe(0);
    expect(t.support).toBe('unsupported');
    await new Promise((r) => setTimeout(r, 100));
    expect(alice.closed).toBe(false);
  });
});
