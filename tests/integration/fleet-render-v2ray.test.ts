/**
 * Rendered configurations against the real core: V2Ray 4.34 (Xray's ancestor,
 * same JSON) must accept them with `v2ray -test`. REALITY is Xray-only, so
 * its shape is checked in tests/unit/fleet-render.test.ts instead.
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InboundProfile, ProxyUser } from '../../producers/fleet/model.js';
import { withLocalApi } from '../../workers/agent/core/local-api.js';
import type { CoreConfig } from '../../workers/fleet/render/core-config.js';
import { renderConfig, renderTemplate } from '../../workers/fleet/render/render.js';

const V2RAY = process.env.V2RAY_BIN ?? '/usr/bin/v2ray';

interface Run {
  code: number;
  output: string;
}

const execFileAsync = promisify(execFile);

/** Runs a command to completion: its exit code and all it printed; throws only if it could not run at all. */
async function run(file: string, args: string[]): Promise<Run> {
  try {
    const { stdout, stderr } = await execFileAsync(file, args, { timeout: 20_000 });
    return { code: 0, output: `${stdout}${stderr}` };
  } catch (err) {
    const failed = err as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof failed.code !== 'number') throw err;
    return { code: failed.code, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}

describe('rendered configurations and v2ray -test', () => {
  let dir: string;
  let certificateFile: string;
  let keyFile: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'relaygrid-render-'));
    certificateFile = path.join(dir, 'tls.crt');
    keyFile = path.join(dir, 'tls.key');
    const openssl = await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=test', '-keyout', keyFile, '-out', certificateFile,
    ]);
    expect(openssl.code, openssl.output).toBe(0);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const user = (name: string): ProxyUser => ({
    userId: `u-${name}`,
    vlessId: randomUUID(),
    trojanPassword: randomBytes(16).toString('base64url'),
    proxyUsername: name,
    proxyPassword: randomBytes(16).toString('base64url'),
  });
  const users = [user('alice'), user('bob')];

  const profiles = (): InboundProfile[] => [
    { profileId: 'p-vless', kind: 'vless', port: 20_001, labels: [], settings: {}, secrets: {} },
    {
      profileId: 'p-trojan',
      kind: 'trojan-tls',
      port: 20_002,
      labels: [],
      settings: { certificateFile, keyFile, serverNames: ['test'] },
      secrets: {},
    },
    { profileId: 'p-http', kind: 'http', port: 20_003, labels: [], settings: {}, secrets: {} },
    { profileId: 'p-socks', kind: 'socks', port: 20_004, labels: [], settings: {}, secrets: {} },
  ];

  async function v2rayTest(name: string, config: CoreConfig): Promise<Run> {
    const file = path.join(dir, `${name}.json`);
    await writeFile(file, JSON.stringify(config, null, 2));
    return run(V2RAY, ['-test', '-config', file]);
  }

  it('accepts vless, trojan-tls, http and socks inbounds with two users', async () => {
    const ps = profiles();
    const config = renderConfig(renderTemplate(ps), ps, users);
    expect(config.inbounds.map((i) => i.tag)).toEqual(['p-http', 'p-socks', 'p-trojan', 'p-vless']);
    const result = await v2rayTest('fleet', config);
    expect(result.code, result.output).toBe(0);
    expect(result.output).toMatch(/Configuration OK/);
  });

  it('accepts the same configuration with the agent’s local API added', async () => {
    const ps = profiles();
    const result = await v2rayTest('fleet-api', withLocalApi(renderConfig(renderTemplate(ps), ps, users), 20_010));
    expect(result.code, result.output).toBe(0);
  });

  it('refuses a vless-tls profile whose certificate file does not exist', async () => {
    const ps: InboundProfile[] = [
      {
        profileId: 'p-vless-tls',
        kind: 'vless-tls',
        port: 20_005,
        labels: [],
        settings: { certificateFile: path.join(dir, 'missing.crt'), keyFile },
        secrets: {},
      },
    ];
    const result = await v2rayTest('missing-cert', renderConfig(renderTemplate(ps), ps, users));
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(/missing\.crt/);
  });
});
