/** Ports for tests of the local stack: distinct ones that nothing listens on, and listeners to occupy them. */
import net from 'node:net';
import type { LocalPorts } from '../../infra/stack/local-stack.js';
import { LOOPBACK, tcpAnswers } from '../../infra/stack/ports.js';

/** A loopback server that accepts and drops connections: something that "answers". */
export function listen(): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((socket) => socket.destroy());
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => resolve(server));
  });
}

export function portOfServer(server: net.Server): number {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('not a TCP server');
  return address.port;
}

/** Distinct ports nothing listens on: all held open at once, so no two are the same. */
export async function unusedPorts(): Promise<LocalPorts> {
  const servers = await Promise.all([0, 1, 2].map(() => listen()));
  const [nats, postgres, redis] = servers.map(portOfServer);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  if (nats === undefined || postgres === undefined || redis === undefined) throw new Error('no ports');
  return { nats, postgres, redis };
}

export function answers(port: number): Promise<boolean> {
  return tcpAnswers(LOOPBACK, port, 500);
}
