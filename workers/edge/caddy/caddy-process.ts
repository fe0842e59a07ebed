/**
 * The caddy binary as the edge driver uses it: `caddy run` in the foreground
 * as our child with its admin API on a unix socket in the state directory,
 * whole-config replacement through that API with ETag / If-Match, and
 * `caddy validate` as a scratch instance (it provisions every module, loading
 * certificates included, without binding a port) to find which site a refused
 * config is about.
 */
import { request } from 'node:http';
import { readFile, rm, writeFile } from 'node:fs/promises';
import type { Logger } from '../../../infra/logger.js';
import { spawnService, type ServiceProcess } from '../../../infra/stack/processes.js';
import { run } from '../nginx/nginx-process.js';
import type { CaddyObject } from './site.js';

const MAX_ERROR_CHARS = 2_000;

const clip = (text: string): string => (text.length > MAX_ERROR_CHARS ? `${text.slice(0, MAX_ERROR_CHARS - 1)}…` : text);

/** The sysctl that makes Linux hand a closing SO_REUSEPORT listener's queued connections to its successor (Linux 5.14+). */
export const MIGRATE_REQ_SYSCTL = '/proc/sys/net/ipv4/tcp_migrate_req';

/**
 * Whether a config load can drop no connection. Caddy 2.6 binds each new
 * config's listeners with SO_REUSEPORT and closes the old ones; without
 * net.ipv4.tcp_migrate_req=1 the kernel resets every connection still
 * waiting in an old listener's accept queue (the integration test sees
 * ECONNRESET under a request loop). A node setting, not ours to change.
 */
export async function reloadsKeepQueuedConnections(sysctl = MIGRATE_REQ_SYSCTL): Promise<boolean> {
  try {
    return (await readFile(sysctl, 'utf8')).trim() === '1';
  } catch {
    return false;
  }
}

export interface CaddyProcessOptions {
  binary: string;
  /** HOME, XDG_DATA_HOME and XDG_CONFIG_HOME of the child: nothing of the user's Caddy state is read or written. */
  home: string;
  adminSocket: string;
  /** Where the boot config and validation scratch files are written. */
  runDir: string;
  logger: Logger;
  readyTimeoutMs?: number;
  validateTimeoutMs?: number;
}

interface AdminAnswer {
  status: number;
  body: string;
  etag: string | undefined;
}

/** A config replacement Caddy refused: its own error text. */
export class CaddyRefusal extends Error {
  override readonly name = 'CaddyRefusal';
}

export class CaddyProcess {
  private service: ServiceProcess | undefined;
  /** ETag of the config we last loaded: a load with it fails (412) if anyone else changed the config since. */
  private etag: string | undefined;
  private scratch = 0;

  constructor(private readonly opts: CaddyProcessOptions) {}

  get running(): boolean {
    return this.service !== undefined;
  }

  get pid(): number | undefined {
    return this.service?.pid;
  }

  /** Caddy's child environment, by `env` so the binary keeps our pid tracking (spawnService takes no environment). */
  private command(args: string[]): [string, string[]] {
    const { home } = this.opts;
    return ['/usr/bin/env', [`HOME=${home}`, `XDG_DATA_HOME=${home}`, `XDG_CONFIG_HOME=${home}`, this.opts.binary, ...args]];
  }

