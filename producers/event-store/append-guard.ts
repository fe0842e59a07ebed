/**
 * Optimistic concurrency for appends, kept off the event streams.
 *
 * Why not `Nats-Expected-Last-Subject-Sequence` on the event itself: the
 * header is stored with the message, and nats-server before 2.10 checks it
 * again when another stream sources the message (nats-server#5253). RG_AUDIT
 * sources every context stream, so as soon as two contexts interleave, the
 * second event of any aggregate is refused there ("last sequence by subject
 * mismatch") and that context's sourcing stalls for good.
 *
 * So each aggregate has a guard subject in `<NS>_GUARDS`, a stream nothing
 * sources, holding one message per aggregate. An append first claims the
 * guard with the expectation, carrying the whole event message as its intent,
 * then publishes the event without any. A writer that dies between the two
 * leaves an intent that is not in the event stream: the next writer to look
 * stores it, exactly as it was, before deciding again. The guard's sequence is
 * remembered per aggregate, so a hot aggregate costs one extra publish and no
 * read.
 */
import { JetStreamApiError, type PubAck } from '@nats-io/jetstream';
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import type { EncodedMessage } from '../../contracts/envelope.js';
import type { Nats } from '../../infra/nats/connection.js';
import type { Names } from '../../infra/naming.js';
import { WrongExpectedSequenceError } from './errors.js';
import { Lru } from './lru.js';

/** JetStream's error code for a failed `expect.lastSubjectSequence`. */
const WRONG_LAST_SEQUENCE = 10071;
/** The guard message's header naming the event message it stands for. */
const INTENT = 'Rg-Intent';

export type Publish = (subject: string, body: Uint8Array, msgID: string, headers: MsgHdrs, expect?: { lastSubjectSequence: number }) => Promise<PubAck>;

/**
 * The guard message is the event message itself (its headers and body) plus the
 * intent header: nothing to encode, and storing it later is a copy. Headers a
 * direct get adds (`Nats-*`) are left out when it is stored.
 */
function intentOf(message: EncodedMessage): MsgHdrs {
  const headers = natsHeaders();
  for (const [name, values] of message.headers) for (const value of values) headers.append(name, value);
  headers.set(INTENT, message.id);
  return headers;
}

export class AppendGuard {
  /** Aggregate subject → the event sequence and guard sequence of this process's last append to it. */
  private readonly known = new Lru<string, { eventSeq: number; guardSeq: number }>(50_000);

  constructor(
    private readonly nats: Nats,
    private readonly names: Names,
    private readonly publish: Publish,
  ) {}

  /**
   * Claims the aggregate for `message` if its last event is still `expectedSeq`
   * (`fresh`: the caller minted the id, so there is nothing to read).
   * Answers the guard's new sequence; or, when this very message is already
   * stored (a retried append), where it is. Throws WrongExpectedSequenceError.
   */
  async claim(subject: string, expectedSeq: number, message: EncodedMessage, fresh = false): Promise<{ guardSeq: number; storedAt?: number }> {
    let guardSeq: number;
    const known = this.known.get(subject);
    if (known && known.eventSeq === expectedSeq) {
      guardSeq = known.guardSeq;
    } else if (fresh && expectedSeq === 0) {
      // A just-minted id has no events and no guard; if it somehow has a guard, the claim fails and the reload settles it.
      guardSeq = 0;
    } else {
      const settled = await this.settle(subject);
      if (settled.lastId === message.id) return { guardSeq: settled.guardSeq, storedAt: settled.lastSeq };
      if (settled.lastSeq !== expectedSeq) throw new WrongExpectedSequenceError(subject, expectedSeq);
      guardSeq = settled.guardSeq;
    }
    try {
      const ack = await this.publish(this.names.guard(subject), message.body, message.id, intentOf(message), { lastSubjectSequence: guardSeq });
      return { guardSeq: ack.seq };
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === WRONG_LAST_SEQUENCE) {
        this.known.delete(subject);
        throw new WrongExpectedSequenceError(subject, expectedSeq);
      }
      throw err;
    }
  }

  stored(subject: string, eventSeq: number, guardSeq: number): void {
    this.known.set(subject, { eventSeq, guardSeq });
  }

  /**
   * The guard's sequence and the aggregate's last event, after storing the
   * guard's intent if a writer claimed it and never stored it.
   */
  private async settle(subject: string): Promise<{ guardSeq: number; lastSeq: number; lastId: string | undefined }> {
    const { stream } = this.names.parse(subject);
    const [guard, last] = await Promise.all([
      this.nats.jsm.direct.getMessage(this.names.guardStream, { last_by_subj: this.names.guard(subject) }),
      this.nats.jsm.direct.getMessage(stream, { last_by_subj: subject }),
    ]);
    const guardSeq = guard?.seq ?? 0;
    const lastId = last?.header.get('Nats-Msg-Id') || undefined;
    const intentId = guard?.header.get(INTENT);
    if (!guard || !intentId || intentId === lastId) return { guardSeq, lastSeq: last?.seq ?? 0, lastId };
    const headers = natsHeaders();
    for (const [name, values] of guard.header) {
      if (name === INTENT || name.toLowerCase().startsWith('nats-')) continue;
      for (const value of values) headers.append(name, value);
    }
    const ack = await this.publish(subject, guard.data, intentId, headers);
    return { guardSeq, lastSeq: ack.seq, lastId: intentId };
  }
}
