/**
 * `start` on a developer's machine needs a master key without ceremony: when
 * RG_MASTER_KEY is unset it keeps one in <dataDir>/master.key (mode 0600),
 * created on first use, so restarts can still open everyone's data. Production
 * roles never do this: they require RG_MASTER_KEY.
 */
import { randomBytes } from 'node:crypto';
import { generateKeyPair } from '../../replay/audit/note.js';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function localMasterKey(dataDir: string): Buffer {
  const file = join(dataDir, 'master.key');
  if (existsSync(file)) {
    const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
    if (key.length !== 32) throw new Error(`${file} does not hold a 32-byte base64 key`);
    return key;
  }
  mkdirSync(dataDir, { recursive: true });
  const key = randomBytes(32);
  writeFileSync(file, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  return key;
}

/**
 * The audit signing key `start` uses when RG_AUDIT_SIGNING_KEY is unset: kept in
 * <dataDir>/audit-signing.key (0600) with its verifier key beside it in .pub,
 * so `replay audit verify --key <dataDir>/audit-signing.key.pub` works locally.
 */
export function localAuditSigningKey(dataDir: string): string {
  const file = join(dataDir, 'audit-signing.key');
  if (existsSync(file)) return file;
  mkdirSync(dataDir, { recursive: true });
  const { signer, verifier } = generateKeyPair('relaygrid.local/audit');
  writeFileSync(file, `${signer}\n`, { mode: 0o600, flag: 'wx' });
  writeFileSync(`${file}.pub`, `${verifier}\n`, { flag: 'wx' });
  return file;
}
