/**
 * The subset of the Xray-core configuration (JSON) that the renderer emits.
 * V2Ray 4.x reads the same shapes for everything here except REALITY.
 *
 * Field names follow Xray's documentation (XTLS/Xray-docs-next, config/inbounds/*,
 * config/transport.md, config/transports/reality.md) and the REALITY README.
 *
 * Declared as type aliases, not interfaces: an alias gets an implicit index
 * signature, so a rendered config is assignable to the agent's looser
 * `CoreConfig` (workers/agent/core/local-api.ts) without a cast.
 */

export type LogLevel = 'debug' | 'info' | 'warning' | 'error' | 'none';

export type LogSettings = {
  loglevel: LogLevel;
};

/** VLESS inbound client (`settings.clients[]`). `email` is what the core counts traffic by. */
export type VlessClient = {
  id: string;
  email: string;
  level: number;
  /** Only `xtls-rprx-vision`; omitted when the profile sets no flow, since V2Ray rejects XTLS flows. */
  flow?: string;
};

export type TrojanClient = {
  password: string;
  email: string;
  level: number;
};

/** HTTP and SOCKS inbound account (`settings.accounts[]`): no email, the core cannot count these per user. */
export type ProxyAccount = {
  user: string;
  pass: string;
};

export type VlessInboundSettings = {
  clients: VlessClient[];
  /** Required and must be "none" (VLESS has no encryption of its own). */
  decryption: 'none';
};

export type TrojanInboundSettings = {
  clients: TrojanClient[];
};

export type HttpInboundSettings = {
  accounts: ProxyAccount[];
  allowTransparent: boolean;
};

export type SocksInboundSettings = {
  auth: 'password';
  accounts: ProxyAccount[];
  udp: boolean;
};

export type TlsCertificate = {
  certificateFile: string;
  keyFile: string;
};

export type TlsSettings = {
  serverName?: string;
  certificates: TlsCertificate[];
};

/** Server side of REALITY (`streamSettings.realitySettings` on an inbound). */
export type RealityServerSettings = {
  show: boolean;
  /**
   * The site whose handshake is borrowed. Xray 24.x+ also reads it as `target`;
   * `dest` is the name every REALITY-capable Xray release understands.
   */
  dest: string;
  xver: number;
  serverNames: string[];
  privateKey: string;
  shortIds: string[];
};

export type StreamSettings =
  | { network: 'tcp'; security: 'none' }
  | { network: 'tcp'; security: 'tls'; tlsSettings: TlsSettings }
  | { network: 'tcp'; security: 'reality'; realitySettings: RealityServerSettings };

type InboundBase = {
  /** The profile id: the agent addresses users per inbound by this tag. */
  tag: string;
  listen: string;
  port: number;
  streamSettings: StreamSettings;
};

export type VlessInbound = InboundBase & { protocol: 'vless'; settings: VlessInboundSettings };
export type TrojanInbound = InboundBase & { protocol: 'trojan'; settings: TrojanInboundSettings };
export type HttpInbound = InboundBase & { protocol: 'http'; settings: HttpInboundSettings };
export type SocksInbound = InboundBase & { protocol: 'socks'; settings: SocksInboundSettings };

export type CoreInbound = VlessInbound | TrojanInbound | HttpInbound | SocksInbound;

export type FreedomOutbound = { tag: 'direct'; protocol: 'freedom'; settings: Record<string, never> };
export type BlackholeOutbound = { tag: 'block'; protocol: 'blackhole'; settings: Record<string, never> };
export type CoreOutbound = FreedomOutbound | BlackholeOutbound;

export type RoutingRule = {
  type: 'field';
  outboundTag: string;
  inboundTag?: string[];
  ip?: string[];
  domain?: string[];
};

export type RoutingSettings = {
  domainStrategy: 'AsIs' | 'IPIfNonMatch' | 'IPOnDemand';
  rules: RoutingRule[];
};

export type CoreConfig = {
  log: LogSettings;
  inbounds: CoreInbound[];
  outbounds: CoreOutbound[];
  routing: RoutingSettings;
};
