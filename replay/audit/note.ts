/**
 * C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 keys, and the
 * tlog-checkpoint body they carry (https://c2sp.org/tlog-checkpoint). Both
 * formats are those of Go's golang.org/x/mod/sumdb/note and of transparency
 * logs, so an auditor can check our checkpoints with their own tools.
 *
 *   checkpoint body   <origin>\n<tree size>\n<base64 root hash>\n[extension lines]
 *   signed note       <body>\n— <key name> <base64(4-byte key hash ‖ 64-byte signature)>\n…
 *   key hash          first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ 32-byte public key)
 *   verifier key      <name>+<hex key hash>+<base64(0x01 ‖ public key)>
 *   signer key        PRIVATE+KEY+<name>+<hex key hash>+<base64(0x01 ‖ seed)>
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';

/** A malformed or unverifiable note or key; the message is one line for the CLI. */
export class NoteError extends Error {
  readonly code = 'bad_note';
}

const ALG_ED25519 = 0x01;
const SIG_PREFIX = '— ';
const MAX_SIGNATURES = 100;
// DER wrappers that turn raw Ed25519 bytes into keys node:crypto accepts.
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

export interface Verifier {
  name: string;
  /** The 4-byte key hash as an unsigned 32-bit number. */
  keyHash: number;
  publicKey: Buffer;
  /** `<name>+<hex hash>+<base64>`: how the key is written down. */
  text: string;
}

export interface Signer extends Verifier {
  privateKey: KeyObject;
}

/** Key names: non-empty, no whitespace, no '+' (C2SP signed-note). */
export function isValidKeyName(name: string): boolean {
  return name.length > 0 && !/[\s+]/u.test(name) && !name.includes('\uFFFD');
}

export function keyHash(name: string, publicKey: Uint8Array): number {
  return createHash('sha256').update(name, 'utf8').update(Buffer.of(0x0a, ALG_ED25519)).update(publicKey).digest().readUInt32BE(0);
}

const hex8 = (n: number): string => n.toString(16).padStart(8, '0');

function strictBase64(text: string, what: string): Buffer {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) throw new NoteError(`${what} is not standard base64`);
  return Buffer.from(text, 'base64');
}

function verifierOf(name: string, publicKey: Buffer): Verifier {
  const hash = keyHash(name, publicKey);
  return { name, keyHash: hash, publicKey, text: `${name}+${hex8(hash)}+${Buffer.concat([Buffer.of(ALG_ED25519), publicKey]).toString('base64')}` };
}

/** Parses `<name>+<hex hash>+<base64(0x01 ‖ key)>`, checking that the hash matches the key. */
export function parseVerifierKey(text: string): Verifier {
  const trimmed = text.trim();
  const parts = trimmed.split('+');
  // The base64 part may itself contain '+': name and hash are the first two fields.
  if (parts.length < 3 || parts[0] === 'PRIVATE') {
    throw new NoteError(parts[0] === 'PRIVATE' ? 'this is a signer (private) key; a verifier key is <name>+<hash>+<key>' : 'a verifier key is <name>+<hex key hash>+<base64 key>');
  }
  const [name, hashHex] = parts as [string, string];
  const key = strictBase64(parts.slice(2).join('+'), 'the verifier key');
  if (!isValidKeyName(name)) throw new NoteError(`key name "${name}" must be non-empty without spaces or '+'`);
  if (!/^[0-9a-f]{8}$/.test(hashHex)) throw new NoteError(`key hash "${hashHex}" is not 8 lower-case hex digits`);
  if (key.length !== 33 || key[0] !== ALG_ED25519) throw new NoteError('only Ed25519 verifier keys (algorithm 0x01, 32 bytes) are supported');
  const verifier = verifierOf(name, key.subarray(1));
  if (hex8(verifier.keyHash) !== hashHex) throw new NoteError(`key hash ${hashHex} does not match the key (expected ${hex8(verifier.keyHash)})`);
  return verifier;
}

function privateKeyOf(seed: Buffer): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' });
}

