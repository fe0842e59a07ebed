import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../infra/config.js';

describe('configuration', () => {
  it('has working defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ namespace: 'rg', apiPort: 8080, gatewayPort: 8081, natsUrl: 'nats://127.0.0.1:4222' });
    // One port per role, so that roles run alone on one host do not collide.
    expect(config.opsPorts).toEqual({ projector: 8082, fleetWorker: 8083, auditWorker: 8084 });
    expect(config.auth).toMatchObject({ accessTokenTtlSeconds: 300, trustProxy: false });
    // No master key unless one is given: the roles that need it ask for it (requireMasterKey).
    expect(config.masterKey).toBeUndefined();
  });

  it('reads a 32-byte base64 master key', () => {
    const key = Buffer.alloc(32, 7);
    expect(loadConfig({ RG_MASTER_KEY: key.toString('base64') }).masterKey).toEqual(key);
  });

  it.each([
    ['RG_API_PORT', 'eighty', /RG_API_PORT: "eighty" is not a whole number/],
    ['RG_GATEWAY_PORT', '70000', /RG_GATEWAY_PORT: 70000 is outside/],
    ['RG_PROJECTOR_PORT', 'any', /RG_PROJECTOR_PORT: "any" is not a whole number/],
    ['RG_FLEET_WORKER_PORT', '65536', /RG_FLEET_WORKER_PORT: 65536 is outside/],
    ['RG_AUDIT_WORKER_PORT', '-1', /RG_AUDIT_WORKER_PORT: "-1" is not a whole number/],
    ['RG_NAMESPACE', 'Prod.1', /RG_NAMESPACE/],
    ['DATABASE_URL', 'mysql://x', /DATABASE_URL: scheme "mysql"/],
    ['NATS_URL', 'not a url', /NATS_URL/],
    ['REDIS_URL', 'http://x', /REDIS_URL/],
    ['RG_MASTER_KEY', Buffer.alloc(16, 1).toString('base64'), /RG_MASTER_KEY: must be 32 random bytes, base64/],
    ['RG_MASTER_KEY', 'not base64 at all!', /RG_MASTER_KEY/],
    ['RG_TRUST_PROXY', 'maybe', /RG_TRUST_PROXY: "maybe" is not true, false, a hop count or a list of proxy addresses/],
  ])('names %s when it is bad', (variable, value, message) => {
    let error: unknown;
    try {
      loadConfig({ [variable]: value });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe(variable);
    expect((error as Error).message).toMatch(message);
  });
  it.each([
    ['1', 1],
    ['true', true],
    ['10.0.0.0/8, 192.168.1.1', '10.0.0.0/8, 192.168.1.1'],
  ])('RG_TRUST_PROXY=%s trusts %j', (raw, expected) => {
    expect(loadConfig({ RG_TRUST_PROXY: raw }).auth.trustProxy).toEqual(expected);
  });
});
