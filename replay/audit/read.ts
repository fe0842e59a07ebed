/**
 * Reads stored messages in stream order through an ordered consumer, exactly
 * as the audit worker does: a consumer delivers the stored headers, where a
 * direct get would add its own. Works on any stream (no `allow_direct`
 * needed), so an auditor can verify a copy made however they like.
 */
import type { JsMsg } from '@nats-io/jetstream';
import type { Nats } from '../../infra/nats/connection.js';
import { streamInfo } from '../range.js';

/**
 * Calls `onMessage` for every message with sequence in [from, to] (default:
 * the whole stream as it is now), in order; resolves with how many there were.
 * An unknown stream is a ReplayArgumentError naming it.
 */
export async function readStored(nats: Nats, stream: string, onMessage: (msg: JsMsg) => void | Promise<void>, bounds: { from?: number; to?: number } = {}): Promise<number> {
  const { state } = await streamInfo(nats, stream);
  const from = Math.max(bounds.from ?? state.first_seq, state.first_seq);
  const to = Math.min(bounds.to ?? state.last_seq, state.last_seq);
  // An empty range must not wait on a consumer that will never deliver.
  if (state.messages === 0 || from > to) return 0;
  const consumer = await nats.js.consumers.get(stream, { opt_start_seq: from });
  const messages = await consumer.consume({ max_messages: 1024 });
  let count = 0;
  try {
    for await (const msg of messages) {
      if (msg.seq > to) break;
      // Await only what is asynchronous: a tick per message is a large share of a fast callback's cost.
      const pending = onMessage(msg);
      if (pending) await pending;
      count++;
      if (msg.seq >= to || msg.info.pending === 0) break;
    }
  } finally {
    await messages.close();
  }
  return count;
}

/** The total a progress bar should expect for a whole-stream read. */
export async function storedCount(nats: Nats, stream: string): Promise<number> {
  return (await streamInfo(nats, stream)).state.messages;
}
