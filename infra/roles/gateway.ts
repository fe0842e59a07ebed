/** The gateway role: the uWebSockets.js messenger gateway on RG_GATEWAY_PORT. */
import { Gateway } from '../../gateways/gateway.js';
import { EventStore } from '../../producers/event-store/event-store.js';
import type { Runtime } from '../runtime.js';
import { openIdentity } from './api.js';
import { readinessProbe, type ReadinessReport } from '../readiness.js';

export interface RunningGateway {
  gateway: Gateway;
  url: string;
  close(): Promise<void>;
}

export interface GatewayOptions {
  host?: string;
  port?: number;
  /** The process's readiness (`serve` covers every role in it); else NATS, Postgres and Redis. */
  readiness?: () => Promise<ReadinessReport>;
}

export async function startGateway(rt: Runtime, opts: GatewayOptions = {}): Promise<RunningGateway> {
  const store = new EventStore(rt.nats, rt.names, rt.registry);
  // Only the token check and the revocation list: the gateway verifies access JWTs, it does not log anyone in.
  const identity = openIdentity(rt);
  await identity.start();
  const readiness = opts.readiness ?? readinessProbe({ nats: rt.nats, db: rt.db, redis: rt.redis });
  const gateway = new Gateway({ ...rt, store, auth: identity.auth, revocations: identity.deps.revocations, config: rt.config.messaging, readiness });
  const port = await gateway.start(opts.port ?? rt.config.gatewayPort, opts.host ?? '0.0.0.0');
  rt.log.info({ gateway: gateway.id, port }, 'gateway listening');
  return {
    gateway,
    url: `ws://127.0.0.1:${port}/v1/ws`,
    close: async () => {
      await gateway.stop();
      await identity.stop();
    },
  };
}