function publicKeyOf(privateKey: KeyObject): Buffer {
  const der = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return Buffer.from(der.subarray(der.length - 32));
}

/** Parses `PRIVATE+KEY+<name>+<hex hash>+<base64(0x01 ‖ seed)>`. */
export function parseSignerKey(text: string): Signer {
  const parts = text.trim().split('+');
  if (parts.length < 5 || parts[0] !== 'PRIVATE' || parts[1] !== 'KEY') throw new NoteError('a signer key is PRIVATE+KEY+<name>+<hex key hash>+<base64 seed>');
  const name = parts[2]!;
  const hashHex = parts[3]!;
  const seed = strictBase64(parts.slice(4).join('+'), 'the signer key');
  if (!isValidKeyName(name)) throw new NoteError(`key name "${name}" must be non-empty without spaces or '+'`);
  if (seed.length !== 33 || seed[0] !== ALG_ED25519) throw new NoteError('only Ed25519 signer keys (algorithm 0x01, 32-byte seed) are supported');
  const privateKey = privateKeyOf(seed.subarray(1));
  const verifier = verifierOf(name, publicKeyOf(privateKey));
  if (hex8(verifier.keyHash) !== hashHex) throw new NoteError(`key hash ${hashHex} does not match the key (expected ${hex8(verifier.keyHash)})`);
  return { ...verifier, privateKey };
}

/** A new Ed25519 key pair as the two key strings. */
export function generateKeyPair(name: string): { signer: string; verifier: string } {
  if (!isValidKeyName(name)) throw new NoteError(`key name "${name}" must be non-empty without spaces or '+'`);
  const { privateKey } = generateKeyPairSync('ed25519');
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  const seed = Buffer.from(der.subarray(der.length - 32));
  const verifier = verifierOf(name, publicKeyOf(privateKey));
  return {
    signer: `PRIVATE+KEY+${name}+${hex8(verifier.keyHash)}+${Buffer.concat([Buffer.of(ALG_ED25519), seed]).toString('base64')}`,
    verifier: verifier.text,
  };
}

/** The note text (body) must be UTF-8 without control characters other than newline, ending in one. */
function checkText(text: string, what: string): void {
  if (!text.endsWith('\n')) throw new NoteError(`${what} must end with a newline`);
  if (/[\u0000-\u0009\u000b-\u001f\uFFFD]/.test(text)) throw new NoteError(`${what} contains a control character or invalid UTF-8`);
}

/** Signs a note body: `<body>\n— <name> <base64(hash ‖ signature)>\n`. */
export function signNote(body: string, signer: Signer): string {
  checkText(body, 'a note body');
  if (body.includes('\n\n')) throw new NoteError('a note body must not contain a blank line');
  const signature = sign(null, Buffer.from(body, 'utf8'), signer.privateKey);
  const blob = Buffer.alloc(4 + signature.length);
  blob.writeUInt32BE(signer.keyHash, 0);
  signature.copy(blob, 4);
  return `${body}\n${SIG_PREFIX}${signer.name} ${blob.toString('base64')}\n`;
}

export interface NoteSignature {
  name: string;
  keyHash: number;
  signature: Buffer;
}

export interface ParsedNote {
  body: string;
  signatures: NoteSignature[];
}

/** Splits a signed note into its body and signature lines; checks the syntax only. */
export function parseNote(text: string): ParsedNote {
  if (/[\u0000-\u0009\u000b-\u001f\uFFFD]/.test(text)) throw new NoteError('the note contains a control character or invalid UTF-8');
  const split = text.lastIndexOf('\n\n');
  if (split < 0) throw new NoteError('the note has no signature block (a blank line, then "— <name> <signature>" lines)');
  const body = text.slice(0, split + 1);
  const block = text.slice(split + 2);
  if (block.length === 0 || !block.endsWith('\n')) throw new NoteError('the note has no signature lines, or they do not end with a newline');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) throw new NoteError(`the note has more than ${MAX_SIGNATURES} signatures`);
  const signatures = lines.map((line, i) => {
    if (!line.startsWith(SIG_PREFIX)) throw new NoteError(`signature line ${i + 1} does not start with "— "`);
    const rest = line.slice(SIG_PREFIX.length);
    const space = rest.indexOf(' ');
    const name = space < 0 ? '' : rest.slice(0, space);
    const b64 = space < 0 ? '' : rest.slice(space + 1);
    if (!isValidKeyName(name) || b64 === '') throw new NoteError(`signature line ${i + 1} is not "— <name> <base64>"`);
    const blob = strictBase64(b64, `signature line ${i + 1}`);
    if (blob.length < 5) throw new NoteError(`signature line ${i + 1} is too short`);
    return { name, keyHash: blob.readUInt32BE(0), signature: blob.subarray(4) };
  });
  return { body, signatures };
}

