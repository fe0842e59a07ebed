/**
 * RG_STRIPE_SECRET_KEY, RG_STRIPE_WEBHOOK_SECRET, RG_STRIPE_API_BASE: the
 * Stripe provider's configuration (docs/billing.md#stripe). Both secrets or
 * neither: a provider that can charge but never hears the webhooks would
 * leave every 3-D Secure or `processing` payment pending forever. A refusal
 * names the variable and the expected form, never the value.
 */
// config.ts imports this module back: ConfigError is only used at call time, after both have loaded.
import { ConfigError } from './config.js';
import { Secret } from './secret.js';

type Env = Record<string, string | undefined>;

export interface StripeApiBase {
  protocol: 'http' | 'https';
  host: string;
  port: number;
}

export interface StripeConfig {
  secretKey: Secret;
  webhookSecret: Secret;
  /** Where the client sends requests: null is Stripe's own API (api.stripe.com); tests point it at a local fake. */
  apiBase: StripeApiBase | null;
}

const SECRET_KEY = /^(sk|rk)_(test|live)_[A-Za-z0-9]{8,}$/;
const WEBHOOK_SECRET = /^whsec_[A-Za-z0-9+/=]{8,}$/;

function secret(env: Env, name: string, form: RegExp, hint: string): Secret | null {
  const raw = env[name]?.trim();
  if (!raw) return null;
  if (!form.test(raw)) throw new ConfigError(name, `is not ${hint}`);
  return new Secret(raw);
}

function apiBase(env: Env): StripeApiBase | null {
  const name = 'RG_STRIPE_API_BASE';
  const raw = env[name]?.trim();
  if (!raw) return null;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(name, `"${raw}" is not a URL (expected http(s)://host[:port])`);
  }
  const protocol = url.protocol.replace(/:$/, '');
  if (protocol !== 'http' && protocol !== 'https') throw new ConfigError(name, `scheme "${protocol}" is not http or https`);
  if (url.username || url.password || (url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    throw new ConfigError(name, 'must be scheme, host and port only (the client adds /v1/…)');
  }
  return { protocol, host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port ? Number(url.port) : protocol === 'https' ? 443 : 80 };
}

export function stripeConfig(env: Env): StripeConfig | null {
  const secretKey = secret(env, 'RG_STRIPE_SECRET_KEY', SECRET_KEY, 'a Stripe secret key (sk_test_…, sk_live_…, or a restricted rk_…)');
  const webhookSecret = secret(env, 'RG_STRIPE_WEBHOOK_SECRET', WEBHOOK_SECRET, "a webhook endpoint's signing secret (whsec_…)");
  const base = apiBase(env);
  if (!secretKey && !webhookSecret) {
    if (base) throw new ConfigError('RG_STRIPE_API_BASE', 'is set but RG_STRIPE_SECRET_KEY is not');
    return null;
  }
  if (!secretKey) throw new ConfigError('RG_STRIPE_SECRET_KEY', 'is not set but RG_STRIPE_WEBHOOK_SECRET is: Stripe needs both');
  if (!webhookSecret) throw new ConfigError('RG_STRIPE_WEBHOOK_SECRET', 'is not set but RG_STRIPE_SECRET_KEY is: without it no payment that waits (3-D Secure, processing) is ever settled');
  return { secretKey, webhookSecret, apiBase: base };
}
