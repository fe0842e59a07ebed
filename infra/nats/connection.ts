import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Gauge } from 'prom-client';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';

export interface Nats {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  close(): Promise<void>;
}

export async function connectNats(url: string, name: string): Promise<Nats> {
  // noAsyncTraces: the client otherwise builds two Error objects (stack traces)
  // per request to report where a timed-out request came from; on the append
  // path that was a quarter of all CPU. Our errors name the subject instead.
  const nc = await connect({ servers: url.split(',').map(withoutCredentials), name, maxReconnectAttempts: -1, noAsyncTraces: true, ...credentialsOf(url) });
  const js = jetstream(nc, { timeout: 10_000 });
  const jsm = await jetstreamManager(nc, { timeout: 10_000 });
  return {
    nc,
    js,
    jsm,
    close: async () => {
      if (!nc.isClosed()) await nc.drain();
    },
  };
}

/** nats.js does not read credentials from a server URL (it takes `user:` for a host), so they are stripped… */
function withoutCredentials(raw: string): string {
  const url = new URL(raw.trim());
  return url.username ? `${url.protocol}//${url.host}` : raw.trim();
}

/** …and passed as options: the credentials of the first URL that has some. */
function credentialsOf(urls: string): { user?: string; pass?: string } {
  for (const raw of urls.split(',')) {
    const url = new URL(raw.trim());
    if (url.username) return { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) };
  }
  return {};
}

/**
 * Keeps `gauge` at 1 while `nc` is connected and 0 while it is not (disconnected, reconnecting or
 * closed), so that an alert sees a role cut off from NATS even though the process itself is up.
 */
export function reportConnection(nc: NatsConnection, gauge: Pick<Gauge, 'set'>): void {
  gauge.set(nc.isClosed() ? 0 : 1);
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') gauge.set(0);
      else if (status.type === 'reconnect') gauge.set(1);
    }
  })();
  void nc.closed().then(() => gauge.set(0));
}
