/** Reading the log back in tests: the source of truth a read model is compared with. */
import type { StoredEvent } from '../../contracts/envelope.js';
import { decodeMessage } from '../../contracts/envelope.js';
import type { Runtime } from '../../infra/runtime.js';

/** Every event on subjects matching `filter` (`<ns>.evt.<context>.…`), in log order, through an ordered consumer. */
export async function readLog(rt: Runtime, filter: string): Promise<StoredEvent[]> {
  const context = rt.names.allContexts.find((c) => filter.startsWith(`${rt.names.prefix}.evt.${c}.`));
  if (!context) throw new Error(`${filter} is not an event subject`);
  const consumer = await rt.nats.js.consumers.get(rt.names.stream(context), { filter_subjects: filter });
  const messages = await consumer.consume({ max_messages: 5000 });
  const events: StoredEvent[] = [];
  try {
    for await (const msg of messages) {
      events.push(...decodeMessage(rt.registry, { seq: msg.seq, subject: msg.subject, headers: msg.headers, data: msg.data }));
      if (msg.info.pending === 0) break;
    }
  } finally {
    await messages.close();
  }
  return events;
}
