import { describe, expect, it } from 'vitest';
import { catalogueRegistry } from '../../contracts/catalogue.js';
import { decodeMessage, encodeDecision, HEADER, type DomainEvent } from '../../contracts/envelope.js';
import { differingFields } from '../../infra/streams/apply.js';
import { commitIdOf } from '../../contracts/ids.js';

const registry = catalogueRegistry();
const time = new Date('2026-11-23T12:00:00.000Z');
// Stand-ins for sealed bytes: the envelope carries them as they come.
const event = (userId: string): DomainEvent<'identity.UserRegistered'> => ({
  type: 'identity.UserRegistered',
  data: {
    userId,
    emailHash: `hash-of-${userId}`,
    emailSealed: Buffer.from(`sealed:${userId}@example.org`),
    displayNameSealed: null,
    passwordHashSealed: null,
    roles: ['client'],
    registeredAt: time,
  },
});
const meta = { source: 'relaygrid/test', actor: 'user:u1', correlationId: 'c1', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };

describe('CloudEvents envelope', () => {
  it('carries one event as its Avro body with ce-* headers', () => {
    const msg = encodeDecision(registry, 'u1', [{ id: 'e1', event: event('u1'), time }], meta);
    expect(msg.id).toBe('e1');
    expect(msg.headers.get(HEADER.type)).toBe('relaygrid.identity.UserRegistered.v3');
    expect(msg.headers.get(HEADER.specVersion)).toBe('1.0');
    expect(msg.headers.get(HEADER.dataSchema)).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(msg.headers.get(HEADER.contentType)).toBe('avro/binary');
    expect(msg.headers.get(HEADER.time)).toBe('2026-11-23T12:00:00.000Z');
    const [decoded] = decodeMessage(registry, { seq: 7, subject: 'rg.evt.identity.user.u1', headers: msg.headers, data: msg.body });
    expect(decoded).toMatchObject({ seq: 7, id: 'e1', type: 'identity.UserRegistered', data: event('u1').data, meta });
  });

  it('carries several events of one decision in one commit message, in order', () => {
    const msg = encodeDecision(registry, 'u1', [{ id: 'e1', event: event('u1'), time }, { id: 'e2', event: event('u2'), time }], meta);
    expect(msg.id).toBe(commitIdOf(['e1', 'e2']));
    expect(msg.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(msg.headers.get(HEADER.type)).toBe('relaygrid.core.Commit.v1');
    const events = decodeMessage(registry, { seq: 9, subject: 's', headers: msg.headers, data: msg.body });
    expect(events.map((e) => [e.seq, e.id, e.type])).toEqual([
      [9, 'e1', 'identity.UserRegistered'],
      [9, 'e2', 'identity.UserRegistered'],
    ]);
  });
});

describe('stream config comparison', () => {
  it('reports fields the server changed or dropped', () => {
    expect(differingFields({ deny_delete: true, sources: [{ name: 'A' }], max_age: 0 }, { deny_delete: false, sources: [{ name: 'A', opt_start_seq: 0 }], max_age: 0 })).toEqual(['deny_delete']);
    expect(differingFields({ allow_direct: true }, {})).toEqual(['allow_direct']);
  });
});
