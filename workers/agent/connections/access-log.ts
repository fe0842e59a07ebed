/**
 * The core's access log, as the agent reads it: one line per accepted
 * request naming the client's address and the user (`email`, Relaygrid's user
 * id). Formats seen:
 *
 *   V2Ray 4.34: 2026/12/06 21:08:38 127.0.0.1:48026 accepted tcp:127.0.0.1:38115 [direct] email: u1
 *   Xray:       2026/12/06 21:08:38.123456 from 127.0.0.1:48026 accepted tcp:example.com:443 [vless-in >> direct] email: u1
 *
 * (Xray also writes `from tcp:1.2.3.4:5` and `[in -> out]` in some releases.)
 * V2Ray does not name the inbound; the agent tells inbounds apart by the
 * local port of the socket instead. Lines without an email (HTTP/SOCKS
 * accounts, refused handshakes) are of no use here.
 */

export interface AccessRecord {
  /** The client's address:port as `ss` prints it: `1.2.3.4:5678` or `[2001:db8::1]:5678`. */
  client: string;
  email: string;
  /** Only Xray names it. */
  inboundTag: string | null;
}

const ACCEPTED = /^\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)? (?:from )?(?:(?:tcp|udp):)?(\S+) accepted (?:tcp|udp):\S+(?: \[([^\]]*)\])?.* email: (\S+)\s*$/;
const V4_MAPPED = /^\[::ffff:(\d+\.\d+\.\d+\.\d+)\]:(\d+)$/i;

/** `[::ffff:1.2.3.4]:5` (a dual-stack socket, as `ss` prints it) and `1.2.3.4:5` (as the core does) are the same client. */
export function canonicalEndpoint(endpoint: string): string {
  const mapped = V4_MAPPED.exec(endpoint);
  return mapped ? `${mapped[1]}:${mapped[2]}` : endpoint;
}

/** The client address part of an endpoint, without the port: what an IP limit counts. */
export function endpointIp(endpoint: string): string {
  const cut = endpoint.lastIndexOf(':');
  return endpoint.slice(0, cut).replace(/^\[|\]$/g, '');
}

export function parseAccessLine(line: string): AccessRecord | null {
  const match = ACCEPTED.exec(line);
  if (!match) return null;
  const detour = match[2] ?? '';
  const arrow = /\s(?:>>|->)\s/.exec(detour);
  return { client: canonicalEndpoint(match[1]!), email: match[3]!, inboundTag: arrow ? detour.slice(0, arrow.index).trim() || null : null };
}
