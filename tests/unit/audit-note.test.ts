/** C2SP signed notes and checkpoints, anchored on the Go reference implementation's example key and note. */
import { describe, expect, it } from 'vitest';
import {
  checkpointBody,
  generateKeyPair,
  NoteError,
  openCheckpoint,
  openNote,
  parseCheckpointBody,
  parseSignerKey,
  parseVerifierKey,
  signCheckpoint,
  signNote,
} from '../../replay/audit/note.js';

// golang.org/x/mod/sumdb/note's documented example (Ed25519 is deterministic).
const GO_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const GO_SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const GO_NOTE = `${GO_TEXT}\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`;

const root = Buffer.alloc(32, 7);

describe('signed notes', () => {
  it('reproduce the reference key hash, verifier key and signature byte for byte', () => {
    const signer = parseSignerKey(GO_SKEY);
    expect(signer.text).toBe(GO_VKEY);
    expect(parseVerifierKey(GO_VKEY).keyHash).toBe(0xc74f20a3);
    expect(signNote(GO_TEXT, signer)).toBe(GO_NOTE);
    expect(openNote(GO_NOTE, parseVerifierKey(GO_VKEY)).body).toBe(GO_TEXT);
  });

  it('sign → verify round trip with a generated key; the verifier key comes from the signer key', () => {
    const { signer, verifier } = generateKeyPair('relaygrid.test/audit');
    expect(parseSignerKey(signer).text).toBe(verifier);
    const note = signCheckpoint({ origin: 'relaygrid.test/audit', size: 42, root }, parseSignerKey(signer));
    expect(note).toBe(`relaygrid.test/audit\n42\n${root.toString('base64')}\n\n— relaygrid.test/audit ${note.split(' ').pop()}`);
    expect(openCheckpoint(note, parseVerifierKey(verifier), 'relaygrid.test/audit')).toEqual({ origin: 'relaygrid.test/audit', size: 42, root, extensions: [] });
  });

  it('rejects a note signed by another key, naming both keys', () => {
    const mine = generateKeyPair('relaygrid.test/audit');
    const other = generateKeyPair('someone-else');
    const note = signCheckpoint({ origin: 'relaygrid.test/audit', size: 1, root }, parseSignerKey(other.signer));
    expect(() => openNote(note, parseVerifierKey(mine.verifier))).toThrow(/^not signed by key relaygrid\.test\/audit\+[0-9a-f]{8} \(signed by someone-else\+[0-9a-f]{8}\)$/);
  });

  it('rejects another key that claims the same name and key hash', () => {
    const mine = parseVerifierKey(GO_VKEY);
    const impostor = generateKeyPair('PeterNeumann');
    const forged = signNote(GO_TEXT, parseSignerKey(impostor.signer)).replace(/ ([A-Za-z0-9+/=]+)\n$/, (_, b64: string) => {
      const blob = Buffer.from(b64, 'base64');
      blob.writeUInt32BE(mine.keyHash, 0);
      return ` ${blob.toString('base64')}\n`;
    });
    expect(() => openNote(forged, mine)).toThrow(/invalid signature by key PeterNeumann\+c74f20a3/);
  });

  it('rejects an altered body', () => {
    const altered = GO_NOTE.replace('cryptography', 'cryptograpHy');
    expect(() => openNote(altered, parseVerifierKey(GO_VKEY))).toThrow(NoteError);
    const { signer, verifier } = generateKeyPair('log');
    const note = signCheckpoint({ origin: 'log', size: 10, root }, parseSignerKey(signer));
    expect(() => openCheckpoint(note.replace('\n10\n', '\n11\n'), parseVerifierKey(verifier))).toThrow(/invalid signature/);
  });

  it('ignores signatures by unknown keys beside a good one', () => {
    const extra = `${GO_NOTE}— someone-else AAAAAQEC\n`;
    expect(openNote(extra, parseVerifierKey(GO_VKEY)).signatures).toHaveLength(2);
  });

  it.each([
    ['no signature block', GO_TEXT],
    ['no final newline', GO_NOTE.slice(0, -1)],
    ['not an em dash', GO_NOTE.replace('— ', '- ')],
    ['no name', GO_NOTE.replace('— PeterNeumann ', '— ')],
    ['bad base64', GO_NOTE.replace('x08go', 'x08g!')],
    ['short signature', `${GO_TEXT}\n— PeterNeumann AAAA\n`],
    ['control character', GO_NOTE.replace('problem,', 'problem,\t')],
  ])('rejects a malformed note: %s', (_what, text) => {
    expect(() => openNote(text, parseVerifierKey(GO_VKEY))).toThrow(NoteError);
  });

  it.each([
    ['wrong hash', 'PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW', /does not match/],
    ['a private key', GO_SKEY, /signer \(private\) key/],
    ['garbage', 'hello', /<name>\+<hex key hash>/],
    ['wrong algorithm', 'PeterNeumann+c74f20a3+AhpcAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', /Ed25519/],
  ])('rejects a malformed verifier key: %s', (_what, key, message) => {
    expect(() => parseVerifierKey(key)).toThrow(message);
  });

  it('rejects a signer key whose hash does not match', () => {
    expect(() => parseSignerKey(GO_SKEY.replace('c74f20a3', '00000000'))).toThrow(/does not match/);
  });
});

describe('checkpoint bodies', () => {
  it('round-trip, with extension lines', () => {
    const body = checkpointBody({ origin: 'o', size: 0, root, extensions: ['ext'] });
    expect(parseCheckpointBody(body)).toEqual({ origin: 'o', size: 0, root, extensions: ['ext'] });
  });

  it.each([
    ['two lines', `o\n1\n`],
    ['leading zero', `o\n01\n${root.toString('base64')}\n`],
    ['negative size', `o\n-1\n${root.toString('base64')}\n`],
    ['short root', `o\n1\n${Buffer.alloc(31).toString('base64')}\n`],
    ['empty origin', `\n1\n${root.toString('base64')}\n`],
  ])('rejects a malformed body: %s', (_what, body) => {
    expect(() => parseCheckpointBody(body)).toThrow(NoteError);
  });

  it('rejects a checkpoint of another origin', () => {
    const { signer, verifier } = generateKeyPair('log');
    const note = signCheckpoint({ origin: 'other-log', size: 1, root }, parseSignerKey(signer));
    expect(() => openCheckpoint(note, parseVerifierKey(verifier), 'log')).toThrow(/origin "other-log" is not "log"/);
  });
});
