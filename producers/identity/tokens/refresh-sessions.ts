/**
 * Sessions and their rotating refresh tokens, in Redis. A refresh token is
 * `<session id>.<secret>`; only the SHA-256 of the current secret is stored,
 * plus the hashes of the ones already rotated away. Presenting a rotated token
 * again means it was copied: the whole family (the session) is revoked.
 *
 * Keys (all under `<ns>:`): `sess:<id>` hash, `sess:<id>:used` set of rotated
 * hashes, `user-sess:<userId>` set of the user's session ids.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

export interface SessionInfo {
  id: string;
  userId: string;
  device: string;
  ip: string;
  createdAt: number;
  lastSeenAt: number;
}

export type RotateOutcome =
  | { outcome: 'rotated'; userId: string; sessionId: string; refreshToken: string }
  | { outcome: 'reused'; userId: string; sessionId: string }
  | { outcome: 'invalid' };

const ROTATE = `
local current = redis.call('HGET', KEYS[1], 'tokenHash')
if not current then return {'invalid'} end
local user = redis.call('HGET', KEYS[1], 'userId')
if current == ARGV[1] then
  redis.call('HSET', KEYS[1], 'tokenHash', ARGV[2], 'lastSeenAt', ARGV[3], 'ip', ARGV[4])
  redis.call('SADD', KEYS[2], ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
  -- The user's list of sessions lives as long as their longest-lived session.
  -- (Its name is built here, as the user is only known now: one Redis, not a cluster.)
  redis.call('PEXPIRE', ARGV[6] .. user, ARGV[5], 'GT')
  return {'rotated', user}
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  redis.call('DEL', KEYS[1], KEYS[2])
  return {'reused', user}
end
return {'invalid'}
`;

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

function parseToken(token: string): { sessionId: string; secret: string } | undefined {
  const dot = token.indexOf('.');
  if (dot <= 0 || dot === token.length - 1 || token.length > 200) return undefined;
  return { sessionId: token.slice(0, dot), secret: token.slice(dot + 1) };
}

export class RefreshSessions {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttlSeconds: number,
  ) {}

  private sessionKey(id: string): string {
    return `${this.prefix}:sess:${id}`;
  }

  private userKey(userId: string): string {
    return `${this.prefix}:user-sess:${userId}`;
  }

  /** Stores a new session and returns its first refresh token. */
  async create(session: Omit<SessionInfo, 'lastSeenAt'>): Promise<string> {
    const secret = randomBytes(32).toString('base64url');
    const ttlMs = this.ttlSeconds * 1000;
    await this.redis
      .multi()
      .hset(this.sessionKey(session.id), {
        userId: session.userId,
        tokenHash: sha256(secret),
        device: session.device,
        ip: session.ip,
        createdAt: session.createdAt,
        lastSeenAt: session.createdAt,
      })
      .pexpire(this.sessionKey(session.id), ttlMs)
      .sadd(this.userKey(session.userId), session.id)
      .pexpire(this.userKey(session.userId), ttlMs)
      .exec();
    return `${session.id}.${secret}`;
  }

  /** Swaps a refresh token for the next one of its family, or detects that it was used before. */
  async rotate(token: string, ip: string, now = Date.now()): Promise<RotateOutcome> {
    const parsed = parseToken(token);
    if (!parsed) return { outcome: 'invalid' };
    const next = randomBytes(32).toString('base64url');
    const key = this.sessionKey(parsed.sessionId);
    const ttlMs = this.ttlSeconds * 1000;
    const result = (await this.redis.eval(ROTATE, 2, key, `${key}:used`, sha256(parsed.secret), sha256(next), now, ip, ttlMs, this.userKey(''))) as string[];
    const [outcome, userId] = result;
    if (outcome === 'rotated' && userId) return { outcome, userId, sessionId: parsed.sessionId, refreshToken: `${parsed.sessionId}.${next}` };
    if (outcome === 'reused' && userId) {
      await this.redis.srem(this.userKey(userId), parsed.sessionId);
      return { outcome, userId, sessionId: parsed.sessionId };
    }
    return { outcome: 'invalid' };
  }

  async get(id: string): Promise<SessionInfo | undefined> {
    const h = await this.redis.hgetall(this.sessionKey(id));
    if (!h['userId']) return undefined;
    return { id, userId: h['userId'], device: h['device'] ?? '', ip: h['ip'] ?? '', createdAt: Number(h['createdAt']), lastSeenAt: Number(h['lastSeenAt']) };
  }

  /** The user's live sessions, newest first; ids of expired ones are pruned on the way. */
  async list(userId: string): Promise<SessionInfo[]> {
    const ids = await this.redis.smembers(this.userKey(userId));
    const sessions = await Promise.all(ids.map((id) => this.get(id)));
    const gone = ids.filter((_, i) => !sessions[i]);
    if (gone.length > 0) await this.redis.srem(this.userKey(userId), ...gone);
    return sessions.filter((s): s is SessionInfo => s !== undefined && s.userId === userId).sort((a, b) => b.createdAt - a.createdAt);
  }

  /** Ends one session; answers whether it was live. */
  async revoke(userId: string, id: string): Promise<boolean> {
    const owner = await this.redis.hget(this.sessionKey(id), 'userId');
    if (owner !== userId) return false;
    await this.redis.multi().del(this.sessionKey(id), `${this.sessionKey(id)}:used`).srem(this.userKey(userId), id).exec();
    return true;
  }

  /** Ends every session of a user (but `except`), in one transaction; returns the ids ended. */
  async revokeAll(userId: string, except?: string): Promise<string[]> {
    const ids = (await this.redis.smembers(this.userKey(userId))).filter((id) => id !== except);
    if (ids.length === 0) return ids;
    await this.redis
      .multi()
      .del(...ids.flatMap((id) => [this.sessionKey(id), `${this.sessionKey(id)}:used`]))
      .srem(this.userKey(userId), ...ids)
      .exec();
    return ids;
  }
}
