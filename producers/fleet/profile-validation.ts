/**
 * Validation of profile input (create and update) before it reaches the
 * profile decider. Each refusal is a DomainError `invalid_profile` whose
 * message starts with the offending field, e.g. "port: must be an integer
 * 1-65535", so an API client can point at it.
 *
 * Only settings that mean something for the kind are accepted, so a typo or a
 * REALITY field on a TLS profile is refused instead of silently ignored. The
 * REALITY public key is never accepted: the server derives it from the key
 * pair it generated, and it must not drift from the sealed private key.
 */
import { isAbsolute } from 'node:path/posix';
import { DomainError } from '../decider.js';
import { PROFILE_KINDS, type ProfileKind, type ProfileSettings } from './model.js';
import { MAX_SHORT_ID_BYTES } from './reality-keys.js';

export interface ValidProfileInput {
  kind: ProfileKind;
  port: number;
  labels: string[];
  settings: ProfileSettings;
}

/** uTLS fingerprints Xray accepts for `fingerprint` (transport/internet/tls, Xray-docs-next transport.md). */
export const FINGERPRINTS = ['chrome', 'firefox', 'safari', 'ios', 'android', 'edge', '360', 'qq', 'random', 'randomized'] as const;
export const VISION_FLOW = 'xtls-rprx-vision';

const LABEL = /^[a-z0-9_-]{1,64}$/;
const HOST_LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const HOSTNAME = new RegExp(`^(?=.{1,253}$)${HOST_LABEL}(?:\\.${HOST_LABEL})*$`, 'i');
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const IPV6_BRACKETED = /^\[[0-9a-f:.]+\]$/i;
const SHORT_ID = new RegExp(`^(?:[0-9a-f]{2}){0,${MAX_SHORT_ID_BYTES}}$`, 'i');
const MAX_LIST = 64;

type SettingKey = keyof ProfileSettings;

/** Settings each kind accepts; `publicKey` is deliberately in none of them. */
const ALLOWED: Readonly<Record<ProfileKind, readonly SettingKey[]>> = {
  'vless-reality': ['dest', 'serverNames', 'shortIds', 'fingerprint', 'flow'],
  'vless-tls': ['certificateFile', 'keyFile', 'serverNames', 'fingerprint', 'flow'],
  'trojan-tls': ['certificateFile', 'keyFile', 'serverNames', 'fingerprint'],
  vless: [],
  http: [],
  socks: [],
};

function invalid(field: string, message: string): never {
  throw new DomainError('invalid_profile', `${field}: ${message}`, { field });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function portNumber(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65_535) invalid(field, 'must be an integer 1-65535');
  return value;
}

function stringList(field: string, value: unknown, { nonEmpty }: { nonEmpty: boolean }): string[] {
  if (!Array.isArray(value)) invalid(field, 'must be a list of strings');
  if (nonEmpty && value.length === 0) invalid(field, 'must not be empty');
  if (value.length > MAX_LIST) invalid(field, `must have at most ${MAX_LIST} entries`);
  return value.map((item, i) => {
    if (typeof item !== 'string') invalid(`${field}[${i}]`, 'must be a string');
    return item;
  });
}

function labels(value: unknown): string[] {
  if (value === undefined) return [];
  const list = stringList('labels', value, { nonEmpty: false });
  list.forEach((label, i) => {
    if (!LABEL.test(label)) invalid(`labels[${i}]`, 'must be 1-64 characters of a-z, 0-9, - and _');
  });
  // Sorted and unique: the decider compares label lists, and order carries no meaning.
  return [...new Set(list)].sort();
}

function hostnames(field: string, value: unknown, nonEmpty: boolean): string[] {
  const list = stringList(field, value, { nonEmpty });
  list.forEach((name, i) => {
    // Xray matches serverNames exactly; wildcards are not supported.
    if (!HOSTNAME.test(name)) invalid(`${field}[${i}]`, 'must be a hostname (no wildcards)');
  });
  return [...new Set(list.map((name) => name.toLowerCase()))];
}

