/**
 * `replay audit prove <event id>`: an inclusion proof of the event's message
 * against the newest checkpoint that covers it. The leaf index comes from the
 * audit worker's event index, the path from its stored nodes, and the message
 * from the audit stream itself (its hash must still be the recorded leaf).
 * The proof is checked before it is printed: a proof that would not verify is
 * an error here, not a surprise for the auditor.
 */
import type { Runtime } from '../../infra/runtime.js';
import { findEvent, latestCheckpointCovering, resolveNodes } from '../../workers/audit/store.js';
import { AuditFailedError } from './errors.js';
import { messageLeafHash, storedMessageOf, type StoredMessage } from './leaf.js';
import { readStream } from '../range.js';
import { inclusionRanges, neededNodes, nodeKey, proofHashes, verifyInclusion } from './merkle.js';
import { parseCheckpointBody, parseNote } from './note.js';
import { proofFile, type InclusionProofFile } from './proof.js';

async function storedAt(rt: Runtime, stream: string, seq: number): Promise<StoredMessage | undefined> {
  let found: StoredMessage | undefined;
  // A consumer, not a direct get: direct gets add headers the leaf must not see.
  await readStream(
    rt,
    stream,
    (msg) => {
      if (msg.seq === seq) found = storedMessageOf(msg);
    },
    { from: seq, to: seq },
  );
  return found;
}

export async function proveEvent(rt: Runtime, eventId: string): Promise<InclusionProofFile> {
  const stream = rt.names.auditStream;
  const event = await findEvent(rt.db, eventId);
  if (!event) throw new AuditFailedError(`event ${eventId} is not in the audit tree (unknown id, or not audited yet)`);
  const checkpoint = await latestCheckpointCovering(rt.db, event.leafIndex);
  if (!checkpoint) throw new AuditFailedError(`event ${eventId} is leaf ${event.leafIndex}, which no checkpoint covers yet: try again after the next checkpoint`);
  const ranges = inclusionRanges(event.leafIndex, checkpoint.size);
  const nodes = await resolveNodes(rt.db, neededNodes(ranges));
  const auditPath = proofHashes(ranges, (id) => nodes.get(nodeKey(id))!);
  const message = await storedAt(rt, stream, event.seq);
  if (!message) throw new AuditFailedError(`event ${eventId}: ${stream} has no message at seq ${event.seq} any more`);
  const leafHash = messageLeafHash(message);
  if (!leafHash.equals(event.hash)) throw new AuditFailedError(`event ${eventId}: the message at ${stream} seq ${event.seq} no longer hashes to leaf ${event.leafIndex}: the stream was altered`);
  if (!verifyInclusion(event.leafIndex, checkpoint.size, leafHash, auditPath, checkpoint.root)) {
    throw new AuditFailedError(`event ${eventId}: the recorded tree does not lead to checkpoint ${checkpoint.size}'s root: the audit tables are damaged`);
  }
  const origin = parseCheckpointBody(parseNote(checkpoint.note).body).origin;
  return proofFile({ origin, eventId, leafIndex: event.leafIndex, treeSize: checkpoint.size, leafHash, auditPath, checkpoint: checkpoint.note, stream, seq: event.seq, message });
}