/**
 * Opens a note: parses it and checks the signature by `verifier`. Signatures by
 * other keys are ignored, as C2SP says; a note with none by this key, or a bad
 * one, is rejected with a message naming the keys involved.
 */
export function openNote(text: string, verifier: Verifier): ParsedNote {
  const note = parseNote(text);
  const mine = note.signatures.filter((s) => s.name === verifier.name && s.keyHash === verifier.keyHash);
  if (mine.length === 0) {
    const others = note.signatures.map((s) => `${s.name}+${hex8(s.keyHash)}`).join(', ');
    throw new NoteError(`not signed by key ${verifier.name}+${hex8(verifier.keyHash)} (signed by ${others})`);
  }
  const publicKey = createPublicKey({ key: Buffer.concat([SPKI_ED25519, verifier.publicKey]), format: 'der', type: 'spki' });
  for (const s of mine) {
    if (s.signature.length !== 64 || !verify(null, Buffer.from(note.body, 'utf8'), publicKey, s.signature)) {
      throw new NoteError(`invalid signature by key ${verifier.name}+${hex8(verifier.keyHash)}: the note was altered or signed by another key`);
    }
  }
  return note;
}

export interface Checkpoint {
  origin: string;
  size: number;
  root: Buffer;
  /** Extension lines after the root, kept as they are. */
  extensions: string[];
}

export function checkpointBody(c: Omit<Checkpoint, 'extensions'> & { extensions?: string[] }): string {
  if (c.origin === '' || c.origin.includes('\n')) throw new NoteError('a checkpoint origin must be one non-empty line');
  return `${c.origin}\n${c.size}\n${c.root.toString('base64')}\n${(c.extensions ?? []).map((e) => `${e}\n`).join('')}`;
}

export function parseCheckpointBody(body: string): Checkpoint {
  const lines = body.split('\n');
  // A body ends in '\n', so the last split element is empty.
  if (lines.length < 4 || lines.pop() !== '') throw new NoteError('a checkpoint body is <origin>, <tree size> and <base64 root hash> on three lines');
  const [origin, sizeText, rootText, ...extensions] = lines as [string, string, string, ...string[]];
  if (origin === '') throw new NoteError('the checkpoint has an empty origin line');
  if (!/^(0|[1-9]\d{0,15})$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) throw new NoteError(`checkpoint tree size "${sizeText}" is not a decimal number`);
  const root = strictBase64(rootText, 'the checkpoint root hash');
  if (root.length !== 32) throw new NoteError('the checkpoint root hash is not 32 bytes');
  if (extensions.some((e) => e === '')) throw new NoteError('the checkpoint has an empty extension line');
  return { origin, size: Number(sizeText), root, extensions };
}

export function signCheckpoint(c: Omit<Checkpoint, 'extensions'>, signer: Signer): string {
  return signNote(checkpointBody(c), signer);
}

/** Opens a signed checkpoint: signature by `verifier`, then the body; the origin must match when given. */
export function openCheckpoint(text: string, verifier: Verifier, origin?: string): Checkpoint {
  const note = openNote(text, verifier);
  const checkpoint = parseCheckpointBody(note.body);
  if (origin !== undefined && checkpoint.origin !== origin) throw new NoteError(`checkpoint origin "${checkpoint.origin}" is not "${origin}"`);
  return checkpoint;
}
