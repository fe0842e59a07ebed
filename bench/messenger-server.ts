/**
 * A WebSocket server alone in a child process, for bench/messenger-ws-memory.ts,
 * so its memory can be read without the clients': `node --expose-gc
 * messenger-server.js gateway|uws`. Requests from the parent (over IPC):
 *
 *   start    starts the server on 127.0.0.1, answers its port
 *   memory   runs a full GC (twice), answers VmRSS and process.memoryUsage()
 *   snapshot {path}  writes a V8 heap snapshot there (for finding what a connection keeps)
 *   stop     closes the server (and the runtime), then the process exits
 *
 * `gateway` is the real messenger gateway (startGateway) on a runtime opened
 * from the environment the parent passes (the sandbox's namespace and servers).
 * `uws` is a bare uWebSockets.js app whose sockets do nothing: the raw baseline.
 */
import { writeHeapSnapshot } from 'node:v8';
import uWS from 'uWebSockets.js';
import { loadConfig } from '../infra/config.js';
import { createLogger } from '../infra/logger.js';
import { startGateway } from '../infra/roles/gateway.js';
import { openRuntime } from '../infra/runtime.js';
import { rssOf, serveRequests } from './messenger-support.js';

export interface ServerMemory {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
}

const mode = process.argv[2];
let stop: () => Promise<void> = () => Promise.resolve();

async function start(): Promise<number> {
  if (mode === 'gateway') {
    const config = loadConfig(process.env);
    const rt = await openRuntime(config, 'gateway', createLogger(config.logLevel, { role: 'gateway' }));
    const gw = await startGateway(rt, { host: '127.0.0.1', port: 0 });
    stop = async () => {
      await gw.close();
      await rt.close();
    };
    return Number(new URL(gw.url).port);
  }
  if (mode === 'uws') {
    const app = uWS.App().ws('/*', { compression: uWS.DISABLED, maxPayloadLength: 256 * 1024, idleTimeout: 60, sendPingsAutomatically: true });
    const socket = await new Promise<uWS.us_listen_socket>((resolve, reject) => app.listen('127.0.0.1', 0, (s) => (s ? resolve(s) : reject(new Error('uWS could not listen')))));
    stop = () => {
      uWS.us_listen_socket_close(socket);
      return Promise.resolve();
    };
    return uWS.us_socket_local_port(socket);
  }
  throw new Error(`mode must be gateway or uws, not ${mode}`);
}

serveRequests({
  start,
  memory: (): ServerMemory => {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    gc?.();
    const m = process.memoryUsage();
    return { rss: rssOf(process.pid), heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external };
  },
  snapshot: (args) => writeHeapSnapshot(args['path'] as string),
  stop: async () => {
    await stop();
    setImmediate(() => process.exit(0));
    return true;
  },
});
