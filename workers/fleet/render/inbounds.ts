/**
 * One profile → one inbound, without users. Which protocol and transport
 * security each profile kind means is decided here and only here; the reverse
 * mapping (`inboundKind`) lets the agent tell kinds apart from a config alone.
 */
import type { InboundProfile, ProfileKind } from '../../../producers/fleet/model.js';
import type { CoreInbound, StreamSettings } from './core-config.js';

/** Every inbound listens on all IPv4 addresses; the node's firewall decides what is reachable. */
export const LISTEN_ADDRESS = '0.0.0.0';

const KIND_SHAPE: Readonly<Record<ProfileKind, { protocol: CoreInbound['protocol']; security: StreamSettings['security'] }>> = {
  'vless-reality': { protocol: 'vless', security: 'reality' },
  'vless-tls': { protocol: 'vless', security: 'tls' },
  vless: { protocol: 'vless', security: 'none' },
  'trojan-tls': { protocol: 'trojan', security: 'tls' },
  http: { protocol: 'http', security: 'none' },
  socks: { protocol: 'socks', security: 'none' },
};

/** The profile could not be rendered: input that validation should have refused, or a missing secret. */
export class RenderError extends Error {
  constructor(
    readonly profileId: string,
    message: string,
  ) {
    super(`profile ${profileId}: ${message}`);
    this.name = 'RenderError';
  }
}

function required<T>(profile: InboundProfile, field: string, value: T | undefined): T {
  if (value === undefined || value === '' || (Array.isArray(value) && value.length === 0)) {
    throw new RenderError(profile.profileId, `${field} is required for ${profile.kind}`);
  }
  return value;
}

function streamSettings(profile: InboundProfile): StreamSettings {
  const { settings, secrets } = profile;
  switch (KIND_SHAPE[profile.kind].security) {
    case 'none':
      return { network: 'tcp', security: 'none' };
    case 'tls': {
      const serverName = settings.serverNames?.[0];
      return {
        network: 'tcp',
        security: 'tls',
        tlsSettings: {
          ...(serverName ? { serverName } : {}),
          certificates: [
            {
              certificateFile: required(profile, 'settings.certificateFile', settings.certificateFile),
              keyFile: required(profile, 'settings.keyFile', settings.keyFile),
            },
          ],
        },
      };
    }
    case 'reality':
      return {
        network: 'tcp',
        security: 'reality',
        realitySettings: {
          show: false,
          dest: required(profile, 'settings.dest', settings.dest),
          xver: 0,
          serverNames: [...required(profile, 'settings.serverNames', settings.serverNames)],
          privateKey: required(profile, 'secrets.realityPrivateKey', secrets.realityPrivateKey),
          // No short ids configured: "" is Xray's documented way to let clients send none.
          shortIds: settings.shortIds && settings.shortIds.length > 0 ? [...settings.shortIds] : [''],
        },
      };
  }
}

/** The profile's inbound with no clients or accounts. */
export function templateInbound(profile: InboundProfile): CoreInbound {
  const base = { tag: profile.profileId, listen: LISTEN_ADDRESS, port: profile.port, streamSettings: streamSettings(profile) };
  switch (KIND_SHAPE[profile.kind].protocol) {
    case 'vless':
      return { ...base, protocol: 'vless', settings: { clients: [], decryption: 'none' } };
    case 'trojan':
      return { ...base, protocol: 'trojan', settings: { clients: [] } };
    case 'http':
      return { ...base, protocol: 'http', settings: { accounts: [], allowTransparent: false } };
    case 'socks':
      return { ...base, protocol: 'socks', settings: { auth: 'password', accounts: [], udp: true } };
  }
}

/** The profile kind an inbound was rendered from. */
export function inboundKind(inbound: CoreInbound): ProfileKind {
  const security = inbound.streamSettings.security;
  for (const [kind, shape] of Object.entries(KIND_SHAPE) as [ProfileKind, (typeof KIND_SHAPE)[ProfileKind]][]) {
    if (shape.protocol === inbound.protocol && shape.security === security) return kind;
  }
  throw new Error(`inbound ${inbound.tag}: no profile kind renders ${inbound.protocol} with security ${security}`);
}
