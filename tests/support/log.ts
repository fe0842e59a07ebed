/** Reading the log back in tests: the source of truth a read model is compared with. */
import type { StoredEvent } from '../../contracts/envelope.js';
import { decodeMessage } from '../../contracts/envelope.js';
import type { Runtime } from '../../infra/runtime.js';

/** Every identity event on subjects matching `filter`, in log order, through an ordered consumer. */
export async function readLog(rt: Runtime, filter: string): Promise<StoredEvent[]> {
  const consumer = await rt.nats.js.consumers.get(rt.names.stream('identity'), { filter_subjects: filter });
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
