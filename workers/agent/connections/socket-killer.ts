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

export const SS = process.env['SS_BIN'] ?? '/usr/bin/ss';
/** Endpoints per `ss` invocation: keeps the argument (~30 bytes each) and the kernel filter bytecode small; chunks run in parallel. */
export const ENDPOINTS_PER_CALL = 500;

export interface KillResult {
  /** Sockets `ss` reported destroying. */
  closed: number;
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
    const results = await Promise.all(chunkTargets(targets).map((chunk) => ss(this.binary, ['-K', '-tnH', 'state', 'connected', killFilter(chunk)])));
    let closed = 0;
    for (const { stdout, stderr, error } of results) {
      if (error?.code === 'ENOENT') return { closed, unsupported: `${this.binary} not found (install iproute2)` };
      const refusal = lines(stderr).find((l) => REFUSED.test(l));
      if (refusal) return { closed, unsupported: refusal.trim() };
      if (error) throw new Error(`${this.binary} -K failed: ${stderr.trim() || error.message}`);
      closed += lines(stdout).length;
    }
    return { closed, unsupported: null };
  }

  /** Peer endpoints of the established TCP sockets on these local ports. */
  async established(ports: readonly number[]): Promise<Set<string>> {
    const live = new Set<string>();
    if (ports.length === 0) return live;
    const { stdout, stderr, error } = await ss(this.binary, ['-tnH', 'state', 'established', `( ${ports.map((p) => `sport = :${p}`).join(' or ')} )`]);
    if (error) throw new Error(`${this.binary} failed: ${stderr.trim() || error.message}`);
    // Recv-Q Send-Q Local Peer (one state asked for: no State column).
    for (const line of lines(stdout)) {
      const peer = line.trim().split(/\s+/)[3];
      if (peer) live.add(canonicalEndpoint(peer));
    }
    return live;
  }
}
