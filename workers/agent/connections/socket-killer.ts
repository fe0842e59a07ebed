/**
 * Closing and listing the core's TCP sockets with iproute2's `ss`. `ss -K`
 * asks the kernel to destroy each matching socket (SOCK_DESTROY, Linux 4.5+
 * with CONFIG_INET_DIAG_DESTROY; root or CAP_NET_ADMIN): the core's read or
 * write fails at once and it tears the proxied connection down, and the
 * client's side is reset. Filters name exact client endpoints on the
 * inbound's local port, so nobody else's socket matches.
 */
import { execFile, type ExecFileException } from 'node:child_process';
import { canonicalEndpoint } from './access-log.js';
import type { SocketInfo } from './connection-table.js';

export const SS = process.env['SS_BIN'] ?? '/usr/bin/ss';
/** Endpoints per `ss` invocation: keeps the argument (~30 bytes each) and the kernel filter bytecode small; chunks run in parallel. */
export const ENDPOINTS_PER_CALL = 500;

export interface KillResult {
  /** Sockets `ss` reported destroying. */
  closed: number;
  /** Their peer endpoints, with what `ss` last saw of them. */
  sockets: Map<string, SocketInfo>;
  /** Why the kernel (or the system) cannot destroy sockets here, when it cannot. */
  unsupported: string | null;
}

/** What `ss` prints when SOCK_DESTROY is not available or not allowed to us. */
const REFUSED = /not supported|not permitted|permission denied/i;

interface Output {
  stdout: string;
  stderr: string;
  error: ExecFileException | null;
}

function ss(binary: string, args: string[]): Promise<Output> {
  return new Promise((resolve) => {
    execFile(binary, args, { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => resolve({ stdout, stderr, error }));
  });
}

const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '');

const counter = (info: string, name: string): bigint => {
  const match = new RegExp(`\\b${name}:(\\d+)`).exec(info);
  return match ? BigInt(match[1]!) : 0n;
};

/**
 * Sockets of `ss -tinH` output: a line per socket (`[State] Recv-Q Send-Q
 * Local Peer`: the addresses are its last two columns), then an indented line
 * of TCP info with the byte counters. From the server's side, bytes received
 * came from the client (uplink), bytes sent went to it (downlink).
 */
export function parseSockets(stdout: string): Map<string, SocketInfo> {
  const sockets = new Map<string, SocketInfo>();
  let current: SocketInfo | null = null;
  for (const line of lines(stdout)) {
    if (/^\s/.test(line)) {
      if (current) {
        current.uplink = counter(line, 'bytes_received');
        current.downlink = counter(line, 'bytes_sent');
      }
      continue;
    }
    const fields = line.trim().split(/\s+/);
    const local = fields.at(-2) ?? '';
    const peer = fields.at(-1);
    current = null;
    if (!peer) continue;
    current = { localPort: Number(local.slice(local.lastIndexOf(':') + 1)), uplink: 0n, downlink: 0n };
    sockets.set(canonicalEndpoint(peer), current);
  }
  return sockets;
}

const PARALLEL_KILLS = 4;

/**
 * Why `ss` failed, for a log line: its exit, and its stderr only when that
 * names no endpoint. Never execFile's message, which repeats the command
 * line and with it every client address of the filter (personal data).
 */
function failure(error: ExecFileException, stderr: string): string {
  const exit = error.signal ? `killed by ${error.signal}` : `exit ${String(error.code)}`;
  const said = stderr.trim();
  return said !== '' && !/\d+\.\d+\.\d+\.\d+|\[[0-9a-f:]+\]/i.test(said) ? `${exit}: ${said}` : exit;
}

/** `( sport = :P and ( dst E or dst F ) ) or …` for each port's endpoints. */
export function killFilter(targets: ReadonlyMap<number, readonly string[]>): string {
  return [...targets].map(([port, endpoints]) => `( sport = :${port} and ( ${endpoints.map((e) => `dst ${e}`).join(' or ')} ) )`).join(' or ');
}

/** Splits port → endpoints into groups of at most `per` endpoints. */
export function chunkTargets(targets: ReadonlyMap<number, ReadonlySet<string>>, per = ENDPOINTS_PER_CALL): Array<Map<number, string[]>> {
  const chunks: Array<Map<number, string[]>> = [];
  let chunk = new Map<number, string[]>();
  let count = 0;
  for (const [port, endpoints] of targets) {
    for (const endpoint of endpoints) {
      if (count === per) {
        chunks.push(chunk);
        chunk = new Map();
        count = 0;
      }
      let list = chunk.get(port);
      if (!list) chunk.set(port, (list = []));
      list.push(endpoint);
      count++;
    }
  }
  if (count > 0) chunks.push(chunk);
  return chunks;
}

export class SocketKiller {
  constructor(private readonly binary = SS) {}

  /** Destroys the established TCP sockets on each local port whose peer is one of its endpoints. */
  async kill(targets: ReadonlyMap<number, ReadonlySet<string>>): Promise<KillResult> {
    const chunks = chunkTargets(targets);
    const results: Output[] = [];
    // A few `ss` at a time: a mass removal must not fork one process per 500 endpoints at once.
    for (let i = 0; i < chunks.length; i += PARALLEL_KILLS) {
      results.push(...(await Promise.all(chunks.slice(i, i + PARALLEL_KILLS).map((chunk) => ss(this.binary, ['-K', '-tinH', 'state', 'connected', killFilter(chunk)])))));
    }
    const sockets = new Map<string, SocketInfo>();
    for (const { stdout, stderr, error } of results) {
      if (error?.code === 'ENOENT') return { closed: sockets.size, sockets, unsupported: `${this.binary} not found (install iproute2)` };
      const refusal = lines(stderr).find((l) => REFUSED.test(l));
      if (refusal) return { closed: sockets.size, sockets, unsupported: refusal.trim() };
      if (error) throw new Error(`${this.binary} -K failed: ${failure(error, stderr)}`);
      for (const [peer, info] of parseSockets(stdout)) sockets.set(peer, info);
    }
    return { closed: sockets.size, sockets, unsupported: null };
  }

  /** The established TCP sockets on these local ports, by peer endpoint, with their byte counters. */
  async established(ports: readonly number[]): Promise<Map<string, SocketInfo>> {
    if (ports.length === 0) return new Map();
    const { stdout, stderr, error } = await ss(this.binary, ['-tinH', 'state', 'established', `( ${ports.map((p) => `sport = :${p}`).join(' or ')} )`]);
    if (error) throw new Error(`${this.binary} failed: ${failure(error, stderr)}`);
    return parseSockets(stdout);
  }
}