  private admin(method: 'GET' | 'POST', urlPath: string, body?: string, ifMatch?: string): Promise<AdminAnswer> {
    return new Promise((resolve, reject) => {
      // Node sends `Host: localhost`: nodeConfig() lists it as the admin API's one allowed origin.
      const headers: Record<string, string> = {};
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      if (ifMatch !== undefined) headers['If-Match'] = ifMatch;
      const req = request({ socketPath: this.opts.adminSocket, method, path: urlPath, headers, agent: false, timeout: 30_000 }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        // GET /config/ sends its ETag as a trailer (it hashes the body as it streams).
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, etag: firstHeader(res.headers.etag) ?? firstHeader(res.trailers.etag) }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`caddy admin ${method} ${urlPath} timed out`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Starts caddy on `bootConfig` (admin and storage only) and waits until its admin API answers. */
  async start(bootConfig: CaddyObject): Promise<void> {
    if (this.service) throw new Error('caddy is already running');
    await rm(this.opts.adminSocket, { force: true });
    if (!(await reloadsKeepQueuedConnections())) {
      this.opts.logger.warn({ sysctl: 'net.ipv4.tcp_migrate_req' }, 'net.ipv4.tcp_migrate_req is not 1: each caddy config load may reset connections queued on the old listeners');
    }
    const boot = `${this.opts.runDir}/boot.json`;
    await writeFile(boot, JSON.stringify(bootConfig));
    const [command, args] = this.command(['run', '--config', boot]);
    // SIGTERM: Caddy stops gracefully, requests in flight finish.
    const service = await spawnService({ name: 'caddy', command, args, log: this.opts.logger, graceMs: 10_000 });
    this.service = service;
    void service.exited.then((how) => {
      if (this.service === service) {
        this.service = undefined;
        this.opts.logger.warn({ how, output: service.output() }, 'caddy exited');
      }
    });
    const deadline = Date.now() + (this.opts.readyTimeoutMs ?? 15_000);
    for (;;) {
      const answer = await this.admin('GET', '/config/').catch(() => undefined);
      if (answer?.status === 200) {
        this.etag = answer.etag;
        return;
      }
      if (this.service !== service) throw new Error(`caddy ${service.output() || 'exited'}`);
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`caddy's admin API did not answer within ${this.opts.readyTimeoutMs ?? 15_000} ms: ${service.output()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /**
   * Replaces the whole config, atomically: Caddy provisions the new config
   * and rolls back to the old one if anything fails. `POST /config/`, not
   * `/load`: Debian's Caddy 2.6.2 ignores If-Match on /load (verified), while
   * /config/ honours it with 412. A 412 means someone else changed the config
   * since our last load: we log it, re-read the ETag and try once more (this
   * driver's desired state is the node's truth); a second 412 throws.
   * Throws CaddyRefusal with Caddy's error text when it refuses the config.
   */
  async load(config: CaddyObject): Promise<void> {
    if (!this.service) throw new Error('caddy is not running');
    const body = JSON.stringify(config);
    for (let attempt = 0; ; attempt += 1) {
      const etag = this.etag ?? (await this.currentEtag());
      const answer = await this.admin('POST', '/config/', body, etag);
      if (answer.status === 200) {
        this.etag = await this.currentEtag();
        return;
      }
      if (answer.status === 412 && attempt === 0) {
        this.opts.logger.warn({}, 'caddy config changed behind the edge driver; reloading its ETag and retrying once');
        this.etag = undefined;
        continue;
      }
      throw new CaddyRefusal(clip(adminError(answer)));
    }
  }

  private async currentEtag(): Promise<string | undefined> {
    return (await this.admin('GET', '/config/')).etag;
  }

  /** `caddy validate` of `config` in a scratch process: null when it provisions, else Caddy's error text. */
  async validate(config: CaddyObject): Promise<string | null> {
    this.scratch += 1;
    const file = `${this.opts.runDir}/validate-${process.pid}-${this.scratch}.json`;
    // The scratch must not try to bind the live admin socket.
    await writeFile(file, JSON.stringify({ ...config, admin: { disabled: true } }));
    try {
      const [command, args] = this.command(['validate', '--config', file]);
      const { code, output } = await run(command, args, this.opts.validateTimeoutMs ?? 30_000);
      if (code === 0) return null;
      const errors = output.split('\n').filter((line) => line.startsWith('Error: ')).map((line) => line.slice('Error: '.length));
      return clip(errors.join('\n') || `caddy validate exited with code ${String(code)}`);
    } finally {
      await rm(file, { force: true });
    }
  }

  async stop(): Promise<void> {
    const service = this.service;
    this.service = undefined;
    this.etag = undefined;
    await service?.stop();
  }
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function adminError(answer: AdminAnswer): string {
  try {
    const parsed = JSON.parse(answer.body) as { error?: unknown };
    if (typeof parsed.error === 'string') return parsed.error;
  } catch {
    // not JSON: the body as it is
  }
  return `caddy admin answered ${answer.status}: ${answer.body}`;
}
