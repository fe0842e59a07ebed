/**
 * Protocol v1 of the messenger gateway: JSON text frames (docs/protocol.md).
 * This module only parses and validates what clients send and shapes what the
 * server sends; it does no I/O, so every rule here is unit-tested.
 */

/** Close codes the gateway uses besides the standard ones. */
export const CLOSE = {
  /** Authentication failed or was revoked. */
  auth: 4401,
  /** The same device connected again elsewhere. */
  elsewhere: 4409,
  /** Too slow to read what it was sent: reconnect and resume. */
  tooSlow: 4008,
  /** Kept sending past its rate limit. */
  rateLimited: 4429,
  /** The gateway drained (SIGTERM): reconnect to any gateway and resume (RFC 6455 Service Restart). */
  restarting: 1012,
} as const;

export type Recipient = { user: string } | { group: string };

export interface DeviceCiphertext {
  device: string;
  type: number;
  body: string;
}

interface SendCommon {
  op: 'send';
  id: string;
  ttl?: number;
}
/** To a user: one ciphertext per recipient device and per sender's other device. */
export type DirectSend = SendCommon & { to: { user: string }; messages: DeviceCiphertext[] };
/** To a group: one sender-key ciphertext for every member. */
export type GroupSend = SendCommon & { to: { group: string }; type: number; body: string };
export type SendFrame = DirectSend | GroupSend;

export function isGroupSend(frame: SendFrame): frame is GroupSend {
  return 'group' in frame.to;
}

export type ClientFrame =
  | SendFrame
  | { op: 'ack'; upTo: number }
  | { op: 'resume'; epoch: string; offset: number }
  | { op: 'typing'; to: Recipient; state: 'start' | 'stop' }
  | { op: 'signal'; to: { user: string; device: string }; data: unknown }
  | { op: 'presence.watch'; users: string[] }
  | { op: 'presence.unwatch'; users: string[] }
  | { op: 'ping' };

/** A frame the gateway refuses: becomes `{"op":"error","code",…}` and changes nothing. */
export class FrameError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export interface FrameLimits {
  /** Largest decoded ciphertext of one body. */
  maxMessageBytes: number;
  /** Most devices one send may address (recipient's plus the sender's own). */
  maxDevicesPerSend: number;
  /** Most users one presence.watch may name. */
  maxWatch: number;
  /** Longest disappearing-message ttl, in seconds. */
  maxTtlSeconds: number;
}

const ID = /^[A-Za-z0-9_-]{1,128}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const MAX_SIGNAL_BYTES = 16 * 1024;

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(field: string, why: string): FrameError {
  return new FrameError('invalid_field', `${field}: ${why}`, { field });
}

function id(frame: Json, field: string, path = field): string {
  const value = frame[field];
  if (typeof value !== 'string' || !ID.test(value)) throw invalid(path, 'must be 1-128 characters of A-Z, a-z, 0-9, _ or -');
  return value;
}

function wholeNumber(frame: Json, field: string, max = Number.MAX_SAFE_INTEGER): number {
  const value = frame[field];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max) throw invalid(field, `must be a whole number 0..${max}`);
  return value;
}

function messageType(frame: Json, path: string): number {
  const value = frame['type'];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 255) throw invalid(path, 'must be a whole number 0..255');
  return value;
}

/** Base64 ciphertext; its decoded size is checked without decoding it. */
function body(frame: Json, path: string, limits: FrameLimits): string {
  const value = frame['body'];
  if (typeof value !== 'string' || value.length === 0 || !BASE64.test(value)) throw invalid(path, 'must be non-empty standard base64');
  const bytes = (value.length / 4) * 3 - (value.endsWith('==') ? 2 : value.endsWith('=') ? 1 : 0);
  if (bytes > limits.maxMessageBytes) throw new FrameError('too_large', `${path}: ${bytes} bytes is over the limit of ${limits.maxMessageBytes}`, { field: path, limit: limits.maxMessageBytes });
  return value;
}

function recipient(frame: Json): Recipient {
  const to = frame['to'];
  if (!isObject(to)) throw invalid('to', 'must be {"user":…} or {"group":…}');
  if ('user' in to && !('group' in to)) return { user: id(to, 'user', 'to.user') };
  if ('group' in to && !('user' in to)) return { group: id(to, 'group', 'to.group') };
  throw invalid('to', 'must name exactly one of user or group');
}

