/**
 * The projector runtime. One instance per projection holds the leader lock and
 * reads an ordered consumer from checkpoint + 1; every batch is applied in one
 * Postgres transaction together with its checkpoint, so a crash at any point
 * either keeps the whole batch or none of it. An event that cannot be decoded
 * or applied stops the projector and is recorded; nothing is silently skipped.
 */
import type { ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import { sql, type Kysely } from 'kysely';
import { keyOfCeType, UnknownSchemaError, type SchemaRegistry } from '../../contracts/codec.js';
import { decodeMessage, rawMessageOf, type RawMessage, type StoredEvent } from '../../contracts/envelope.js';
import type { Logger } from '../../infra/logger.js';
import type { Metrics } from '../../infra/metrics.js';
import type { Names } from '../../infra/naming.js';
import type { Nats } from '../../infra/nats/connection.js';
import type { SchemaDocument } from '../../infra/streams/schema-bucket.js';
import { inBatchSpans } from '../../infra/tracing.js';
import { isTransientInfraError } from '../../infra/transient.js';
import type { Database } from '../../schema/database.js';
import { pendingFrom } from '../../replay/range.js';
import { advanceCheckpoint, CheckpointFencedError, readCheckpoint } from './checkpoints.js';
import { LeaderLock } from './leader-lock.js';
import { LeaderLoop } from './leader-loop.js';
import type { Projection, ProjectionContext } from './projection.js';
import { hasOpenFailure } from './skip.js';

/** Messages per batch (one transaction) unless a projector is given another size. */
export const DEFAULT_BATCH_SIZE = 2000;

export type ProjectorState = 'starting' | 'standby' | 'running' | 'stopped' | 'closed';

export interface ProjectorFailure {
  seq: number;
  eventId: string | null;
  eventType: string | null;
  error: string;
}

export interface ProjectorStatus {
  name: string;
  state: ProjectorState;
  checkpoint: number;
  /** Null until first measured (a moment after start). */
  lag: number | null;
  failure?: ProjectorFailure;
}

export interface ProjectorDeps {
  projection: Projection;
  context: ProjectionContext;
  nats: Nats;
  db: Kysely<Database>;
  databaseUrl: string;
  names: Names;
  registry: SchemaRegistry;
  metrics: Metrics;
  log: Logger;
  /** Looks up a writer schema this process does not know (the schema KV bucket). */
  schemaLookup?: (fingerprint: string) => Promise<SchemaDocument | undefined>;
  batchSize?: number;
  standbyPollMs?: number;
  stoppedPollMs?: number;
  /** How often the lag is measured from the stream while no batch has updated it (default 5 s). */
  lagPollMs?: number;
}

/** Lag measurements while no batch moves the lag: a standby, a stopped, retrying or hung projector. */
export const DEFAULT_LAG_POLL_MS = 5000;

/** The events of a message, or why it cannot be decoded (an unknown schema may still be learned). */
function tryDecode(registry: SchemaRegistry, raw: RawMessage): StoredEvent[] | Error {
  try {
    return decodeMessage(registry, raw);
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

interface DecodedMessage {
  msg: JsMsg;
  events: StoredEvent[];
}

/** A batch decoded up to the first message that cannot be decoded, if any. */
interface DecodedBatch {
  decoded: DecodedMessage[];
  poison?: { msg: JsMsg; error: Error };
}

export class Projector {
  private state: ProjectorState = 'starting';
  private checkpoint = 0;
  private lag: number | null = null;
  /** Bumped by every lag a batch reports, so a measurement begun before it does not overwrite it. */
  private lagGeneration = 0;
  private lagTimer: NodeJS.Timeout | undefined;
  private measurement: Promise<void> | undefined;
  private failure: ProjectorFailure | undefined;
  private messages: ConsumerMessages | undefined;
  private readonly loop: LeaderLoop;
  private readonly stream: string;
  private readonly log: Logger;
  private readonly batchSize: number;

  constructor(private readonly deps: ProjectorDeps) {
    this.loop = new LeaderLoop({
      lock: new LeaderLock(deps.databaseUrl, deps.projection.name),
      log: deps.log.child({ projector: deps.projection.name }),
      standbyPollMs: deps.standbyPollMs ?? 1000,
      onRole: (leader) => {
        deps.metrics.projectorActive.set({ projector: this.name }, leader ? 1 : 0);
        if (!leader) this.state = 'standby';
      },
      work: async () => {
        await this.project();
        if (this.state === 'stopped') await this.waitWhileStopped();
      },
      isFenced: (err) => err instanceof CheckpointFencedError,
      // Retrying (NATS or Postgres away, stream missing): not running until project() says so again.
      onFailure: () => {
        if (this.state === 'running') this.state = 'starting';
      },
    });
    this.stream = deps.names.stream(deps.projection.context);
    this.log = deps.log.child({ projector: deps.projection.name });
    this.batchSize = deps.batchSize ?? DEFAULT_BATCH_SIZE;
  }

  get name(): string {
    return this.deps.projection.name;
  }

  status(): ProjectorStatus {
    return { name: this.name, state: this.state, checkpoint: this.checkpoint, lag: this.lag, ...(this.failure ? { failure: this.failure } : {}) };
  }

  /** Runs until close(): waits as a standby until it holds the lock, then projects. */
  async run(): Promise<void> {
    this.watchLag();
    try {
      await this.loop.run();
    } finally {
      clearInterval(this.lagTimer);
      this.state = 'closed';
      await this.measurement; // nothing of this projector's outlives run()
    }
  }

  async close(): Promise<void> {
    clearInterval(this.lagTimer);
    this.messages?.stop();
    await this.loop.close();
  }

  /**
   * The lag series exists from the start and stays true when no batch updates it: a projector
   * that is a standby, stopped, retrying or wedged before (or in) a batch still shows how far
   * behind the read model is. Measured from the checkpoint in Postgres, which every instance
   * shares, so a standby reports the same lag as the leader.
   */
  private watchLag(): void {
    let measuredGeneration = -1;
    const tick = () => {
      if (this.lagGeneration === measuredGeneration) this.measureLag();
      measuredGeneration = this.lagGeneration;
    };
    this.measureLag();
    measuredGeneration = this.lagGeneration;
    this.lagTimer = setInterval(tick, this.deps.lagPollMs ?? DEFAULT_LAG_POLL_MS);
    this.lagTimer.unref();
  }

  private measureLag(): void {
    if (this.measurement) return; // a slow server: one measurement at a time
    const generation = this.lagGeneration;
    this.measurement = (async () => {
      try {
        // Read only: the projector itself creates its checkpoint row when it first leads.
        const row = await this.deps.db.selectFrom('projector_checkpoints').select('seq').where('projector', '=', this.name).executeTakeFirst();
        const lag = await pendingFrom(this.deps.nats, this.stream, (row?.seq ?? 0) + 1, this.deps.projection.filter(this.deps.names));
        if (generation === this.lagGeneration && this.state !== 'closed') this.setLag(lag);
      } catch (err) {
        // The last value stays: NATS or Postgres is away, which /ready reports.
        this.log.debug({ err }, 'lag not measured');
      } finally {
        this.measurement = undefined;
      }
    })();
  }

  private setLag(lag: number): void {
    this.lag = lag;
    this.deps.metrics.projectorLag.set({ projector: this.name }, lag);
  }

  /** A lag the batch loop knows (it is newer than any measurement in flight). */
  private reportLag(lag: number): void {
    this.lagGeneration++;
    this.setLag(lag);
  }

  private async project(): Promise<void> {
    const { nats, db, names, projection, metrics } = this.deps;
    this.checkpoint = await readCheckpoint(db, this.name, this.stream);
    metrics.projectorCheckpoint.set({ projector: this.name }, this.checkpoint);
    metrics.projectorStopped.set({ projector: this.name }, 0);
    this.state = 'running';
    this.log.info({ checkpoint: this.checkpoint, stream: this.stream }, 'projecting');
    const consumer = await nats.js.consumers.get(this.stream, {
      filter_subjects: projection.filter(names),
      ...(this.checkpoint > 0 ? { opt_start_seq: this.checkpoint + 1 } : {}),
    });
    const messages = await consumer.consume({ max_messages: this.batchSize * 2 });
    this.messages = messages;
    if (this.loop.closed) messages.stop();
    let batch: JsMsg[] = [];
    try {
      for await (const msg of messages) {
        batch.push(msg);
        const pending = msg.info.pending;
        // Keep filling while more is on its way: `pending` counts what the server has not delivered
        // yet, and messages already in the client's buffer count too. Without the second, a steady
        // flow (each message delivered as it is appended) committed one event per transaction.
        const buffered = messages.getReceived() - messages.getProcessed();
        if (batch.length < this.batchSize && (pending > 0 || buffered > 0)) continue;
        const ok = await this.flush(batch);
        batch = [];
        if (!ok) break; // stop() has set the lag from the failed message
        this.reportLag(pending);
        if (this.loop.closed) break;
      }
    } finally {
      messages.stop();
      this.messages = undefined;
    }
  }

  /**
   * Applies a batch. On a message that cannot be decoded or applied, applies
   * everything before it, records it, and returns false. Each message is
   * decoded once, however the batch ends.
   */
  private async flush(batch: JsMsg[]): Promise<boolean> {
    const { decoded, poison } = await this.decodeAll(batch);
    if (!(await this.applyOrLocate(decoded))) return false;
    if (poison) {
      await this.stop(poison.msg, poison.error);
      return false;
    }
    return true;
  }

  /** Applies the messages in one transaction; if that fails, one at a time to find and record the culprit. */
  private async applyOrLocate(decoded: readonly DecodedMessage[]): Promise<boolean> {
    try {
      await this.applyBatch(decoded);
      return true;
    } catch (err) {
      if (isTransientInfraError(err) || err instanceof CheckpointFencedError) throw err;
    }
    for (const one of decoded) {
      try {
        await this.applyBatch([one]);
      } catch (err) {
        if (isTransientInfraError(err) || err instanceof CheckpointFencedError) throw err;
        // A commit fails as a whole: name the event only when the message holds one.
        await this.stop(one.msg, err as Error, one.events.length === 1 ? one.events[0] : undefined);
        return false;
      }
    }
    return true;
  }

  private async decodeAll(batch: readonly JsMsg[]): Promise<DecodedBatch> {
    const decoded: DecodedMessage[] = [];
    for (const msg of batch) {
      const raw: RawMessage = rawMessageOf(msg);
      // Synchronous on the hot path: only an unknown writer schema needs a (rare) lookup.
      let events = tryDecode(this.deps.registry, raw);
      if (events instanceof UnknownSchemaError && (await this.learnSchema(events.fingerprint))) {
        events = tryDecode(this.deps.registry, raw);
      }
      if (events instanceof Error) return { decoded, poison: { msg, error: events } };
      decoded.push({ msg, events });
    }
    return { decoded };
  }

  /** A newer producer wrote a schema version we do not ship: fetch it from the schema bucket. */
  private async learnSchema(fingerprint: string): Promise<boolean> {
    const doc = await this.deps.schemaLookup?.(fingerprint);
    const key = doc ? keyOfCeType(doc.type) : undefined;
    if (!doc || !key) return false;
    this.deps.registry.learn(key, doc.version, doc.schema);
    return true;
  }

  private async applyBatch(decoded: readonly DecodedMessage[]): Promise<void> {
    const last = decoded.at(-1);
    if (!last) return;
    const events = decoded.flatMap((d) => d.events);
    const { db, projection, metrics } = this.deps;
    const timer = metrics.projectorBatchSeconds.startTimer({ projector: this.name });
    try {
      await inBatchSpans(
        `process ${this.name}`,
        { 'relaygrid.projector': this.name, 'messaging.system': 'nats', 'messaging.destination.name': this.stream },
        events.map((event) => ({ traceparent: event.meta.traceparent, attributes: { 'relaygrid.event.type': event.type, 'relaygrid.event.id': event.id, 'messaging.message.id': event.id } })),
        () =>
          db.transaction().execute(async (trx) => {
            await projection.apply(trx, events, this.deps.context);
            await advanceCheckpoint(trx, this.name, this.checkpoint, last.msg.seq, last.events.at(-1)?.id ?? null);
          }),
      );
    } finally {
      timer();
    }
    this.checkpoint = last.msg.seq;
    metrics.projectorCheckpoint.set({ projector: this.name }, this.checkpoint);
    metrics.projectedEvents.inc({ projector: this.name }, events.length);
  }

  private async stop(msg: JsMsg, error: Error, event?: StoredEvent): Promise<void> {
    const eventId = event?.id ?? msg.headers?.get('ce-id') ?? null;
    const eventType = event?.ceType ?? msg.headers?.get('ce-type') ?? null;
    // Recorded once: a restart that stops on the same event again adds no second open failure.
    // Recorded before the state says stopped, so whoever sees "stopped" can also skip the event.
    const { name, stream } = this;
    await sql`insert into projector_failures (projector, stream, seq, event_id, event_type, error)
      select ${name}, ${stream}, ${msg.seq}, ${eventId}, ${eventType}, ${error.stack ?? error.message}
      where not exists (select 1 from projector_failures where projector = ${name} and seq = ${msg.seq} and resolved_at is null)`.execute(this.deps.db);
    this.failure = { seq: msg.seq, eventId, eventType, error: error.message };
    this.state = 'stopped';
    // The failed message and everything after it in this projector's filter are waiting.
    this.reportLag(msg.info.pending + 1);
    this.deps.metrics.projectorStopped.set({ projector: this.name }, 1);
    this.log.error({ seq: msg.seq, eventId, eventType, err: error }, 'projector stopped on an event it cannot apply');
  }

  /**
   * A stopped projector keeps its lock (a standby would stop on the same event)
   * until closed, or until an operator resolves the failure (`relaygrid
   * projector skip`): then it resumes from the checkpoint.
   */
  private async waitWhileStopped(): Promise<void> {
    while (!this.loop.closed && this.state === 'stopped') {
      await this.loop.pause(this.deps.stoppedPollMs ?? 2000);
      if (!(await hasOpenFailure(this.deps.db, this.name).catch(() => true))) {
        this.log.info({ failure: this.failure }, 'failure resolved by an operator; resuming');
        this.failure = undefined;
        this.state = 'starting';
        this.deps.metrics.projectorStopped.set({ projector: this.name }, 0);
        return;
      }
    }
  }
}
