/** The audit worker's settings: defaults, key files, and one-line errors naming the variable. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../infra/config.js';
import { generateKeyPair } from '../../replay/audit/note.js';
import { loadAuditWorkerConfig } from '../../workers/audit/config.js';

const keys = generateKeyPair('relaygrid.test/audit');

describe('audit worker configuration', () => {
  it('takes the signing key inline, with the documented defaults', () => {
    const config = loadAuditWorkerConfig({ RG_AUDIT_SIGNING_KEY: keys.signer });
    expect(config.signer.text).toBe(keys.verifier);
    expect(config).toMatchObject({ checkpointEvery: 1000, checkpointSeconds: 10 });
    expect(config.checkpointDir).toMatch(/\.relaygrid\/audit-checkpoints$/);
  });

  it('takes the signing key from a file', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'rg-audit-key-')), 'audit.key');
    writeFileSync(file, `${keys.signer}\n`);
    const config = loadAuditWorkerConfig({ RG_AUDIT_SIGNING_KEY: file, RG_AUDIT_CHECKPOINT_EVERY: '50', RG_AUDIT_CHECKPOINT_SECONDS: '2', RG_AUDIT_CHECKPOINT_DIR: '/var/lib/audit' });
    expect(config).toMatchObject({ checkpointEvery: 50, checkpointSeconds: 2, checkpointDir: '/var/lib/audit' });
    expect(config.signer.name).toBe('relaygrid.test/audit');
  });

  it.each([
    [{}, /^RG_AUDIT_SIGNING_KEY: required/],
    [{ RG_AUDIT_SIGNING_KEY: '/no/such/key' }, /^RG_AUDIT_SIGNING_KEY: cannot read key file \/no\/such\/key \(ENOENT\)$/],
    [{ RG_AUDIT_SIGNING_KEY: keys.signer.replace(/\+[0-9a-f]{8}\+/, '+00000000+') }, /^RG_AUDIT_SIGNING_KEY: key hash 00000000 does not match/],
    [{ RG_AUDIT_SIGNING_KEY: keys.signer, RG_AUDIT_CHECKPOINT_EVERY: '0' }, /^RG_AUDIT_CHECKPOINT_EVERY: 0 is outside 1\.\.10000000$/],
    [{ RG_AUDIT_SIGNING_KEY: keys.signer, RG_AUDIT_CHECKPOINT_SECONDS: 'soon' }, /^RG_AUDIT_CHECKPOINT_SECONDS: "soon" is not a whole number$/],
  ])('%j fails with one line naming the variable', (env, message) => {
    expect(() => loadAuditWorkerConfig(env)).toThrow(ConfigError);
    expect(() => loadAuditWorkerConfig(env)).toThrow(message);
  });
});
