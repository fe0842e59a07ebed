/**
 * The raw header scan (infra/nats/raw-headers.ts) against nats.js's own
 * decode, on real nats.js messages: HMSG frames parsed by nats-core's Parser
 * into MsgImpl, as a subscription receives them, wrapped the way JsMsgImpl
 * wraps one (`msg`; @nats-io/jetstream does not export toJsMsg). The
 * integration test checks that consumer-delivered JsMsgs take the same path.
 * For every block the scan
 * accepts, its pairs must be nats.js's pairs; for every block, the leaf hash
 * through deliveredLeafHash must be the one through msg.headers, or both must
 * throw.
 */
import type { JsMsg } from '@nats-io/jetstream';
import { Kind, MsgImpl, Parser, type ParserEvent, type Publisher } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { deliveredLeafHash, headerPairs, messageLeafHash, storedMessageOf } from '../../replay/audit/leaf.js';
import { HeaderSpans, MAX_SORTED_SPANS, rawHeaderBlock, scanHeaderBlock, sortSpans, spanPairs } from '../../infra/nats/raw-headers.js';

const SUBJECT = 'rg.evt.identity.user.u1';
const REPLY = '$JS.ACK.RG_AUDIT.c.1.7.7.1700000000000000000.0';
const DATA = Buffer.from([0, 1, 2, 0x0d, 0x0a, 0xff]);

/** What the scan and the leaf read of a JsMsgImpl: its MsgImpl as `msg`, and the getters that delegate to it. */
const toJsMsg = (m: MsgImpl): JsMsg =>
  ({
    msg: m,
    get subject() {
      return m.subject;
    },
    get headers() {
      return m.headers;
    },
    get data() {
      return m.data;
    },
  }) as unknown as JsMsg;

/** Real nats.js messages: one HMSG frame per block, parsed from one buffer as off a socket. */
function messages(blocks: readonly Buffer[]): JsMsg[] {
  const frames = blocks.map((hdr) =>
    Buffer.concat([Buffer.from(`HMSG ${SUBJECT} 1 ${REPLY} ${hdr.length} ${hdr.length + DATA.length}\r\n`), hdr, DATA, Buffer.from('\r\n')]),
  );
  const out: JsMsg[] = [];
  const publisher = {} as Publisher;
  const parser = new Parser({
    push: (e: ParserEvent) => {
      if (e.kind === Kind.MSG) out.push(toJsMsg(new MsgImpl(e.msg!, e.data!, publisher)));
    },
  });
  parser.parse(Buffer.concat(frames));
  expect(out).toHaveLength(blocks.length);
  return out;
}

const block = (...lines: string[]) => Buffer.from(`NATS/1.0\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`, 'latin1');
const utf8Block = (...lines: string[]) => Buffer.from(`NATS/1.0\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`, 'utf8');

/** nats.js's pairs with the values of a name together, in first-seen name order, as its Map holds them. */
function grouped(pairs: readonly (readonly [string, string])[]): [string, string][] {
  const byName = new Map<string, string[]>();
  for (const [name, value] of pairs) byName.set(name, [...(byName.get(name) ?? []), value]);
  return [...byName].flatMap(([name, values]) => values.map((v): [string, string] => [name, v]));
}

type Outcome = { hash: string } | { error: string };
const outcome = (fn: () => Buffer): Outcome => {
  try {
    return { hash: fn().toString('hex') };
  } catch (err) {
    return { error: String(err) };
  }
};

/** Compares both paths on a block; answers whether deliveredLeafHash hashed it from the raw bytes. */
function compare(raw: Buffer): boolean {
  const [fast, slow] = messages([raw, raw]);
  const spans = new HeaderSpans();
  const bytes = rawHeaderBlock(fast!)!;
  const scanned = scanHeaderBlock(bytes, spans);
  const expected = outcome(() => messageLeafHash(storedMessageOf(slow!)));
  expect(outcome(() => deliveredLeafHash(fast!)), JSON.stringify(raw.toString('latin1'))).toEqual(expected);
  if (scanned) {
    // A block nats.js rejects must never be one the scan accepts.
    expect('hash' in expected, JSON.stringify(raw.toString('latin1'))).toBe(true);
    expect(grouped(spanPairs(bytes, spans))).toEqual(headerPairs(slow!.headers));
  }
  return scanned && sortSpans(bytes, spans);
}

