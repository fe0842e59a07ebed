/**
 * The stack of the multi-gateway tests: an isolated namespace, projectors and
 * the API in this process, and two `relaygrid gateway` child processes (so a
 * test can SIGKILL or SIGTERM one of them).
 */
import { freePort } from '../../infra/stack/ports.js';
import { startApi } from '../../infra/roles/api.js';
import { startProjectors } from '../../infra/roles/projectors.js';
import { client } from './http.js';
import { isolated } from './isolated.js';
import { gatewayProcess, type Call } from './messenger.js';

export type GatewayProcess = Awaited<ReturnType<typeof gatewayProcess>>;

export interface TwoGateways {
  call: Call;
  survivor: GatewayProcess;
  victim: GatewayProcess;
  close(): Promise<void>;
}

export async function twoGateways(gatewayEnv: Record<string, string> = {}): Promise<TwoGateways> {
  const env = await isolated({ env: { RG_TRUST_PROXY: 'true', RG_REGISTER_LIMIT_PER_IP: '10000', RG_LOGIN_LIMIT_PER_IP: '10000' } });
  const projectors = startProjectors(env.rt);
  const api = await startApi(env.rt, { host: '127.0.0.1' });
  const [survivor, victim] = await Promise.all([gatewayProcess(env.config, await freePort(), gatewayEnv), gatewayProcess(env.config, await freePort(), gatewayEnv)]);
  return {
    call: client(api.url),
    survivor,
    victim,
    close: async () => {
      await victim.kill();
      await survivor.kill();
      await api.close();
      await projectors.close();
      await env.cleanup();
    },
  };
}
