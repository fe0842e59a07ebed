/**
 * Inclusion proofs an auditor can keep and check offline.
 *
 * A proof file carries everything needed besides the trust anchors (the
 * checkpoint and the verifier key, which the auditor gets separately): the
 * stored message itself (subject, headers, data), so the leaf hash is
 * recomputed rather than believed, and the event id is checked against the
 * message's ce-id or its commit entries; the leaf index, the tree size and
 * the audit path. The checkpoint the proof was made against is embedded for
 * convenience but never trusted: `verify-proof` checks the path against the
 * checkpoint file it is given.
 */
import { sharedRegistry } from '../../contracts/catalogue.js';
import { AuditFailedError } from './errors.js';
import { eventIdsOf } from './event-ids.js';
import { cloudEventAttributes, type CloudEventAttributes } from '../../contracts/envelope.js';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { messageLeafHash, type StoredMessage } from './leaf.js';
import { verifyInclusion } from './merkle.js';
import type { Checkpoint, Verifier } from './note.js';
import { openWithKey } from './checkpoint-source.js';

export const PROOF_FORMAT = 'relaygrid-audit-inclusion-proof/v1';

export interface InclusionProofFile {
  format: typeof PROOF_FORMAT;
  origin: string;
  eventId: string;
  leafIndex: number;
  treeSize: number;
  /** base64 SHA-256(0x00 ‖ leaf input) */
  leafHash: string;
  /** base64 hashes, the leaf's sibling first (RFC 6962 PATH) */
  auditPath: string[];
  /** The signed checkpoint of `treeSize` the proof was made against (informational). */
  checkpoint: string;
  message: { stream: string; seq: number; subject: string; headers: [string, string][]; data: string };
}

export function proofFile(p: {
  origin: string;
  eventId: string;
  leafIndex: number;
  treeSize: number;
  leafHash: Buffer;
  auditPath: Buffer[];
  checkpoint: string;
  stream: string;
  seq: number;
  message: StoredMessage;
}): InclusionProofFile {
  return {
    format: PROOF_FORMAT,
    origin: p.origin,
    eventId: p.eventId,
    leafIndex: p.leafIndex,
    treeSize: p.treeSize,
    leafHash: p.leafHash.toString('base64'),
    auditPath: p.auditPath.map((h) => h.toString('base64')),
    checkpoint: p.checkpoint,
    message: {
      stream: p.stream,
      seq: p.seq,
      subject: p.message.subject,
      headers: p.message.headers.map(([n, v]) => [n, v]),
      data: Buffer.from(p.message.data).toString('base64'),
    },
  };
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Checks the shape of a parsed proof file; the message names the first bad field. */
export function parseProofFile(value: unknown): InclusionProofFile {
  const p = value as Partial<InclusionProofFile> | null;
  const bad = (field: string) => new AuditFailedError(`not a ${PROOF_FORMAT} proof: bad or missing "${field}"`);
  if (!p || typeof p !== 'object') throw bad('format');
  if (p.format !== PROOF_FORMAT) throw bad('format');
  if (!isString(p.origin)) throw bad('origin');
  if (!isString(p.eventId)) throw bad('eventId');
  if (!isIndex(p.leafIndex)) throw bad('leafIndex');
  if (!isIndex(p.treeSize)) throw bad('treeSize');
  if (!isString(p.leafHash)) throw bad('leafHash');
  if (!Array.isArray(p.auditPath) || !p.auditPath.every(isString)) throw bad('auditPath');
  const m = p.message;
  if (!m || typeof m !== 'object' || !isString(m.subject) || !isString(m.data) || !isString(m.stream) || !isIndex(m.seq)) throw bad('message');
  if (!Array.isArray(m.headers) || !m.headers.every((h) => Array.isArray(h) && h.length === 2 && isString(h[0]) && isString(h[1]))) throw bad('message.headers');
  return p as InclusionProofFile;
}

export interface ProofVerdict {
  checkpoint: Checkpoint;
  eventId: string;
  leafIndex: number;
}

/**
 * Verifies a proof against a signed checkpoint, offline. Throws AuditFailedError
 * with the reason; returns what was proven.
 */
export function verifyProofFile(proof: InclusionProofFile, checkpointText: string, verifier: Verifier, checkpointSource: string): ProofVerdict {
  const checkpoint = openWithKey(checkpointText, verifier, checkpointSource);
  if (proof.origin !== checkpoint.origin) throw new AuditFailedError(`the proof is for log "${proof.origin}", the checkpoint for "${checkpoint.origin}"`);
  if (proof.treeSize !== checkpoint.size) {
    throw new AuditFailedError(`the proof is for tree size ${proof.treeSize}, the checkpoint for ${checkpoint.size}: prove again against this checkpoint`);
  }
  const message: StoredMessage = {
    subject: proof.message.subject,
    headers: proof.message.headers,
    data: Buffer.from(proof.message.data, 'base64'),
  };
  const leafHash = messageLeafHash(message);
  if (leafHash.toString('base64') !== proof.leafHash) throw new AuditFailedError('the proof\'s message does not hash to its leafHash: the message was altered');
  let ids: string[];
  try {
    ids = eventIdsOf(sharedRegistry(), attributesOfPairs(message.headers), message.data);
  } catch (err) {
    throw new AuditFailedError(`the proof's message cannot be read as an event message: ${(err as Error).message}`);
  }
  if (!ids.includes(proof.eventId)) throw new AuditFailedError(`the proof's message does not carry event ${proof.eventId} (it carries ${ids.join(', ') || 'no event id'})`);
  const path = proof.auditPath.map((h) => Buffer.from(h, 'base64'));
  if (!verifyInclusion(proof.leafIndex, proof.treeSize, leafHash, path, checkpoint.root)) {
    throw new AuditFailedError(`event ${proof.eventId} is not leaf ${proof.leafIndex} of the tree of size ${checkpoint.size}: the audit path does not lead to the checkpoint's root`);
  }
  return { checkpoint, eventId: proof.eventId, leafIndex: proof.leafIndex };
}

/** The attributes of a message given as header pairs (a proof file carries them so). */
function attributesOfPairs(pairs: readonly (readonly [string, string])[]): CloudEventAttributes | undefined {
  const h = natsHeaders();
  for (const [name, value] of pairs) h.append(name, value);
  return cloudEventAttributes({ headers: h });
}