describe('raw header scan', () => {
  it('reads an audit message like nats.js does, without decoding its headers', () => {
    const raw = block(
      'ce-specversion: 1.0',
      'ce-id: 01a20e12-3d60-7d48-9104-fa372f61480d',
      'ce-type: relaygrid.identity.UserRegistered.v3',
      'ce-dataschema: sha256:1eb49a3f6a9948a4c274e02b1755bdbc7d21a7992c2ca28535aec1213cd0eaf1',
      'content-type: avro/binary',
      'Nats-Msg-Id: 01a20e12-3d60-7d48-9104-fa372f61480d',
      'Nats-Expected-Last-Subject-Sequence: 0',
      'Nats-Stream-Source: RG_IDENTITY 1',
    );
    expect(compare(raw)).toBe(true);
    const [msg] = messages([raw]);
    deliveredLeafHash(msg!);
    // The fast path leaves nats.js's lazy decode untouched.
    expect((msg as unknown as { msg: { _headers?: unknown } }).msg._headers).toBeUndefined();
  });

  it('matches nats.js on odd but valid blocks', () => {
    const accepted = [
      block('b: 1', 'a: 2', 'b: 3', 'B: 4', 'a: 5'), // repeated, interleaved, case-distinct names
      block('k: \t v \u000b\u000c', 'e:', 'f:   ', ':empty name', 'k:no-space', 'c: a:b:c'),
      block('no colon here', '', 'x: y'), // skipped lines
      block('k: v\n', 'l: \rv', 'm: v\r'), // a lone CR or LF at a value's edge is trimmed
      block('Nats-Stream-Source: S 1', 'nats-stream-source: S 2', '~: tilde', '!: bang'),
      Buffer.from('NATS/1.0 503 No Responders\r\n\r\n'), // a status line, no pairs
      Buffer.from('NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 0\r\nNats-Last-Stream: 0\r\n\r\n'),
      Buffer.from('NATS/1.0\r\nk: v'), // no final CRLF
      Buffer.from('NATS/1.0\r\nk: v\r\r\nl: w\n\r\nm: x'), // CR and LF next to the line ends
      Buffer.from('k: not a header, the status line\r\nl: w\r\n\r\n'),
      Buffer.from('NATS/1.0\r\n\r\n'),
      Buffer.from('NATS/1.0'),
      block('k: a\u0000b', 'l: \u007f'), // NUL and DEL kept in a value
      block(...Array.from({ length: MAX_SORTED_SPANS }, (_, i) => `h${(i * 7919) % 100}: ${i}`)),
    ];
    for (const raw of accepted) expect(compare(raw), JSON.stringify(raw.toString('latin1'))).toBe(true);
  });

  it('declines what it does not reproduce and gets the same answer through nats.js', () => {
    const declined = [
      utf8Block('k: grüße', 'n: \u00a0v\u00a0'), // non-ASCII: UTF-8 decoding, Unicode whitespace
      utf8Block('grüße: k'), // a non-ASCII name, which nats.js rejects
      Buffer.concat([Buffer.from('NATS/1.0\r\nk: '), Buffer.from([0xff, 0xfe]), Buffer.from('\r\n\r\n')]), // invalid UTF-8
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), block('k: v')]), // a BOM, which TextDecoder strips
      block('k: a\rb'), // CR inside a value: nats.js throws
      block('k: a\nb'),
      block('a b: c'), // space in a name: nats.js throws
      block(' a: c'),
      block('\ta: c'),
      block('n\u007f: v'), // DEL in a name: nats.js throws
      block(...Array.from({ length: MAX_SORTED_SPANS + 1 }, (_, i) => `h${i % 3}: ${i}`)), // past the insertion sort's limit
    ];
    for (const raw of declined) expect(compare(raw), JSON.stringify(raw.toString('latin1'))).toBe(false);
  });

  it('agrees with nats.js for every ASCII byte in a name and at every place in a value', () => {
    for (let c = 0; c < 128; c++) {
      const ch = String.fromCharCode(c);
      if (ch === '\r' || ch === '\n') continue; // covered above: they end lines next to each other
      for (const line of [`n${ch}: v`, `${ch}n: v`, `n: a${ch}b`, `n: ${ch}v${ch}`, `n: ${ch}`, `n:${ch}${ch}v`]) compare(block(line));
    }
    for (const ch of ['\r', '\n']) for (const line of [`n: a${ch}b`, `n: ${ch}v${ch}`, `n${ch}: v`, `${ch}n: v`]) compare(block(line));
  });

  it('falls back to the public headers when the message has no nats.js internals', () => {
    const [msg] = messages([block('b: 1', 'a: 2', 'b: 3')]);
    const plain = { subject: msg!.subject, headers: msg!.headers, data: msg!.data };
    expect(rawHeaderBlock(plain)).toBeUndefined();
    expect(rawHeaderBlock({ msg: { _rdata: 'not bytes', _msg: { hdr: 3 } } })).toBeUndefined();
    expect(deliveredLeafHash(plain).equals(messageLeafHash(storedMessageOf(msg!)))).toBe(true);
  });

  it('treats a message without a header block as having no pairs', () => {
    const out: JsMsg[] = [];
    const parser = new Parser({ push: (e: ParserEvent) => void (e.kind === Kind.MSG && out.push(toJsMsg(new MsgImpl(e.msg!, e.data!, {} as Publisher)))) });
    parser.parse(Buffer.concat([Buffer.from(`MSG ${SUBJECT} 1 ${REPLY} ${DATA.length}\r\n`), DATA, Buffer.from('\r\n')]));
    expect(rawHeaderBlock(out[0]!)).toHaveLength(0);
    expect(deliveredLeafHash(out[0]!).equals(messageLeafHash({ subject: SUBJECT, headers: [], data: DATA }))).toBe(true);
  });
});
