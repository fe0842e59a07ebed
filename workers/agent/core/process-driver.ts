/**
 * The core as a child process of the agent: Xray-core in production, V2Ray
 * 4.34 in tests. Validation and (re)starts go through the binary; user changes
 * and traffic go through its gRPC API on 127.0.0.1 (see withLocalApi), so they
 * need no restart and drop no connection.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { status } from '@grpc/grpc-js';
import type { Logger } from '../../../infra/logger.js';
import { killOnExit } from '../../../infra/stack/processes.js';
import { CoreApiClient, CoreApiError, methodPath, type CoreFlavour } from './core-api.js';
import { unsupportedByCore } from './core-support.js';
import type { CoreDriver, CoreUser, UserTraffic } from './driver.js';

/** How each flavour's binary is told to validate or run a configuration file. */
export const CORE_COMMANDS: Readonly<Record<CoreFlavour, { binary: string; test(config: string): string[]; run(config: string): string[] }>> = {
  v2ray: { binary: 'v2ray', test: (config) => ['-test', '-config', config], run: (config) => ['-config', config] },
  xray: { binary: 'xray', test: (config) => ['run', '-test', '-c', config], run: (config) => ['run', '-c', config] },
};

export interface ProcessCoreDriverOptions {
  flavour: CoreFlavour;
  /** Path or name of the binary; defaults to the flavour's name, found on PATH. */
  binary?: string;
  /** Port of the API inbound on 127.0.0.1: the one given to withLocalApi. */
  apiPort: number;
  logger: Logger;
  /** How long start() waits for the API to answer. */
  startTimeoutMs?: number;
  /** How long a stop waits after SIGTERM before SIGKILL. */
  stopGraceMs?: number;
  /** Deadline of each API call. */
  apiTimeoutMs?: number;
  /** How long test() lets the binary run. */
  testTimeoutMs?: number;
}

const DEFAULT_START_TIMEOUT_MS = 10_000;
const DEFAULT_STOP_GRACE_MS = 5_000;
const DEFAULT_TEST_TIMEOUT_MS = 15_000;
const PROBE_TIMEOUT_MS = 500;
const PROBE_INTERVAL_MS = 100;
const OUTPUT_TAIL_LINES = 30;
const MAX_ERROR_CHARS = 2_000;
/** A pattern no counter has: the readiness probe only needs an answer, not data. */
const PROBE_PATTERN = 'relaygrid>>>probe';

// ---------------------------------------------------------------------------
// Error text

/** Lines that say nothing about the problem: version banners, the OK line, and info/debug log lines. */
const NOISE = [
  /^V2Ray \d+\.\d+/,
  /^Xray \d+\.\d+/,
  /^A unified platform for anti-censorship/,
  /^Configuration OK/,
  /\[(Info|Debug)\]/,
];
const LOG_TIMESTAMP = /^\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2}(\.\d+)? /;
/** A Go panic's goroutine dump starts here; the `panic:` line above it is the message. */
const GOROUTINE_DUMP = /^goroutine \d+ \[/;

/**
 * The meaningful part of a core's output for an operator: error and warning
 * lines without banners, timestamps or goroutine dumps, cut to ~2 KB (the
 * first lines carry the error chain, so the end is what goes).
 */
export function coreErrorText(output: string, maxChars = MAX_ERROR_CHARS): string {
  const lines: string[] = [];
  for (const raw of output.split('\n')) {
    const line = raw.trimEnd();
    if (GOROUTINE_DUMP.test(line)) break;
    if (line.trim() === '' || NOISE.some((pattern) => pattern.test(line))) continue;
    lines.push(line.replace(LOG_TIMESTAMP, ''));
  }
  const text = lines.join('\n');
  return text.length > maxChars ? `${text.slice(0, maxChars - 1)}…` : text;
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal !== null ? `was killed by ${signal}` : `exited with code ${String(code)}`;
}

// ---------------------------------------------------------------------------
// Every running core, so a test (or a shutdown path) can stop them all.

const runningDrivers = new Set<ProcessCoreDriver>();

/** Stops every core a ProcessCoreDriver of this process has running. */
export async function stopAllCores(): Promise<void> {
  await Promise.all([...runningDrivers].map((driver) => driver.stop()));
}

/** A started core: the child, its exit, and what it printed last. */
interface RunningCore {
  child: ChildProcess;
  pid: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Only an exit while `running` is unexpected: start() reports its own failures, and stop() asked for it. */
  phase: 'starting' | 'running' | 'stopping';
  cleanedUp: boolean;
  tail: string[];
  api: CoreApiClient;
  /** Inbound tag → protocol, from the configuration it runs (empty if that could not be read). */
  inboundProtocols: Map<string, string>;
  releaseReaper: () => void;
}

/** The configuration file as JSON, or null when it is not plain JSON (the cores also read commented JSON): the core itself is then the only check. */
async function readJson(configPath: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(configPath, 'utf8')) as unknown;
  } catch {
    return null;
  }
}

