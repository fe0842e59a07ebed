/**
 * What the node agent needs from a proxy core (Xray-core in production, V2Ray 4.34
 * in tests): validate a configuration, run it, change users through the core's
 * gRPC HandlerService without a restart, and read per-user traffic from its
 * StatsService. The bench replaces it with a driver that only acknowledges.
 */

/** The account a user presents on one inbound kind. */
export type CoreAccount =
  | { protocol: 'vless'; id: string; flow?: string }
  | { protocol: 'trojan'; password: string }
  | { protocol: 'http' | 'socks'; username: string; password: string };

export interface CoreUser {
  /** Relaygrid's user id: the core counts traffic per email, so usage is per user. */
  email: string;
  level?: number;
  account: CoreAccount;
}

export interface UserTraffic {
  uplink: bigint;
  downlink: bigint;
}

export interface CoreDriver {
  /** Validates a configuration file with the core (`xray run -test` / `v2ray -test`): null when fine, else the core's error text. */
  test(configPath: string): Promise<string | null>;
  /** Starts the core with this configuration, or restarts it when running; resolves once its API answers. */
  start(configPath: string): Promise<void>;
  stop(): Promise<void>;
  /** Adds a user to a running inbound (HandlerService.AlterInbound + AddUserOperation). */
  addUser(inboundTag: string, user: CoreUser): Promise<void>;
  /** Removes a user from a running inbound by email (RemoveUserOperation); new connections of that user fail from then on. */
  removeUser(inboundTag: string, email: string): Promise<void>;
  /** Per-user traffic (by email) since the previous call: StatsService.QueryStats with reset. */
  takeUserTraffic(): Promise<Map<string, UserTraffic>>;
  /** Called when the core process exits without being asked to (the agent restarts it with the last good configuration). */
  onExit?: (code: number | null, signal: NodeJS.Signals | null) => void;
}
