/**
 * The audit worker: folds every message of `<NS>_AUDIT`, in stream order, into
 * an RFC 6962 Merkle tree and signs checkpoints of it.
 *
 * - One active instance (a Postgres advisory lock); others wait as standbys.
 * - Reads an ordered consumer from the last sequence it stored + 1. Each batch
 *   (leaves, interior nodes, event ids, the new frontier) is one Postgres
 *   transaction fenced on the tree size it started from, so a crash keeps a
 *   whole batch or none of it and no leaf is ever appended twice.
 * - Memory is the frontier: O(log n) hashes, whatever the log's length.
 * - Every `checkpointEvery` leaves, and every `checkpointSeconds` when the tree
 *   grew, it signs `<origin>\n<size>\n<root>\n` and stores the note as a file,
 *   on `<NS>_AUDIT_CHECKPOINTS` and in Postgres (workers/audit/checkpoints.ts).
 *   Batches are cut at multiples of `checkpointEvery`, so count-triggered
 *   checkpoints land on round sizes.
 *
 * The origin is the signing key's name, as C2SP recommends: a verifier that
 * holds the key knows which log the checkpoint speaks for.
 */
import type { ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import type { Runtime } from '../../infra/runtime.js';
import { LeaderLock } from '../../projectors/runtime/leader-lock.js';
import { LeaderLoop } from '../../projectors/runtime/leader-loop.js';
import { eventIdsOrError } from '../../replay/audit/event-ids.js';
import { deliveredLeafHash } from '../../replay/audit/leaf.js';
import { cloudEventAttributes, rawMessageOf } from '../../contracts/envelope.js';
import type { NodeId } from '../../replay/audit/merkle.js';
import { signCheckpoint } from '../../replay/audit/note.js';
import { inBatchSpans } from '../../infra/tracing.js';
import { storeCheckpoint } from './checkpoints.js';
import type { AuditWorkerConfig } from './config.js';
import { appendBatch, AuditStateFencedError, loadTreeState, STORED_MIN_LEVEL, type EventRow, type LeafRow, type NodeRow, type TreeState } from './store.js';

export interface AuditWorkerOptions extends AuditWorkerConfig {
  standbyPollMs?: number;
}

/** Most leaves per Postgres transaction. */
const BATCH_SIZE = 1000;

export interface AuditWorkerStatus {
  state: 'starting' | 'standby' | 'running' | 'closed';
  treeSize: number;
  checkpointSize: number;
}

export interface AuditWorker {
  status(): AuditWorkerStatus;
  /** Signs a checkpoint now if the tree grew since the last one; resolves with the tree size it covers. */
  checkpoint(): Promise<number>;
  /** Stops reading, signs a last checkpoint if the tree grew, releases the lock. */
  close(): Promise<void>;
}

/** `migrate` creates the checkpoint stream (the worker's credentials may not create streams): say so plainly when it has not run. */
async function checkpointStreamExists(rt: Runtime): Promise<void> {
  try {
    await rt.nats.jsm.streams.info(rt.names.auditCheckpointStream);
  } catch (err) {
    throw new Error(`stream ${rt.names.auditCheckpointStream} is missing: run \`relaygrid migrate\` first (${(err as Error).message})`);
  }
}

export async function startAuditWorker(rt: Runtime, opts: AuditWorkerOptions): Promise<AuditWorker> {
  const stream = rt.names.auditStream;
  const origin = opts.signer.name;
  const log = rt.log.child({ worker: 'audit', stream });
  const { auditTreeSize: treeGauge, auditCheckpointSize: checkpointGauge, auditCheckpointTime: checkpointTimeGauge, auditActive } = rt.metrics;
  await checkpointStreamExists(rt);

  let state: TreeState | undefined;
  let phase: AuditWorkerStatus['state'] = 'starting';
  let messages: ConsumerMessages | undefined;
  let lastCheckpointAt = Date.now();
  // Batches and checkpoints take turns: a checkpoint must sign a tree that is in Postgres.
  let turn: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = turn.then(fn);
    turn = next.catch(() => undefined);
    return next;
  };

  /** Signs and stores a checkpoint of the tree as it is in Postgres; no-op when it did not grow. */
  const checkpoint = (): Promise<number> =>
    exclusive(async () => {
      const s = state;
      if (!s || s.size === 0 || s.size <= s.checkpointSize) return s?.checkpointSize ?? 0;
      const root = s.frontier.root();
      const note = signCheckpoint({ origin, size: s.size, root }, opts.signer);
      await storeCheckpoint(rt, opts.checkpointDir, origin, { size: s.size, root, note });
      s.checkpointSize = s.size;
      lastCheckpointAt = Date.now();
      s.checkpointAt = new Date(lastCheckpointAt);
      checkpointGauge.set(s.size);
      checkpointTimeGauge.set(lastCheckpointAt / 1000);
      log.info({ size: s.size, root: root.toString('base64') }, 'signed audit checkpoint');
      return s.size;
    });

  /** One batch at a time, in a `process audit` span (infra/tracing.ts batchSpans). */
  const flush = (batch: JsMsg[]): Promise<void> =>
    exclusive(async () => {
      await inBatchSpans(
        `process audit`,
        { 'messaging.system': 'nats', 'messaging.destination.name': stream },
        batch.map((msg) => ({ traceparent: msg.headers?.get('traceparent') || undefined, attributes: { 'messaging.message.id': msg.headers?.get('ce-id') ?? '', 'relaygrid.audit.seq': msg.seq } })),
        () => foldBatch(batch),
      );
    });

  /** Folds a batch into a copy of the tree, stores it, and only then adopts it. */
  const foldBatch = async (batch: JsMsg[]): Promise<void> => {
    const from = state!;
    const frontier = from.frontier.clone();
    const leaves: LeafRow[] = [];
    const nodes: NodeRow[] = [];
    const events: EventRow[] = [];
    const onNode = (id: NodeId, hash: Buffer) => {
      if (id.level >= STORED_MIN_LEVEL) nodes.push({ ...id, hash });
    };
    for (const msg of batch) {
      // The verifier's own leaf function, so worker and verifier cannot disagree.
      const hash = deliveredLeafHash(msg);
      const index = frontier.size;
      // The tree's positions are the stream's: a gap (a deleted message) must stop the worker, not shift every later leaf.
      if (msg.seq !== index + 1) throw new Error(`${stream} seq ${msg.seq} would be leaf ${index}: the stream has a gap or was rewritten`);
      frontier.append(hash, onNode);
      leaves.push({ index, hash });
      // The tree covers bytes, decodable or not; only the id index can miss a commit's inner ids.
      const { ids, error } = eventIdsOrError(rt.registry, cloudEventAttributes(rawMessageOf(msg)), msg.data);
      if (error) log.warn({ err: error, seq: msg.seq, index }, 'commit not decodable: indexed by its ce-id only');
      for (const eventId of ids) events.push({ eventId, leafIndex: index });
    }
    const next: TreeState = { ...from, size: frontier.size, frontier };
    await appendBatch(rt.db, from.size, next, { leaves, nodes, events });
    state = next;
    treeGauge.set(next.size);
  };

  const consume = async (): Promise<void> => {
    state = await loadTreeState(rt.db, stream);
    treeGauge.set(state.size);
    checkpointGauge.set(state.checkpointSize);
    // The stored checkpoint's age, not the start's: a worker that restarts often must not look fresh.
    if (state.checkpointAt) checkpointTimeGauge.set(state.checkpointAt.getTime() / 1000);
    phase = 'running';
    log.info({ treeSize: state.size }, 'auditing');
    const consumer = await rt.nats.js.consumers.get(stream, { opt_start_seq: state.size + 1 });
    messages = await consumer.consume({ max_messages: BATCH_SIZE * 2 });
    if (loop.closed) messages.stop();
    let batch: JsMsg[] = [];
    try {
      for await (const msg of messages) {
        batch.push(msg);
        const s = state;
        // Cut at multiples of checkpointEvery so that checkpoint sizes are round.
        const toBoundary = opts.checkpointEvery - ((s.size + batch.length) % opts.checkpointEvery);
        const atBoundary = toBoundary === opts.checkpointEvery;
        if (batch.length < BATCH_SIZE && msg.info.pending > 0 && !atBoundary) continue;
        await flush(batch);
        batch = [];
        if (state.size - state.checkpointSize >= opts.checkpointEvery) await checkpoint();
        if (loop.closed) break;
      }
    } finally {
      messages.stop();
      messages = undefined;
    }
  };

  const loop = new LeaderLoop({
    lock: new LeaderLock(rt.config.databaseUrl, `audit:${stream}`),
    log,
    standbyPollMs: opts.standbyPollMs ?? 1000,
    onRole: (leader) => {
      auditActive.set(leader ? 1 : 0);
      if (!leader) phase = 'standby';
    },
    work: consume,
    isFenced: (err) => err instanceof AuditStateFencedError,
    onFailure: () => {
      state = undefined;
    },
  });

  // Time-triggered checkpoints: only when the tree grew, and never more often than asked.
  const timer = setInterval(() => {
    if (!state || state.size <= state.checkpointSize || Date.now() - lastCheckpointAt < opts.checkpointSeconds * 1000) return;
    checkpoint().catch((err: unknown) => log.warn({ err }, 'audit checkpoint failed; retrying at the next tick'));
  }, Math.min(1000, opts.checkpointSeconds * 1000));
  timer.unref();

  const running = loop.run().catch((err: unknown) => log.error({ err }, 'audit worker stopped'));

  return {
    status: () => ({ state: phase, treeSize: state?.size ?? 0, checkpointSize: state?.checkpointSize ?? 0 }),
    checkpoint,
    close: async () => {
      if (loop.closed) return;
      loop.stop();
      clearInterval(timer);
      messages?.stop();
      await running;
      // Whatever is stored gets a checkpoint before the lock goes, so a clean stop leaves nothing unsigned.
      await checkpoint().catch((err: unknown) => log.warn({ err }, 'last audit checkpoint failed'));
      await loop.release();
      auditActive.set(0);
      phase = 'closed';
    },
  };
}
