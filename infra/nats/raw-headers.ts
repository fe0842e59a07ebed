/**
 * Header pairs read straight from the bytes of a stored NATS header block, for
 * the loops that read every message of a stream (audit verify, export):
 * nats.js's MsgHdrsImpl.decode builds a string, a line array, a Map and a
 * validated string per header of every message, which was the largest share
 * of their CPU and garbage.
 *
 * The audit leaf is defined over the pairs as nats.js decodes them
 * (replay/audit/leaf.ts), so the scan must answer exactly those pairs or decline. It takes only blocks where
 * that is easy to be sure of, and declines (the caller then decodes with
 * nats.js) on anything else:
 *
 * - every byte is ASCII, so nats.js's UTF-8 TextDecoder is the identity
 *   (no replacement characters, no BOM to strip) and a name's bytes are its
 *   UTF-8 sort key;
 * - the block is split at every CRLF, like `split("\r\n")`; the first line
 *   (NATS/1.0 and any status) carries no pair; an empty line or one without
 *   a colon is skipped;
 * - name = the bytes before the first colon, untrimmed; nats.js throws unless
 *   each is printable ASCII (33..126), so any other byte declines;
 * - value = the bytes after it, trimmed of what String.prototype.trim removes
 *   in ASCII (TAB, LF, VT, FF, CR, space); nats.js throws on a CR or LF left
 *   inside, so that declines too.
 */
import { isAscii } from 'node:buffer';

/**
 * A message's pairs as byte offsets into its header block, reused from
 * message to message: `at` holds [nameStart, nameEnd, valueStart, valueEnd]
 * per pair in stored order, `order` the pair indexes in leaf order once
 * sortSpans ran.
 */
export class HeaderSpans {
  count = 0;
  at = new Int32Array(4 * 32);
  order = new Int32Array(32);

  push(nameStart: number, nameEnd: number, valueStart: number, valueEnd: number): void {
    if (this.count === this.order.length) {
      const at = new Int32Array(this.at.length * 2);
      at.set(this.at);
      this.at = at;
      this.order = new Int32Array(this.order.length * 2);
    }
    const i = 4 * this.count++;
    this.at[i] = nameStart;
    this.at[i + 1] = nameEnd;
    this.at[i + 2] = valueStart;
    this.at[i + 3] = valueEnd;
  }
}

const CR = 13;
const LF = 10;
const COLON = 58;

/** What String.prototype.trim strips, restricted to ASCII. */
const isTrimmed = (c: number): boolean => c === 32 || (c >= 9 && c <= 13);

/**
 * Fills `spans` with the block's pairs in stored order; answers false, with
 * `spans` unusable, when the block is outside what this scan reproduces.
 */
export function scanHeaderBlock(block: Uint8Array, spans: HeaderSpans): boolean {
  spans.count = 0;
  if (!isAscii(block)) return false;
  const end = block.length;
  let line = 0;
  let first = true;
  while (line <= end) {
    // The next CRLF, as split("\r\n") finds it: the leftmost CR followed by LF.
    let eol = block.indexOf(CR, line);
    while (eol !== -1 && block[eol + 1] !== LF) eol = block.indexOf(CR, eol + 1);
    if (eol === -1) eol = end;
    if (!first && eol > line && !scanLine(block, line, eol, spans)) return false;
    first = false;
    line = eol + 2;
  }
  return true;
}

/** One header line [start, end); false when nats.js would throw on it. */
function scanLine(block: Uint8Array, start: number, end: number, spans: HeaderSpans): boolean {
  let colon = start;
  while (colon < end && block[colon] !== COLON) colon++;
  if (colon === end) return true; // no colon: nats.js skips the line
  for (let i = start; i < colon; i++) {
    const c = block[i]!;
    if (c < 33 || c > 126) return false;
  }
  let from = colon + 1;
  let to = end;
  while (from < to && isTrimmed(block[from]!)) from++;
  while (to > from && isTrimmed(block[to - 1]!)) to--;
  for (let i = from; i < to; i++) if (block[i] === CR || block[i] === LF) return false;
  spans.push(start, colon, from, to);
  return true;
}

/** Byte order of two names in the block (a negative number when name a sorts first). */
function compareNames(block: Uint8Array, at: Int32Array, a: number, b: number): number {
  const aEnd = at[a + 1]!;
  const bEnd = at[b + 1]!;
  for (let i = at[a]!, j = at[b]!; i < aEnd && j < bEnd; i++, j++) {
    if (block[i] !== block[j]) return block[i]! - block[j]!;
  }
  return aEnd - at[a]! - (bEnd - at[b]!);
}

/** The most pairs sortSpans orders: an insertion sort is quadratic, and a message has a dozen. */
export const MAX_SORTED_SPANS = 64;

/**
 * Orders the pairs by name bytes, a name's values kept in stored order: the
 * leaf order (leaf.ts). An insertion sort in place, no allocation; false (the
 * caller decodes with nats.js instead) past MAX_SORTED_SPANS pairs.
 */
export function sortSpans(block: Uint8Array, spans: HeaderSpans): boolean {
  if (spans.count > MAX_SORTED_SPANS) return false;
  const { at, order, count } = spans;
  for (let i = 0; i < count; i++) order[i] = i;
  for (let i = 1; i < count; i++) {
    const x = order[i]!;
    let j = i - 1;
    // Strictly greater only: equal names keep their stored order.
    for (; j >= 0 && compareNames(block, at, 4 * order[j]!, 4 * x) > 0; j--) order[j + 1] = order[j]!;
    order[j + 1] = x;
  }
  return true;
}

/** The pairs as strings, in stored order (tests compare them with nats.js's decode). */
export function spanPairs(block: Uint8Array, spans: HeaderSpans): [string, string][] {
  const text = (from: number, to: number) => Buffer.from(block.buffer, block.byteOffset + from, to - from).toString('latin1');
  const out: [string, string][] = [];
  for (let i = 0; i < 4 * spans.count; i += 4) out.push([text(spans.at[i]!, spans.at[i + 1]!), text(spans.at[i + 2]!, spans.at[i + 3]!)]);
  return out;
}

/**
 * The stored header block of a nats.js message (`JsMsg.msg._rdata` up to
 * `_msg.hdr`, what MsgImpl.headers decodes), or undefined when the message
 * does not have those internals (another nats.js version, a plain object):
 * then the caller uses the public `headers`.
 */
export function rawHeaderBlock(msg: object): Uint8Array | undefined {
  const inner = (msg as { msg?: { _rdata?: unknown; _msg?: { hdr?: unknown } } }).msg;
  if (typeof inner !== 'object' || inner === null) return undefined;
  const rdata = inner._rdata;
  const hdr = inner._msg?.hdr;
  if (!(rdata instanceof Uint8Array) || typeof hdr !== 'number' || !Number.isInteger(hdr) || hdr > rdata.length) return undefined;
  // hdr -1: no header block (headers undefined); 0: an empty one. Both have no pairs.
  return rdata.subarray(0, Math.max(hdr, 0));
}
