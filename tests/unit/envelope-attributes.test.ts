/** CloudEvents attributes (contracts/envelope.ts), read from the raw header block, agree with nats.js' own parser. */
import { headers as natsHeaders } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { cloudEventAttributes, rawMessageOf, type RawMessage } from '../../contracts/envelope.js';

/** As decoders and exports read a delivered message. */
const ceHeadersOf = (msg: object) => cloudEventAttributes(rawMessageOf(msg as RawMessage));

const PAIRS: [string, string][] = [
  ['ce-specversion', '1.0'],
  ['ce-id', '0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b'],
  ['ce-type', 'relaygrid.identity.UserRegistered.v3'],
  ['ce-source', 'relaygrid/api'],
  ['ce-time', '2026-11-24T10:00:00.000Z'],
  ['ce-subject', '0193a1b2'],
  ['ce-dataschema', 'sha256:00ff'],
  ['content-type', 'avro/binary'],
  ['ce-actor', 'user:x "y"'],
  ['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'],
  ['Nats-Msg-Id', '0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b'],
];

/** The header block as NATS carries it. */
function block(pairs = PAIRS): Uint8Array {
  return new TextEncoder().encode(`NATS/1.0\r\n${pairs.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
}

/** A message shaped like nats.js v3's, whose public headers must not be needed. */
function rawMessage(raw: Uint8Array, headers?: unknown) {
  const data = new Uint8Array([...raw, 1, 2, 3]);
  return {
    msg: { _rdata: data, _msg: { hdr: raw.length } },
    get headers(): never {
      if (headers) return headers as never;
      throw new Error('the slow parser was used');
    },
  };
}

describe('CloudEvents headers from the raw header block', () => {
  const h = natsHeaders();
  for (const [k, v] of PAIRS) h.append(k, v);

  it('reads the same values as MsgHdrs, and nothing else', () => {
    const parsed = ceHeadersOf(rawMessage(block()));
    expect(parsed).toEqual({
      specversion: '1.0',
      id: '0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b',
      type: 'relaygrid.identity.UserRegistered.v3',
      source: 'relaygrid/api',
      time: '2026-11-24T10:00:00.000Z',
      subject: '0193a1b2',
      dataschema: 'sha256:00ff',
      actor: 'user:x "y"',
      correlationid: undefined,
      causationid: undefined,
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    });
    // The public path (a message without nats.js internals) gives the same.
    expect(ceHeadersOf({ headers: h })).toEqual(parsed);
  });

  it('keeps the first of repeated headers, trims values, treats empty as absent', () => {
    const text = 'NATS/1.0\r\nce-id:  a  \r\nce-id: b\r\nce-actor:\r\nce-type:t\r\n\r\n';
    expect(ceHeadersOf(rawMessage(new TextEncoder().encode(text)))).toMatchObject({ id: 'a', actor: undefined, type: 't' });
  });

  it('falls back to nats.js for a block the scan declines (non-ASCII)', () => {
    const pairs: [string, string][] = [...PAIRS, ['ce-correlationid', 'Zürich']];
    const hdrs = natsHeaders();
    for (const [k, v] of pairs) hdrs.append(k, v);
    expect(ceHeadersOf(rawMessage(block(pairs), hdrs))?.correlationid).toBe('Zürich');
  });


});
