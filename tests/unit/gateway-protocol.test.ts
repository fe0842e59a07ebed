/** Protocol v1 frame parsing: every malformed frame is refused with a stable code naming the field. */
import { describe, expect, it } from 'vitest';
import { FrameError, parseClientFrame, type FrameLimits } from '../../gateways/protocol.js';
import { live } from '../../gateways/live-frames.js';
import { msgFrame } from '../../gateways/inbox.js';
import { KeyedBuckets, TokenBucket } from '../../gateways/limits.js';

const limits: FrameLimits = { maxMessageBytes: 12, maxDevicesPerSend: 3, maxWatch: 2, maxTtlSeconds: 60 };
const parse = (frame: unknown) => parseClientFrame(typeof frame === 'string' ? frame : JSON.stringify(frame), limits);
function refused(frame: unknown): { code: string; field?: unknown } {
  try {
    parse(frame);
  } catch (err) {
    expect(err).toBeInstanceOf(FrameError);
    return { code: (err as FrameError).code, field: (err as FrameError).extra['field'] };
  }
  throw new Error(`accepted ${JSON.stringify(frame)}`);
}

describe('client frames', () => {
  it('parses a send to a user, one ciphertext per device, and to a group with one body', () => {
    expect(parse({ op: 'send', id: 'm1', to: { user: 'u2' }, messages: [{ device: 'd1', type: 1, body: 'AAAA' }], ttl: 5 })).toEqual({
      op: 'send',
      id: 'm1',
      to: { user: 'u2' },
      messages: [{ device: 'd1', type: 1, body: 'AAAA' }],
      ttl: 5,
    });
    expect(parse({ op: 'send', id: 'm2', to: { group: 'g1' }, type: 3, body: 'AAAA' })).toEqual({ op: 'send', id: 'm2', to: { group: 'g1' }, type: 3, body: 'AAAA' });
  });

  it('refuses malformed frames with stable codes and the field', () => {
    expect(refused('not json')).toEqual({ code: 'bad_frame', field: undefined });
    expect(refused([1])).toEqual({ code: 'bad_frame', field: undefined });
    expect(refused({ op: 'fly' })).toEqual({ code: 'unknown_op', field: undefined });
    expect(refused({ op: 'send', id: 'has space', to: { user: 'u' }, messages: [] })).toEqual({ code: 'invalid_field', field: 'id' });
    expect(refused({ op: 'send', id: 'm', to: { user: 'u', group: 'g' }, messages: [] })).toEqual({ code: 'invalid_field', field: 'to' });
    expect(refused({ op: 'send', id: 'm', to: { user: 'u' }, messages: [] })).toEqual({ code: 'invalid_field', field: 'messages' });
    expect(refused({ op: 'send', id: 'm', to: { user: 'u' }, messages: [{ device: 'd', type: 1, body: 'not base64!' }] })).toEqual({ code: 'invalid_field', field: 'messages[0].body' });
    expect(refused({ op: 'send', id: 'm', to: { user: 'u' }, messages: [{ device: 'd', type: 1, body: 'AAAA' }, { device: 'd', type: 1, body: 'AAAA' }] })).toEqual({
      code: 'invalid_field',
      field: 'messages[1].device',
    });
    expect(refused({ op: 'send', id: 'm', to: { group: 'g' }, type: 1, body: 'AAAA', ttl: 0 })).toEqual({ code: 'invalid_field', field: 'ttl' });
    expect(refused({ op: 'send', id: 'm', to: { group: 'g' }, type: 1, body: 'AAAA', ttl: 61 })).toEqual({ code: 'invalid_field', field: 'ttl' });
    expect(refused({ op: 'ack', upTo: -1 })).toEqual({ code: 'invalid_field', field: 'upTo' });
    expect(refused({ op: 'resume', epoch: 5, offset: 0 })).toEqual({ code: 'invalid_field', field: 'epoch' });
    expect(refused({ op: 'presence.watch', users: ['a', 'b', 'c'] })).toEqual({ code: 'invalid_field', field: 'users' });
    expect(refused({ op: 'signal', to: { user: 'u' }, data: {} })).toEqual({ code: 'invalid_field', field: 'to.device' });
  });

  it('measures a body by its decoded size: 12 bytes pass, 13 are too_large', () => {
    const body12 = Buffer.alloc(12).toString('base64');
    const body13 = Buffer.alloc(13).toString('base64');
    expect(() => parse({ op: 'send', id: 'm', to: { group: 'g' }, type: 1, body: body12 })).not.toThrow();
    expect(refused({ op: 'send', id: 'm', to: { group: 'g' }, type: 1, body: body13 })).toEqual({ code: 'too_large', field: 'body' });
  });
});

describe('live frames between gateways', () => {
  it('round-trip, with newlines inside the stored JSON kept', () => {
    const entry = { offset: 42, json: '{"id":"m","body":"a\\nb"}' };
    expect(live.parseUser(live.message('d1', entry))).toEqual({ kind: 'message', device: 'd1', entry });
    expect(live.parseUser(live.frame('*', '{"op":"typing"}'))).toEqual({ kind: 'frame', device: '*', frame: '{"op":"typing"}' });
    expect(live.parseUser(live.kick('d1', 'c1'))).toEqual({ kind: 'kick', device: 'd1', connId: 'c1' });
    expect(live.parseGroup(live.groupMessage('d9', entry))).toEqual({ kind: 'message', senderDevice: 'd9', entry });
    expect(live.parseGroup(live.groupFrame('d9', '{"op":"typing"}'))).toEqual({ kind: 'frame', senderDevice: 'd9', frame: '{"op":"typing"}' });
    expect(live.parseUser('x\nnonsense')).toBeUndefined();
  });

  it('a msg frame is the stored JSON with op, epoch and offset in front, and parses as such', () => {
    const frame = msgFrame('e1', { offset: 7, json: JSON.stringify({ id: 'm', from: { user: 'u', device: 'd' }, type: 1, body: 'AA==', ts: 5 }) });
    expect(JSON.parse(frame)).toEqual({ op: 'msg', epoch: 'e1', offset: 7, id: 'm', from: { user: 'u', device: 'd' }, type: 1, body: 'AA==', ts: 5 });
  });
});

describe('send limits', () => {
  it('a token bucket allows a burst, then refills at its rate', () => {
    const bucket = new TokenBucket(2, 2 / 1000, 0);
    expect([bucket.take(0), bucket.take(0), bucket.take(0)]).toEqual([true, true, false]);
    expect(bucket.take(499)).toBe(false);
    expect(bucket.take(500)).toBe(true);
  });

  it('pair buckets are independent and forgotten once full again', () => {
    const pairs = new KeyedBuckets(1, 1000);
    expect(pairs.take('a>b', 0)).toBe(true);
    expect(pairs.take('a>b', 10)).toBe(false);
    expect(pairs.take('a>c', 10)).toBe(true);
    pairs.take('x>y', 5000);
    expect(pairs.size).toBe(1);
  });
});