function dest(value: unknown): string {
  const field = 'settings.dest';
  if (typeof value !== 'string') invalid(field, 'is required: host:port of the site whose TLS handshake is borrowed');
  const colon = value.lastIndexOf(':');
  const host = value.slice(0, colon);
  const port = value.slice(colon + 1);
  if (colon < 1 || !/^\d{1,5}$/.test(port) || !(HOSTNAME.test(host) || IPV4.test(host) || IPV6_BRACKETED.test(host))) {
    invalid(field, 'must be host:port (IPv6 in brackets)');
  }
  portNumber(field, Number(port));
  return value.toLowerCase();
}

function shortIds(value: unknown): string[] {
  const list = stringList('settings.shortIds', value, { nonEmpty: false });
  const lower = list.map((id, i) => {
    if (!SHORT_ID.test(id)) invalid(`settings.shortIds[${i}]`, `must be hex of even length, at most ${MAX_SHORT_ID_BYTES * 2} characters`);
    return id.toLowerCase();
  });
  if (new Set(lower).size !== lower.length) invalid('settings.shortIds', 'must not repeat');
  return lower;
}

function absolutePath(field: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') invalid(field, 'is required');
  // The path is read on the node, a Linux host: absolute in POSIX terms and free of control characters.
  if (!isAbsolute(value) || /[\0-\x1f]/.test(value)) invalid(field, 'must be an absolute path');
  return value;
}

function oneOf<T extends string>(field: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) invalid(field, `must be one of ${allowed.map((a) => a || "''").join(', ')}`);
  return value as T;
}

function settingsFor(kind: ProfileKind, value: unknown): ProfileSettings {
  if (value === undefined) value = {};
  if (!isRecord(value)) invalid('settings', 'must be an object');
  const allowed = ALLOWED[kind];
  for (const key of Object.keys(value)) {
    if (key === 'publicKey') invalid('settings.publicKey', 'is generated by the server with the private key and cannot be set');
    if (!(allowed as readonly string[]).includes(key)) invalid(`settings.${key}`, `is not a setting of ${kind}`);
  }
  const settings: ProfileSettings = {};
  const has = (key: SettingKey) => value[key] !== undefined;

  if (kind === 'vless-reality') {
    settings.dest = dest(value.dest);
    if (!has('serverNames')) invalid('settings.serverNames', 'is required: the SNI values clients may present');
    settings.serverNames = hostnames('settings.serverNames', value.serverNames, true);
    if (has('shortIds')) settings.shortIds = shortIds(value.shortIds);
  }
  if (kind === 'vless-tls' || kind === 'trojan-tls') {
    settings.certificateFile = absolutePath('settings.certificateFile', value.certificateFile);
    settings.keyFile = absolutePath('settings.keyFile', value.keyFile);
    if (has('serverNames')) settings.serverNames = hostnames('settings.serverNames', value.serverNames, false);
  }
  if (has('fingerprint')) settings.fingerprint = oneOf('settings.fingerprint', value.fingerprint, FINGERPRINTS);
  if (has('flow')) {
    // '' means no flow; it is dropped so the renderer and share links see one spelling of "none".
    const flow = oneOf('settings.flow', value.flow, ['', VISION_FLOW] as const);
    if (flow) settings.flow = flow;
  }
  return settings;
}

/** The profile's kind, port, labels and settings, checked and normalized; throws DomainError `invalid_profile`. */
export function validateProfileInput(input: unknown): ValidProfileInput {
  if (!isRecord(input)) invalid('profile', 'must be an object');
  const kind = oneOf('kind', input.kind, PROFILE_KINDS);
  return {
    kind,
    port: portNumber('port', input.port),
    labels: labels(input.labels),
    settings: settingsFor(kind, input.settings),
  };
}
