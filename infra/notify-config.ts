/**
 * RG_SMTP_URL, RG_SMTP_FROM, RG_SMTP_DKIM_*, RG_APP_URL: the notifier's mail
 * (docs/notifications.md#configuration). Without RG_SMTP_URL the notifier
 * queues and shows notifications in-app but sends no mail. A refusal names
 * the variable, never the value (the URL may hold a password).
 */
// config.ts imports this module back: ConfigError is only used at call time, after both have loaded.
import { ConfigError } from './config.js';
import { Secret } from './secret.js';

type Env = Record<string, string | undefined>;

export interface SmtpConfig {
  /** smtp://user:pass@host:port or smtps://…; its credentials stay in the Secret. */
  url: Secret;
  /** The From address (`Relaygrid <no-reply@example.org>`); its domain names every Message-ID. */
  from: string;
  fromDomain: string;
  dkim: { domainName: string; keySelector: string; privateKey: Secret } | null;
}

export interface NotifyConfig {
  smtp: SmtpConfig | null;
  /** Base of the links in mails (the app's pages: /verify-email, /reset-password, …). */
  appUrl: string;
}

export const DEFAULT_APP_URL = 'http://localhost:8080';

function httpUrl(env: Env, name: string, fallback: string): string {
  const raw = env[name]?.trim() || fallback;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(name, `"${raw}" is not a URL (expected http(s)://host[:port][/path])`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(name, `scheme "${url.protocol.replace(/:$/, '')}" is not http or https`);
  return raw.replace(/\/$/, '');
}

function domainOf(from: string): string | null {
  const match = /@([A-Za-z0-9.-]+\.[A-Za-z]{2,}|localhost)>?\s*$/.exec(from);
  return match ? match[1]!.toLowerCase() : null;
}

function dkim(env: Env, fromDomain: string): SmtpConfig['dkim'] {
  const selector = env['RG_SMTP_DKIM_SELECTOR']?.trim();
  const key = env['RG_SMTP_DKIM_PRIVATE_KEY']?.trim();
  if (!selector && !key) return null;
  if (!selector) throw new ConfigError('RG_SMTP_DKIM_SELECTOR', 'is not set but RG_SMTP_DKIM_PRIVATE_KEY is');
  if (!key || !key.includes('PRIVATE KEY')) throw new ConfigError('RG_SMTP_DKIM_PRIVATE_KEY', 'must be a PEM private key when RG_SMTP_DKIM_SELECTOR is set');
  return { domainName: env['RG_SMTP_DKIM_DOMAIN']?.trim() || fromDomain, keySelector: selector, privateKey: new Secret(key) };
}

export function notifyConfig(env: Env): NotifyConfig {
  const appUrl = httpUrl(env, 'RG_APP_URL', DEFAULT_APP_URL);
  const raw = env['RG_SMTP_URL']?.trim();
  if (!raw) return { smtp: null, appUrl };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError('RG_SMTP_URL', 'is not a URL (expected smtp://[user:password@]host:port or smtps://…)');
  }
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') throw new ConfigError('RG_SMTP_URL', `scheme "${url.protocol.replace(/:$/, '')}" is not smtp or smtps`);
  const from = env['RG_SMTP_FROM']?.trim();
  if (!from) throw new ConfigError('RG_SMTP_FROM', 'is required with RG_SMTP_URL: the From address, e.g. "Relaygrid <no-reply@example.org>"');
  const fromDomain = domainOf(from);
  if (!fromDomain) throw new ConfigError('RG_SMTP_FROM', `"${from}" is not an address (name@domain, optionally as "Name <name@domain>")`);
  return { smtp: { url: new Secret(raw), from, fromDomain, dkim: dkim(env, fromDomain) }, appUrl };
}
