import { inspect } from 'node:util';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../infra/config.js';
import { Secret } from '../../infra/secret.js';
import { stripeConfig } from '../../infra/stripe-config.js';

const KEY = 'sk_test_51AbCdEfGhIjKlMnOp';
const HOOK = 'whsec_0123456789abcdefABCDEF';

function refusal(env: Record<string, string>): ConfigError {
  try {
    stripeConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('accepted');
}

describe('Stripe configuration', () => {
  it('is off without its variables', () => {
    expect(stripeConfig({})).toBeNull();
    expect(loadConfig({}).stripe).toBeNull();
  });

  it("takes both secrets, and Stripe's own API unless RG_STRIPE_API_BASE says otherwise", () => {
    const config = loadConfig({ RG_STRIPE_SECRET_KEY: KEY, RG_STRIPE_WEBHOOK_SECRET: HOOK }).stripe;
    expect(config?.secretKey.reveal()).toBe(KEY);
    expect(config?.webhookSecret.reveal()).toBe(HOOK);
    expect(config?.apiBase).toBeNull();
    expect(stripeConfig({ RG_STRIPE_SECRET_KEY: 'rk_live_restricted0001', RG_STRIPE_WEBHOOK_SECRET: HOOK })?.secretKey.reveal()).toBe('rk_live_restricted0001');
  });

  it.each([
    ['http://127.0.0.1:12111', { protocol: 'http', host: '127.0.0.1', port: 12111 }],
    ['https://stripe-mock.internal', { protocol: 'https', host: 'stripe-mock.internal', port: 443 }],
    ['http://[::1]:8420/', { protocol: 'http', host: '::1', port: 8420 }],
  ])('RG_STRIPE_API_BASE %s', (base, expected) => {
    expect(stripeConfig({ RG_STRIPE_SECRET_KEY: KEY, RG_STRIPE_WEBHOOK_SECRET: HOOK, RG_STRIPE_API_BASE: base })?.apiBase).toEqual(expected);
  });

  it.each([
    [{ RG_STRIPE_SECRET_KEY: KEY }, 'RG_STRIPE_WEBHOOK_SECRET'],
    [{ RG_STRIPE_WEBHOOK_SECRET: HOOK }, 'RG_STRIPE_SECRET_KEY'],
    [{ RG_STRIPE_API_BASE: 'http://127.0.0.1:1' }, 'RG_STRIPE_API_BASE'],
    [{ RG_STRIPE_SECRET_KEY: 'pk_test_publishable0001', RG_STRIPE_WEBHOOK_SECRET: HOOK }, 'RG_STRIPE_SECRET_KEY'],
    [{ RG_STRIPE_SECRET_KEY: KEY, RG_STRIPE_WEBHOOK_SECRET: 'not-a-whsec-secret' }, 'RG_STRIPE_WEBHOOK_SECRET'],
    [{ RG_STRIPE_SECRET_KEY: KEY, RG_STRIPE_WEBHOOK_SECRET: HOOK, RG_STRIPE_API_BASE: 'ftp://x' }, 'RG_STRIPE_API_BASE'],
    [{ RG_STRIPE_SECRET_KEY: KEY, RG_STRIPE_WEBHOOK_SECRET: HOOK, RG_STRIPE_API_BASE: 'http://x/v1' }, 'RG_STRIPE_API_BASE'],
  ])('%j is refused, naming %s', (env, variable) => {
    expect(refusal(env).variable).toBe(variable);
  });

  it('a refused secret is not repeated in the message', () => {
    const wrong = 'sk_test_has space inside';
    expect(refusal({ RG_STRIPE_SECRET_KEY: wrong, RG_STRIPE_WEBHOOK_SECRET: HOOK }).message).not.toContain('space inside');
    expect(refusal({ RG_STRIPE_SECRET_KEY: KEY, RG_STRIPE_WEBHOOK_SECRET: 'whsec_short' }).message).not.toContain('short');
  });
});

describe('Secret', () => {
  it('prints as [redacted] however it is turned into text, a log line included', () => {
    const config = stripeConfig({ RG_STRIPE_SECRET_KEY: KEY, RG_STRIPE_WEBHOOK_SECRET: HOOK });
    const lines: string[] = [];
    pino({ level: 'info' }, { write: (line: string) => void lines.push(line) }).info({ config }, 'configured');
    for (const text of [JSON.stringify(config), inspect(config, { depth: 5 }), `${String(config?.secretKey)}`, lines.join('')]) {
      expect(text).not.toContain(KEY);
      expect(text).not.toContain(HOOK);
      expect(text).toContain('[redacted]');
    }
    expect(new Secret('x').reveal()).toBe('x');
  });
});
