/**
 * TCP probes used to decide whether a local service is already there and to
 * tell when one we started is ready. Everything binds and probes IPv4 loopback
 * only: the local stack is for one machine, and `localhost` may resolve to ::1
 * first, where our services do not listen.
 */
import net from 'node:net';

export const LOOPBACK = '127.0.0.1';
const POLL_INTERVAL_MS = 100;

/** True if something accepts a TCP connection on host:port within timeoutMs. */
export function tcpAnswers(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (answered: boolean) => {
      socket.destroy();
      resolve(answered);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function listenOnce(port: number, host: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(undefined));
    server.listen({ port, host, exclusive: true }, () => {
      const address = server.address();
      const bound = typeof address === 'object' && address !== null ? address.port : undefined;
      server.close(() => resolve(bound));
    });
  });
}

/**
 * A port the OS considers free right now. Another process could take it before
 * our child binds it; that race is accepted because the child then fails to
 * start and the caller reports it, rather than silently talking to a stranger.
 */
export async function freePort(host: string = LOOPBACK): Promise<number> {
  const port = await listenOnce(0, host);
  if (port === undefined) throw new Error(`could not find a free TCP port on ${host}`);
  return port;
}

/** `preferred` if nothing is bound to it, else any free port. */
export async function preferredPort(preferred: number, host: string = LOOPBACK): Promise<number> {
  return (await listenOnce(preferred, host)) ?? freePort(host);
}

/**
 * Polls until host:port accepts connections; throws after timeoutMs, or as
 * soon as `signal` aborts (the process that should listen has died).
 */
export async function waitForPort(host: string, port: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await tcpAnswers(host, port, Math.min(500, timeoutMs))) return;
    if (signal?.aborted) throw new Error(`stopped waiting for ${host}:${port}`);
    if (Date.now() >= deadline) {
      throw new Error(`nothing accepted connections on ${host}:${port} within ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}
