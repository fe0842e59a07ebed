/**
 * The canonical leaf of one stored audit-stream message. The worker and every
 * verifier must turn the same stored message into the same bytes, so the
 * layout is fixed here, byte by byte (docs/auditors.md repeats it):
 *
 *   u32be len(subject)  ‖ subject (UTF-8)
 *   u32be header count  (number of name/value pairs, not of distinct names)
 *   per pair, sorted by name (byte order), a name's values in stored order:
 *     u32be len(name)   ‖ name (UTF-8, case as stored)
 *     u32be len(value)  ‖ value (UTF-8)
 *   u32be len(data)     ‖ data
 *
 * leaf hash = SHA-256(0x00 ‖ leaf input)   (RFC 6962 §2.1)
 *
 * Every field is length-prefixed, so no two different messages share a leaf
 * input: there is no separator a subject, header or body could forge.
 *
 * Which headers: exactly those a JetStream consumer delivers, which are the
 * headers stored with the message. On the audit stream that includes
 * `Nats-Stream-Source: <context stream> <context seq>`, which the server
 * appends once, when it sources the message; it is stored, so every read
 * returns the same value, and it ties the audit leaf to the context stream's
 * sequence. Never read leaves with a direct get: it appends Nats-Stream,
 * Nats-Subject, Nats-Sequence and Nats-Time-Stamp to the stored headers.
 * Names and values are taken as NATS clients parse them (surrounding
 * whitespace stripped), i.e. what every reader of the log sees.
 */
import type { JsMsg } from '@nats-io/jetstream';
import { MsgHdrsImpl, type MsgHdrs } from '@nats-io/transport-node';
import { sha256 } from './merkle.js';
import { HeaderSpans, rawHeaderBlock, scanHeaderBlock, sortSpans } from '../../infra/nats/raw-headers.js';

export type HeaderPair = readonly [name: string, value: string];

/** The parts of a stored message the leaf covers. */
export interface StoredMessage {
  subject: string;
  headers: readonly HeaderPair[];
  data: Uint8Array;
}

/** Every (name, value) pair of a header block, in stored order. */
export function headerPairs(h: MsgHdrs | undefined): HeaderPair[] {
  const out: HeaderPair[] = [];
  if (!h) return out;
  for (const [name, values] of h) for (const value of values) out.push([name, value]);
  return out;
}

/** A consumer-delivered message as the leaf sees it. */
export function storedMessageOf(msg: Pick<JsMsg, 'subject' | 'headers' | 'data'>): StoredMessage {
  return { subject: msg.subject, headers: headerPairs(msg.headers), data: msg.data };
}

/**
 * Name order is UTF-8 byte order, so a verifier in any language sorts the same
 * way. JavaScript compares UTF-16 code units, which differs (a surrogate pair
 * against U+E000..U+FFFF), so a name with any non-ASCII character is keyed by
 * its UTF-8 bytes as latin1, one code unit per byte; an ASCII name already is
 * its own bytes. Comparing keys then compares bytes.
 */
const NON_ASCII = /[^\u0000-\u007f]/;
const sortKey = (name: string): string => (NON_ASCII.test(name) ? Buffer.from(name, 'utf8').toString('latin1') : name);

// Reused by headerOrder: verify orders the headers of every message of the log.
const keys: string[] = [];
const order: number[] = [];

/**
 * Header indexes in leaf order: by name, then (stable) in stored order. The
 * answer is a shared array, valid until the next call. A message has a dozen
 * headers: an insertion sort on reused arrays beats allocating for
 * Array.prototype.sort; a long block takes the library sort.
 */
function headerOrder(headers: readonly HeaderPair[]): readonly number[] {
  const n = headers.length;
  keys.length = n;
  order.length = n;
  for (let i = 0; i < n; i++) {
    keys[i] = sortKey(headers[i]![0]);
    order[i] = i;
  }
  if (n > 32) return order.sort((i, j) => (keys[i]! < keys[j]! ? -1 : keys[i]! > keys[j]! ? 1 : i - j));
  for (let i = 1; i < n; i++) {
    const x = order[i]!;
    const key = keys[x]!;
    let j = i - 1;
    // Strictly greater only: equal names keep their stored order.
    for (; j >= 0 && keys[order[j]!]! > key; j--) order[j + 1] = order[j]!;
    order[j + 1] = x;
  }
  return order;
}

/** The most bytes a message's leaf input can take: a UTF-16 code unit is at most 3 UTF-8 bytes. */
function maxInputLength(msg: StoredMessage): number {
  let size = 12 + 3 * msg.subject.length + msg.data.length;
  for (const [name, value] of msg.headers) size += 8 + 3 * (name.length + value.length);
  return size;
}

/**
 * u32be byte length ‖ UTF-8 of `s` into `out` at `at`; answers the next
 * offset. Headers are short ASCII strings, which a loop writes faster than
 * Buffer.write crosses into C++ (measured: a third less time for an audit
 * message's headers); the first non-ASCII character hands the string to
 * Buffer.write.
 */
