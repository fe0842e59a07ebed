/**
 * The audit worker's settings, from the environment, validated at start. A bad
 * value stops the process with one line naming the variable (ConfigError).
 *
 *   RG_AUDIT_SIGNING_KEY         the signer key, `PRIVATE+KEY+<name>+<hash>+<seed>`, or the
 *                                path of a file holding it (preferred: keeps it out of `ps`
 *                                and environment dumps). Required. Its name is the origin.
 *   RG_AUDIT_CHECKPOINT_DIR      where `<tree size>.checkpoint` files go (default
 *                                `.relaygrid/audit-checkpoints`); put it outside NATS's storage
 *   RG_AUDIT_CHECKPOINT_EVERY    sign after this many new leaves (default 1000)
 *   RG_AUDIT_CHECKPOINT_SECONDS  …or after this many seconds when the tree grew (default 10)
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../../infra/config.js';
import { NoteError, parseSignerKey, type Signer } from '../../replay/audit/note.js';

export interface AuditWorkerConfig {
  signer: Signer;
  checkpointDir: string;
  checkpointEvery: number;
  checkpointSeconds: number;
}

export const AUDIT_DEFAULTS = {
  checkpointDir: '.relaygrid/audit-checkpoints',
  checkpointEvery: 1000,
  checkpointSeconds: 10,
} as const;

type Env = Record<string, string | undefined>;

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `"${raw}" is not a whole number`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, `${value} is outside ${min}..${max}`);
  return value;
}

/** A key given inline, or the contents of the file it names. */
export function keyTextOf(variable: string, value: string, looksLikeKey: (text: string) => boolean): string {
  const trimmed = value.trim();
  if (looksLikeKey(trimmed)) return trimmed;
  try {
    return readFileSync(trimmed, 'utf8').trim();
  } catch (err) {
    throw new ConfigError(variable, `cannot read key file ${trimmed} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

export function loadSigner(env: Env = process.env): Signer {
  const variable = 'RG_AUDIT_SIGNING_KEY';
  const value = env[variable];
  if (!value?.trim()) {
    throw new ConfigError(variable, 'required: a signer key PRIVATE+KEY+<name>+<hash>+<seed>, or a file holding one (`relaygrid replay audit keygen <name>` makes one)');
  }
  const text = keyTextOf(variable, value, (t) => t.startsWith('PRIVATE+KEY+'));
  try {
    return parseSignerKey(text);
  } catch (err) {
    if (err instanceof NoteError) throw new ConfigError(variable, err.message);
    throw err;
  }
}

export function loadAuditWorkerConfig(env: Env = process.env): AuditWorkerConfig {
  return {
    signer: loadSigner(env),
    checkpointDir: resolve(env['RG_AUDIT_CHECKPOINT_DIR']?.trim() || AUDIT_DEFAULTS.checkpointDir),
    checkpointEvery: integer(env, 'RG_AUDIT_CHECKPOINT_EVERY', AUDIT_DEFAULTS.checkpointEvery, 1, 10_000_000),
    checkpointSeconds: integer(env, 'RG_AUDIT_CHECKPOINT_SECONDS', AUDIT_DEFAULTS.checkpointSeconds, 1, 86_400),
  };
}