async function readInboundProtocols(configPath: string): Promise<Map<string, string>> {
  const protocols = new Map<string, string>();
  const config = (await readJson(configPath)) as { inbounds?: Array<{ tag?: unknown; protocol?: unknown }> } | null;
  for (const inbound of Array.isArray(config?.inbounds) ? config.inbounds : []) {
    if (typeof inbound.tag === 'string' && typeof inbound.protocol === 'string') protocols.set(inbound.tag, inbound.protocol);
  }
  return protocols;
}

export class ProcessCoreDriver implements CoreDriver {
  onExit?: (code: number | null, signal: NodeJS.Signals | null) => void;

  private readonly flavour: CoreFlavour;
  private readonly binary: string;
  private readonly apiPort: number;
  private readonly log: Logger;
  private readonly startTimeoutMs: number;
  private readonly stopGraceMs: number;
  private readonly apiTimeoutMs: number | undefined;
  private readonly testTimeoutMs: number;
  private core: RunningCore | undefined;
  /** start() and stop() run one at a time, so a restart never overlaps another. */
  private lifecycle: Promise<unknown> = Promise.resolve();

  constructor(options: ProcessCoreDriverOptions) {
    this.flavour = options.flavour;
    this.binary = options.binary ?? CORE_COMMANDS[options.flavour].binary;
    this.apiPort = options.apiPort;
    this.log = options.logger.child({ core: options.flavour });
    this.startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    this.stopGraceMs = options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;
    this.apiTimeoutMs = options.apiTimeoutMs;
    this.testTimeoutMs = options.testTimeoutMs ?? DEFAULT_TEST_TIMEOUT_MS;
  }

  /** Pid of the running core, if any. */
  get pid(): number | undefined {
    return this.core?.pid;
  }

