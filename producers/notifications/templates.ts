/**
 * What each kind of notification says, as a subject, a plain-text body and
 * an HTML body. Pure: the outbox renders once from its cause and seals the
 * result under the person's key. Every value put into HTML is escaped.
 */
import { formatMoney, money } from '../billing/money.js';
import type { Category } from './settings.js';

/** Where links in mails point (RG_APP_URL): the app's pages, which call the API. */
export interface Links {
  appUrl: string;
}

export type Template =
  | { kind: 'security.email-verification'; token: string; expiresAt: Date }
  | { kind: 'security.password-reset'; token: string; expiresAt: Date }
  | { kind: 'usage.threshold'; percent: number; usedBytes: bigint; allowanceBytes: bigint }
  | { kind: 'usage.expiry'; daysLeft: number; expiresAt: Date }
  | { kind: 'billing.invoice-finalized'; number: string; totalMinor: bigint; currency: string }
  | { kind: 'billing.payment-failed'; reference: string; reason: string; retryable: boolean }
  | { kind: 'billing.past-due'; graceUntil: Date };

export type Kind = Template['kind'];

export interface Rendered {
  subject: string;
  text: string;
  html: string;
}

export const categoryOf = (kind: Kind): Category => kind.slice(0, kind.indexOf('.')) as Category;

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const GIB = 1024n ** 3n;
/** Bytes as GiB with two decimals, exact (no float on a 64-bit count). */
export function formatGiB(bytes: bigint): string {
  const hundredths = (bytes * 100n) / GIB;
  return `${hundredths / 100n}.${(hundredths % 100n).toString().padStart(2, '0')} GiB`;
}

/** One paragraph list and an optional link, as text and as HTML. */
function compose(subject: string, paragraphs: string[], link?: { label: string; url: string }): Rendered {
  const text = [...paragraphs, ...(link ? [`${link.label}: ${link.url}`] : []), '— Relaygrid'].join('\n\n');
  const html = [
    '<!doctype html><html><body>',
    ...paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`),
    ...(link ? [`<p><a href="${escapeHtml(link.url)}">${escapeHtml(link.label)}</a></p>`] : []),
    '<p>— Relaygrid</p></body></html>',
  ].join('\n');
  return { subject, text, html };
}

export function render(t: Template, links: Links): Rendered {
  const page = (path: string) => `${links.appUrl.replace(/\/$/, '')}${path}`;
  switch (t.kind) {
    case 'security.email-verification':
      return compose(
        'Confirm your email address',
        ['Please confirm that this address belongs to your Relaygrid account.', `The link works until ${t.expiresAt.toISOString()}. If you did not create an account, ignore this mail.`],
        { label: 'Confirm your address', url: page(`/verify-email?token=${encodeURIComponent(t.token)}`) },
      );
    case 'security.password-reset':
      return compose(
        'Reset your password',
        ['Someone asked to reset the password of your Relaygrid account. Setting a new one signs you out everywhere.', `The link works once, until ${t.expiresAt.toISOString()}. If it was not you, ignore this mail: your password stays as it is.`],
        { label: 'Choose a new password', url: page(`/reset-password?token=${encodeURIComponent(t.token)}`) },
      );
    case 'usage.threshold':
      return compose(
        t.percent >= 100 ? 'You have used all of your data allowance' : `You have used ${t.percent}% of your data allowance`,
        [`This period you have used ${formatGiB(t.usedBytes)} of ${formatGiB(t.allowanceBytes)} (${t.percent}%).`],
        { label: 'See your usage', url: page('/usage') },
      );
    case 'usage.expiry':
      return compose(
        t.daysLeft === 1 ? 'Your subscription expires tomorrow' : `Your subscription expires in ${t.daysLeft} days`,
        [`Your subscription ends at ${t.expiresAt.toISOString()}. Renew it to keep your access.`],
        { label: 'Renew', url: page('/subscription') },
      );
    case 'billing.invoice-finalized':
      return compose(`Invoice ${t.number}`, [`Your invoice ${t.number} for ${formatMoney(money(t.totalMinor, t.currency))} is attached.`], { label: 'Your invoices', url: page('/billing') });
    case 'billing.payment-failed':
      return compose(
        'A payment failed',
        [`The payment for ${t.reference} did not go through (${t.reason}).`, t.retryable ? 'We will try again; you can also update your payment method.' : 'Please update your payment method.'],
        { label: 'Payment methods', url: page('/billing/payment-methods') },
      );
    case 'billing.past-due':
      return compose('Your subscription is past due', [`A renewal payment failed. Your access continues until ${t.graceUntil.toISOString()}; pay the invoice before then to keep it.`], {
        label: 'Pay now',
        url: page('/billing'),
      });
  }
}
