/**
 * The CloudEvents headers of a stored message, read straight from its header
 * block with the scan audit verify uses (infra/nats/raw-headers.ts). nats.js
 * parses headers into a MsgHdrs whose every append canonicalises the key,
 * rescans all keys and runs a regex: measured at 17 µs per message, it was the
 * largest single cost of an export. The raw block is not public API, so it is
 * used only when the message has the shape nats.js v3 gives it and the scan
 * accepts the block, and the public `headers` otherwise.
 */
import type { MsgHdrs } from '@nats-io/transport-node';
import { HEADER } from '../../contracts/envelope.js';
import { HeaderSpans, rawHeaderBlock, scanHeaderBlock } from '../../infra/nats/raw-headers.js';

/** The headers an export keeps; undefined when the message lacks one (or has it empty). */
export interface CeHeaders {
  specversion: string | undefined;
  id: string | undefined;
  type: string | undefined;
  source: string | undefined;
  time: string | undefined;
  subject: string | undefined;
  dataschema: string | undefined;
  actor: string | undefined;
  correlationid: string | undefined;
  causationid: string | undefined;
  traceparent: string | undefined;
}

type HeaderName = keyof CeHeaders;

const NAMES = new Map<string, HeaderName>([
  [HEADER.specVersion, 'specversion'],
  [HEADER.id, 'id'],
  [HEADER.type, 'type'],
  [HEADER.source, 'source'],
  [HEADER.time, 'time'],
  [HEADER.subject, 'subject'],
  [HEADER.dataSchema, 'dataschema'],
  [HEADER.actor, 'actor'],
  [HEADER.correlationId, 'correlationid'],
  [HEADER.causationId, 'causationid'],
  [HEADER.traceparent, 'traceparent'],
]);


/** Always the same shape, so the hot path sees one hidden class. */
function empty(): CeHeaders {
  return { specversion: undefined, id: undefined, type: undefined, source: undefined, time: undefined, subject: undefined, dataschema: undefined, actor: undefined, correlationid: undefined, causationid: undefined, traceparent: undefined };
}

/** The names an export keeps, as bytes, by length: a pair's name is compared in place. */
const BY_LENGTH: [Buffer, HeaderName][][] = [];
for (const [header, name] of NAMES) (BY_LENGTH[header.length] ??= []).push([Buffer.from(header, 'latin1'), name]);

/** Reused from message to message: an export reads one message at a time. */
const spans = new HeaderSpans();

function nameAt(block: Buffer, start: number, end: number): HeaderName | undefined {
  const candidates = BY_LENGTH[end - start];
  if (candidates) for (const [header, name] of candidates) if (block.compare(header, 0, header.length, start, end) === 0) return name;
  return undefined;
}

/** The first value of each name, as MsgHdrs' values[0]: the scan guarantees ASCII, so latin1 is the exact text. */
function fromSpans(block: Uint8Array): CeHeaders {
  const buf = Buffer.from(block.buffer, block.byteOffset, block.byteLength);
  const out = empty();
  for (let i = 0; i < 4 * spans.count; i += 4) {
    const name = nameAt(buf, spans.at[i]!, spans.at[i + 1]!);
    if (name !== undefined && out[name] === undefined) out[name] = buf.toString('latin1', spans.at[i + 2], spans.at[i + 3]) || undefined;
  }
  return out;
}

function fromMsgHdrs(h: MsgHdrs): CeHeaders {
  const out = empty();
  for (const [key, values] of h) {
    const name = NAMES.get(key);
    if (name !== undefined && out[name] === undefined) out[name] = values[0] || undefined;
  }
  return out;
}

/** The message's CloudEvents headers, or undefined when it has no headers at all. */
export function ceHeadersOf(msg: { headers?: MsgHdrs | undefined }): CeHeaders | undefined {
  const block = rawHeaderBlock(msg);
  if (block && block.length > 0 && scanHeaderBlock(block, spans)) return fromSpans(block);
  return msg.headers ? fromMsgHdrs(msg.headers) : undefined;
}