function userList(frame: Json, limits: FrameLimits): string[] {
  const users = frame['users'];
  if (!Array.isArray(users) || users.length === 0 || users.length > limits.maxWatch) throw invalid('users', `must be a list of 1..${limits.maxWatch} user ids`);
  return [...new Set(users.map((_, i) => id(users as unknown as Json, String(i), `users[${i}]`)))];
}

function parseSend(frame: Json, limits: FrameLimits): SendFrame {
  const messageId = id(frame, 'id');
  const to = recipient(frame);
  const ttl = frame['ttl'] === undefined || frame['ttl'] === null ? undefined : wholeNumber(frame, 'ttl', limits.maxTtlSeconds);
  if (ttl === 0) throw invalid('ttl', `must be 1..${limits.maxTtlSeconds} seconds when given`);
  const extras = ttl === undefined ? {} : { ttl };
  if ('group' in to) {
    return { op: 'send', id: messageId, to, type: messageType(frame, 'type'), body: body(frame, 'body', limits), ...extras };
  }
  const list = frame['messages'];
  if (!Array.isArray(list) || list.length === 0 || list.length > limits.maxDevicesPerSend) {
    throw invalid('messages', `must be a list of 1..${limits.maxDevicesPerSend} ciphertexts, one per device`);
  }
  const seen = new Set<string>();
  const messages = list.map((item: unknown, i): DeviceCiphertext => {
    if (!isObject(item)) throw invalid(`messages[${i}]`, 'must be {"device","type","body"}');
    const device = id(item, 'device', `messages[${i}].device`);
    if (seen.has(device)) throw invalid(`messages[${i}].device`, `device ${device} appears twice`);
    seen.add(device);
    return { device, type: messageType(item, `messages[${i}].type`), body: body(item, `messages[${i}].body`, limits) };
  });
  return { op: 'send', id: messageId, to, messages, ...extras };
}

/** Parses one text frame; throws FrameError with a stable code for anything malformed. */
export function parseClientFrame(text: string, limits: FrameLimits): ClientFrame {
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch {
    throw new FrameError('bad_frame', 'a frame must be one JSON object');
  }
  if (!isObject(frame) || typeof frame['op'] !== 'string') throw new FrameError('bad_frame', 'a frame must be a JSON object with an "op"');
  switch (frame['op']) {
    case 'send':
      return parseSend(frame, limits);
    case 'ack':
      return { op: 'ack', upTo: wholeNumber(frame, 'upTo') };
    case 'resume': {
      const epoch = frame['epoch'];
      if (typeof epoch !== 'string' || epoch.length > 64) throw invalid('epoch', 'must be the epoch string the server sent');
      return { op: 'resume', epoch, offset: wholeNumber(frame, 'offset') };
    }
    case 'typing': {
      const state = frame['state'] ?? 'start';
      if (state !== 'start' && state !== 'stop') throw invalid('state', 'must be start or stop');
      return { op: 'typing', to: recipient(frame), state };
    }
    case 'signal': {
      const to = frame['to'];
      if (!isObject(to)) throw invalid('to', 'must be {"user":…,"device":…}');
      const data = frame['data'];
      if (data === undefined || JSON.stringify(data).length > MAX_SIGNAL_BYTES) throw invalid('data', `must be present and under ${MAX_SIGNAL_BYTES} bytes`);
      return { op: 'signal', to: { user: id(to, 'user', 'to.user'), device: id(to, 'device', 'to.device') }, data };
    }
    case 'presence.watch':
    case 'presence.unwatch':
      return { op: frame['op'], users: userList(frame, limits) };
    case 'ping':
      return { op: 'ping' };
    default:
      throw new FrameError('unknown_op', `unknown op "${String(frame['op'])}"`);
  }
}

export function errorFrame(code: string, message: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ op: 'error', ...extra, code, message });
}

export function frameOf(error: FrameError, requestId?: string): string {
  return errorFrame(error.code, error.message, requestId === undefined ? error.extra : { id: requestId, ...error.extra });
}
