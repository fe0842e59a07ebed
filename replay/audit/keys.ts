/**
 * The verifier key of `replay audit`: `--key` (the key itself or a file
 * holding it), else RG_AUDIT_VERIFIER_KEY (same forms), else the public half
 * of RG_AUDIT_SIGNING_KEY when the command runs where the worker's key is.
 * Every problem is one line naming where the key came from.
 */
import { ConfigError } from '../../infra/config.js';
import { keyTextOf, loadSigner } from '../../workers/audit/config.js';
import { ReplayArgumentError } from '../range.js';
import { NoteError, parseVerifierKey, type Verifier } from './note.js';

const INLINE_VERIFIER_KEY = /^[^\s+]+\+[0-9a-f]{8}\+[A-Za-z0-9+/]+=*$/;

/** Reads a key given inline or as a file; `what` names the flag or variable in errors. */
export function verifierFrom(what: string, value: string): Verifier {
  try {
    return parseVerifierKey(keyTextOf(what, value, (text) => INLINE_VERIFIER_KEY.test(text)));
  } catch (err) {
    if (err instanceof NoteError || err instanceof ConfigError) throw new ReplayArgumentError(err instanceof NoteError ? `${what}: ${err.message}` : err.message);
    throw err;
  }
}

export function resolveVerifier(flag: string | undefined, env: Record<string, string | undefined> = process.env): Verifier {
  if (flag !== undefined) return verifierFrom('--key', flag);
  const configured = env['RG_AUDIT_VERIFIER_KEY'];
  if (configured?.trim()) return verifierFrom('RG_AUDIT_VERIFIER_KEY', configured);
  if (env['RG_AUDIT_SIGNING_KEY']?.trim()) {
    try {
      const { name, keyHash, publicKey, text } = loadSigner(env);
      return { name, keyHash, publicKey, text };
    } catch (err) {
      if (err instanceof ConfigError) throw new ReplayArgumentError(err.message);
      throw err;
    }
  }
  throw new ReplayArgumentError('--key: the verifier key (<name>+<hash>+<key>, or a file holding it) is required, or set RG_AUDIT_VERIFIER_KEY');
}
