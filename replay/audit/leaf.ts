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
import { createHash } from 'node:crypto';
import type { JsMsg } from '@nats-io/jetstream';
import type { MsgHdrs } from '@nats-io/transport-node';

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

/** Header indexes in leaf order: by name, then (stable) in stored order. */
function headerOrder(headers: readonly HeaderPair[]): number[] {
  const keys = headers.map(([name]) => sortKey(name));
  return keys.map((_, i) => i).sort((i, j) => (keys[i]! < keys[j]! ? -1 : keys[i]! > keys[j]! ? 1 : i - j));
}

/** The most bytes a message's leaf input can take: a UTF-16 code unit is at most 3 UTF-8 bytes. */
function maxInputLength(msg: StoredMessage): number {
  let size = 12 + 3 * msg.subject.length + msg.data.length;
  for (const [name, value] of msg.headers) size += 8 + 3 * (name.length + value.length);
  return size;
}

/**
 * UTF-8 into `out` at `at`; answers the byte count. Headers are short ASCII
 * strings, which a loop writes faster than Buffer.write crosses into C++.
 */
function writeUtf8(s: string, out: Buffer, at: number): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return out.write(s, at, 'utf8');
    out[at + i] = c;
  }
  return s.length;
}

/** Writes the leaf input at `offset`; answers its length. */
function writeLeafInput(msg: StoredMessage, out: Buffer, offset: number): number {
  const order = headerOrder(msg.headers);
  let at = offset;
  const text = (s: string) => {
    const n = writeUtf8(s, out, at + 4);
    out.writeUInt32BE(n, at);
    at += 4 + n;
  };
  text(msg.subject);
  out.writeUInt32BE(order.length, at);
  at += 4;
  for (const i of order) {
    const [name, value] = msg.headers[i]!;
    text(name);
    text(value);
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
  return createHash('sha256').update(scratch.subarray(0, 1 + length)).digest();
}