function writeText(s: string, out: Buffer, at: number): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) {
      n = out.write(s, at + 4, 'utf8');
      break;
    }
    out[at + 4 + i] = c;
  }
  out.writeUInt32BE(n, at);
  return at + 4 + n;
}

/** Writes the leaf input at `offset`; answers its length. */
function writeLeafInput(msg: StoredMessage, out: Buffer, offset: number): number {
  const order = headerOrder(msg.headers);
  let at = writeText(msg.subject, out, offset);
  out.writeUInt32BE(order.length, at);
  at += 4;
  for (let i = 0; i < order.length; i++) {
    const [name, value] = msg.headers[order[i]!]!;
    at = writeText(value, out, writeText(name, out, at));
  }
  out.writeUInt32BE(msg.data.length, at);
  out.set(msg.data, at + 4);
  return at + 4 + msg.data.length - offset;
}

export function leafInput(msg: StoredMessage): Buffer {
  const out = Buffer.allocUnsafe(maxInputLength(msg));
  return out.subarray(0, writeLeafInput(msg, out, 0));
}

// Verify hashes every message of the log: one scratch buffer, no allocation per message.
let scratch = Buffer.allocUnsafe(64 * 1024);

/** SHA-256(0x00 ‖ leaf input). */
export function messageLeafHash(msg: StoredMessage): Buffer {
  const need = 1 + maxInputLength(msg);
  if (scratch.length < need) scratch = Buffer.allocUnsafe(Math.max(need, scratch.length * 2));
  scratch[0] = 0x00;
  const length = writeLeafInput(msg, scratch, 1);
  return sha256(scratch.subarray(0, 1 + length));
}

/** u32be length ‖ block[from, to) into `out` at `at`; answers the next offset. Short ranges: a loop, no subarray. */
function writeBytes(block: Uint8Array, from: number, to: number, out: Buffer, at: number): number {
  out.writeUInt32BE(to - from, at);
  let o = at + 4;
  for (let i = from; i < to; i++) out[o++] = block[i]!;
  return o;
}

const spans = new HeaderSpans();

/**
 * SHA-256(0x00 ‖ leaf input) with the header pairs taken from the raw block
 * (raw-headers.ts): the same bytes messageLeafHash writes for the pairs
 * nats.js would decode, since the scan only accepts ASCII blocks, where a
 * header's UTF-8 is its bytes in the block and name order is byte order.
 */
function spansLeafHash(subject: string, block: Uint8Array, data: Uint8Array): Buffer {
  const need = 13 + 3 * subject.length + 8 * spans.count + block.length + data.length;
  if (scratch.length < need) scratch = Buffer.allocUnsafe(Math.max(need, scratch.length * 2));
  scratch[0] = 0x00;
  let at = writeText(subject, scratch, 1);
  scratch.writeUInt32BE(spans.count, at);
  at += 4;
  for (let k = 0; k < spans.count; k++) {
    const p = 4 * spans.order[k]!;
    at = writeBytes(block, spans.at[p]!, spans.at[p + 1]!, scratch, at);
    at = writeBytes(block, spans.at[p + 2]!, spans.at[p + 3]!, scratch, at);
  }
  scratch.writeUInt32BE(data.length, at);
  scratch.set(data, at + 4);
  return sha256(scratch.subarray(0, at + 4 + data.length));
}

/**
 * The leaf hash of a consumer-delivered message: what the audit worker records
 * and what verify recomputes. Both call this one function, so they cannot
 * disagree on how a message becomes a leaf.
 *
 * Hashes straight from the stored header block when the message exposes it
 * and the block is one the raw scan reproduces exactly; otherwise, with the
 * same result, from nats.js's decoded headers.
 */
export function deliveredLeafHash(msg: Pick<JsMsg, 'subject' | 'headers' | 'data'>): Buffer {
  const block = rawHeaderBlock(msg);
  if (block && scanHeaderBlock(block, spans) && sortSpans(block, spans)) return spansLeafHash(msg.subject, block, msg.data);
  return messageLeafHash(storedMessageOf(msg));
}

/**
 * The leaf hash of a message given as its stored bytes: the subject, the raw
 * header block (empty when it has none) and the body, as an export holds it
 * (export-file.ts). The same hash deliveredLeafHash answers for the message:
 * the raw scan where it applies, else the pairs nats.js decodes from the
 * block (which throws where a consumer's `headers` would throw).
 */
export function rawLeafHash(subject: string, block: Uint8Array, data: Uint8Array): Buffer {
  if (scanHeaderBlock(block, spans) && sortSpans(block, spans)) return spansLeafHash(subject, block, data);
  return messageLeafHash({ subject, headers: headerPairs(MsgHdrsImpl.decode(block)), data });
}
