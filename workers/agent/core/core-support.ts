/**
 * What a core flavour cannot run, said before its own `-test`. V2Ray 4.34
 * accepts a configuration with `security: "reality"` or an XTLS Vision flow
 * ("Configuration OK") and then serves the inbound without them: a REALITY
 * profile becomes plain VLESS on the wire, and Vision clients cannot connect.
 * So the agent refuses such a configuration on V2Ray with a reason the
 * operator can act on, instead of reporting it applied.
 */
import type { CoreFlavour } from './core-api.js';

interface InboundShape {
  tag?: unknown;
  streamSettings?: { security?: unknown };
  settings?: { clients?: Array<{ flow?: unknown }> };
}

/** Why `flavour` cannot run `config` as written, or null when nothing stands in the way. */
export function unsupportedByCore(flavour: CoreFlavour, config: unknown): string | null {
  if (flavour !== 'v2ray') return null;
  const inbounds = (config as { inbounds?: unknown } | null)?.inbounds;
  for (const inbound of Array.isArray(inbounds) ? (inbounds as InboundShape[]) : []) {
    const tag = String(inbound.tag);
    if (inbound.streamSettings?.security === 'reality') return `inbound ${tag}: V2Ray has no REALITY (it would serve plain VLESS); run the agent with --core xray`;
    const clients = Array.isArray(inbound.settings?.clients) ? inbound.settings.clients : [];
    const flow = clients.find((c) => typeof c.flow === 'string' && c.flow !== '')?.flow;
    if (typeof flow === 'string') return `inbound ${tag}: V2Ray has no ${flow} flow; run the agent with --core xray or drop the profile's flow`;
  }
  return null;
}
