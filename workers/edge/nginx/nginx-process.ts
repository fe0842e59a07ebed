/**
 * The nginx binary as the edge driver uses it: `nginx -t` of a staged tree,
 * a master process in the foreground (our child, so it dies with us), SIGHUP
 * reloads, and the control socket that says which release the workers serve
 * (nginx's reload is asynchronous: the signal returning says nothing).
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { readdir, readFile, rm } from 'node:fs/promises';
import type { Logger } from '../../../infra/logger.js';
import { spawnService, type ServiceProcess } from '../../../infra/stack/processes.js';
import type { EdgeLayout } from './layout.js';

const MAX_ERROR_CHARS = 2_000;

/** nginx's verdict without the banner lines ("nginx: the configuration file … test failed"). */
export function nginxErrorText(output: string): string {
  const lines = output
    .split('\n')
    .map((line) => line.trim().replace(/^nginx: /, ''))
    .filter((line) => line !== '' && !/^configuration file .* test (failed|is successful)$/.test(line) && !/^the configuration file .* syntax is ok$/.test(line));
  const text = lines.join('\n');
  return text.length > MAX_ERROR_CHARS ? `${text.slice(0, MAX_ERROR_CHARS - 1)}…` : text;
}

/** Runs a command to its end with a timeout: exit code and combined output (the first 64 kB). Shared with the Caddy driver. */
export function run(binary: string, args: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const take = (chunk: Buffer): void => {
      if (output.length < 64_000) output += chunk.toString('utf8');
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`could not run ${binary}: ${err.message}`));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** Asks the control socket which release answers; null while nothing listens. */
export function servedRelease(socketPath: string): Promise<string | null> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/release', timeout: 1_000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(res.statusCode === 200 ? body : null));
      res.on('error', () => resolve(null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
    req.end();
  });
}

/**
 * Pids of the master's workers that still accept connections. A worker told
 * to quit retitles itself "worker process is shutting down" right before it
 * closes its listening sockets, so once no pre-reload worker is listed here,
 * every new connection reaches a worker of the new configuration.
 */
export async function acceptingWorkers(masterPid: number): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      // The parent pid is the second field after the parenthesised command name.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== masterPid) continue;
      const title = (await readFile(`/proc/${name}/cmdline`, 'utf8')).replace(/\0/g, ' ');
      if (title.includes('worker process') && !title.includes('shutting down')) pids.push(Number(name));
    } catch {
      // exited while we looked
    }
  }
  return pids;
}

export interface NginxProcessOptions {
  binary: string;
  layout: EdgeLayout;
  logger: Logger;
  testTimeoutMs?: number;
  /** How long a start or a reload may take to show the new release on the control socket. */
  readyTimeoutMs?: number;
}

export class NginxProcess {
  private readonly opts: Required<Omit<NginxProcessOptions, 'logger'>> & { logger: Logger };
  private service: ServiceProcess | undefined;

  constructor(options: NginxProcessOptions) {
    this.opts = { testTimeoutMs: 30_000, readyTimeoutMs: 15_000, ...options };
  }

  get running(): boolean {
    return this.service !== undefined;
  }

  get pid(): number | undefined {
    return this.service?.pid;
  }

  private args(confPath: string): string[] {
    const { layout } = this.opts;
    return ['-p', `${layout.root}/`, '-c', confPath, '-e', layout.errorLog];
  }

  /** `nginx -t` of a configuration file: null when it passes, else nginx's error text. */
  async test(confPath: string): Promise<string | null> {
    const { code, output } = await run(this.opts.binary, ['-t', '-q', ...this.args(confPath)], this.opts.testTimeoutMs);
    if (code === 0) return null;
    return nginxErrorText(output) || `nginx -t exited with code ${String(code)}`;
  }

  /** Starts the master in the foreground on `confPath` and waits until it serves `releaseId`. */
  async start(confPath: string, releaseId: string): Promise<void> {
    if (this.service) throw new Error('nginx is already running');
    // A socket file left by a killed master makes the bind fail.
    await rm(this.opts.layout.controlSocket, { force: true });
    const service = await spawnService({
      name: 'nginx',
      command: this.opts.binary,
      args: [...this.args(confPath), '-g', 'daemon off;'],
      log: this.opts.logger,
      // QUIT: graceful, requests in flight finish.
      stopSignal: 'SIGQUIT',
      graceMs: 10_000,
    });
    this.service = service;
    void service.exited.then((how) => {
      if (this.service === service) {
        this.service = undefined;
        this.opts.logger.warn({ how, output: service.output() }, 'nginx exited');
      }
    });
    await this.waitFor(releaseId, () => (this.service === service ? null : `nginx ${service.output() || 'exited'}`));
  }

  /** SIGHUP: the master re-reads its configuration; resolves once workers serve `releaseId`. */
  async reload(releaseId: string): Promise<void> {
    const service = this.service;
    if (!service) throw new Error('nginx is not running');
    const before = await acceptingWorkers(service.pid);
    process.kill(service.pid, 'SIGHUP');
    await this.waitFor(releaseId, () => (this.service === service ? null : 'nginx exited during a reload'), async () => {
      const now = await acceptingWorkers(service.pid);
      return before.every((pid) => !now.includes(pid));
    });
  }

  /** SIGUSR1: the master reopens its log files (after a rotation renamed them). */
  reopenLogs(): void {
    if (this.service) process.kill(this.service.pid, 'SIGUSR1');
  }

  async stop(): Promise<void> {
    const service = this.service;
    this.service = undefined;
    await service?.stop();
  }

  /** Until the control socket answers `releaseId` and `settled` (old workers gone) holds. */
  private async waitFor(releaseId: string, failed: () => string | null, settled: () => Promise<boolean> = () => Promise.resolve(true)): Promise<void> {
    const deadline = Date.now() + this.opts.readyTimeoutMs;
    for (;;) {
      if ((await servedRelease(this.opts.layout.controlSocket)) === releaseId && (await settled())) return;
      const failure = failed();
      if (failure !== null) throw new Error(failure);
      if (Date.now() > deadline) throw new Error(`nginx did not serve release ${releaseId} within ${this.opts.readyTimeoutMs} ms (see ${this.opts.layout.errorLog})`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}