  async test(configPath: string): Promise<string | null> {
    const unsupported = unsupportedByCore(this.flavour, await readJson(configPath));
    if (unsupported) return unsupported;
    const args = CORE_COMMANDS[this.flavour].test(configPath);
    const child = spawn(this.binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    // Bounded: the first lines carry the error, and a runaway output must not grow without end.
    const collect = (stream: NodeJS.ReadableStream | null): { text: string } => {
      const out = { text: '' };
      stream?.on('data', (chunk: Buffer) => {
        if (out.text.length < 64_000) out.text += chunk.toString('utf8');
      });
      return out;
    };
    const stdout = collect(child.stdout);
    const stderr = collect(child.stderr);
    const release = child.pid !== undefined ? killOnExit(child.pid, 'SIGKILL') : () => undefined;
    const timer = setTimeout(() => child.kill('SIGKILL'), this.testTimeoutMs);
    try {
      const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
        child.once('error', (err) => reject(new Error(`could not run ${this.binary}: ${err.message}`)));
        // 'close', not 'exit': the output streams are complete only then.
        child.once('close', (code, signal) => resolve({ code, signal }));
      });
      if (code === 0) return null;
      // V2Ray prints its errors on stdout and panics (unreadable JSON) on stderr.
      const text = coreErrorText(`${stdout.text}\n${stderr.text}`);
      const timedOut = signal === 'SIGKILL' ? ` (no verdict within ${this.testTimeoutMs} ms)` : '';
      return text !== '' ? text : `${this.binary} ${describeExit(code, signal)}${timedOut}`;
    } finally {
      clearTimeout(timer);
      release();
    }
  }

  start(configPath: string): Promise<void> {
    return this.serialized(async () => {
      if (this.core) await this.terminate(this.core);
      const core = await this.spawnCore(configPath);
      try {
        await this.waitForApi(core);
      } catch (err) {
        await this.terminate(core);
        throw err;
      }
      core.phase = 'running';
      this.log.info({ pid: core.pid }, 'core started');
    });
  }

  stop(): Promise<void> {
    return this.serialized(async () => {
      if (this.core) await this.terminate(this.core);
    });
  }

  async addUser(inboundTag: string, user: CoreUser): Promise<void> {
    const core = this.running();
    // A V2Ray inbound handed another protocol's account panics and takes the whole core down.
    const inboundProtocol = core.inboundProtocols.get(inboundTag);
    if (inboundProtocol !== undefined && inboundProtocol !== user.account.protocol) {
      const message = `inbound ${inboundTag} is ${inboundProtocol}; refusing a ${user.account.protocol} account`;
      throw new CoreApiError('account-mismatch', status.INVALID_ARGUMENT, message, methodPath(core.api.protos.alterInbound));
    }
    await core.api.addUser(inboundTag, user);
  }

  async removeUser(inboundTag: string, email: string): Promise<void> {
    await this.running().api.removeUser(inboundTag, email);
  }

  async takeUserTraffic(): Promise<Map<string, UserTraffic>> {
    return this.running().api.takeUserTraffic();
  }

  // -------------------------------------------------------------------------

  private running(): RunningCore {
    if (!this.core) throw new Error(`${this.flavour} core is not running`);
    return this.core;
  }

  private serialized<T>(step: () => Promise<T>): Promise<T> {
    const result = this.lifecycle.then(step, step);
    this.lifecycle = result.catch(() => undefined);
    return result;
  }

  private async spawnCore(configPath: string): Promise<RunningCore> {
    const inboundProtocols = await readInboundProtocols(configPath);
    // Own process group: a Ctrl-C in the agent's terminal reaches only the
    // agent, which then stops the core itself instead of seeing it "crash".
    const child = spawn(this.binary, CORE_COMMANDS[this.flavour].run(configPath), { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    // Listen for the end before anything can await, so an early exit is never missed.
    // 'close' rather than 'exit': by then its output is read, so an error report has the last lines.
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) => reject(new Error(`could not run ${this.binary}: ${err.message}`)));
    });
    // Later errors (a failed kill) must not become an uncaught 'error' event.
    child.on('error', (err) => this.log.warn({ err }, 'core process error'));
    const pid = child.pid as number;

    const tail: string[] = [];
    for (const [name, stream] of [['stdout', child.stdout], ['stderr', child.stderr]] as const) {
      if (!stream) continue;
      createInterface({ input: stream }).on('line', (line) => {
        // The core's own log: connections and errors, never the configuration (which holds the users' secrets).
        this.log.debug({ pid, stream: name, line }, 'core output');
        tail.push(line);
        if (tail.length > OUTPUT_TAIL_LINES) tail.shift();
      });
    }

    const core: RunningCore = {
      child,
      pid,
      exited,
      phase: 'starting',
      cleanedUp: false,
      tail,
      api: new CoreApiClient({ flavour: this.flavour, address: `127.0.0.1:${this.apiPort}`, timeoutMs: this.apiTimeoutMs }),
      inboundProtocols,
      releaseReaper: killOnExit(pid, 'SIGKILL'),
    };
    this.core = core;
    runningDrivers.add(this);

    void exited.then(({ code, signal }) => this.exitedCore(core, code, signal));
    return core;
  }

  private exitedCore(core: RunningCore, code: number | null, signal: NodeJS.Signals | null): void {
    const unexpected = core.phase === 'running';
    this.cleanUp(core);
    if (!unexpected) return;
    this.log.warn({ pid: core.pid, code, signal, output: coreErrorText(core.tail.join('\n')) }, 'core exited unexpectedly');
    try {
      this.onExit?.(code, signal);
    } catch (err) {
      // Runs from a promise callback: a throw here would be an unhandled rejection.
      this.log.error({ err }, 'onExit handler failed');
    }
  }

  /** Forgets an exited core. Idempotent: both its exit handler and terminate() call it. */
  private cleanUp(core: RunningCore): void {
    if (core.cleanedUp) return;
    core.cleanedUp = true;
    core.releaseReaper();
    core.api.close();
    if (this.core === core) this.core = undefined;
    if (!this.core) runningDrivers.delete(this);
  }

  /** Polls QueryStats until the API answers; fails early with the core's last output if it exits. */
  private async waitForApi(core: RunningCore): Promise<void> {
    const deadline = Date.now() + this.startTimeoutMs;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    void core.exited.then((e) => (exit = e));
    const failure = (what: string) => {
      const output = coreErrorText(core.tail.join('\n'));
      return new Error(`${this.binary} ${what}${output !== '' ? `:\n${output}` : ''}`);
    };
    for (;;) {
      if (exit) throw failure(`${describeExit(exit.code, exit.signal)} while starting`);
      try {
        await core.api.queryStats(PROBE_PATTERN, false, PROBE_TIMEOUT_MS);
        return;
      } catch (err) {
        // Any answer from the core, even an error, means the API is up.
        if (err instanceof CoreApiError && err.kind !== 'unavailable' && err.kind !== 'timeout') return;
      }
      if (Date.now() >= deadline) throw failure(`API on 127.0.0.1:${this.apiPort} did not answer within ${this.startTimeoutMs} ms`);
      await Promise.race([new Promise((resolve) => setTimeout(resolve, PROBE_INTERVAL_MS)), core.exited]);
    }
  }

  private async terminate(core: RunningCore): Promise<void> {
    core.phase = 'stopping';
    if (core.child.exitCode === null && core.child.signalCode === null) {
      core.child.kill('SIGTERM');
      const escalate = setTimeout(() => {
        this.log.warn({ pid: core.pid, graceMs: this.stopGraceMs }, 'core ignored SIGTERM; sending SIGKILL');
        core.child.kill('SIGKILL');
      }, this.stopGraceMs);
      await core.exited;
      clearTimeout(escalate);
    }
    await core.exited;
    this.cleanUp(core);
  }
}
