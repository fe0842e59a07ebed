/**
 * What a user wants to be told, through which channel, and when
 * (docs/notifications.md#settings): categories × channels switched on or
 * off, quiet hours in the user's time zone, and a digest window for usage and
 * billing notices. Security mail cannot be turned off: it is how an account
 * taken over is noticed and won back.
 */
import { Temporal } from '@js-temporal/polyfill';
import { DomainError } from '../decider.js';
import type { NotificationSettingsData } from '../identity/user.decider.js';

export const CATEGORIES = ['security', 'billing', 'usage', 'messenger', 'announcements'] as const;
export type Category = (typeof CATEGORIES)[number];
export const CHANNELS = ['email', 'push', 'inApp'] as const;
export type ChannelName = (typeof CHANNELS)[number];
/** Categories whose notices may wait for a digest window. */
export const DIGEST_CATEGORIES: readonly Category[] = ['usage', 'billing'];
export const MAX_DIGEST_MINUTES = 7 * 24 * 60;

/** As the API shows and takes it. */
export interface NotificationSettings {
  channels: Record<Category, Record<ChannelName, boolean>>;
  quietHours: { start: string; end: string } | null;
  digestMinutes: number;
}

/** Every category on every channel; announcements by mail off until asked for. */
const DEFAULT_DISABLED = ['announcements:email'];

const HH_MM = /^([01]\d|2[0-3]):[0-5]\d$/;

export function settingsOf(data: NotificationSettingsData | null): NotificationSettings {
  const disabled = new Set(data?.disabled ?? DEFAULT_DISABLED);
  const channels = Object.fromEntries(CATEGORIES.map((c) => [c, Object.fromEntries(CHANNELS.map((ch) => [ch, !disabled.has(`${c}:${ch}`)]))])) as NotificationSettings['channels'];
  const quietHours = data?.quietStart && data.quietEnd ? { start: data.quietStart, end: data.quietEnd } : null;
  return { channels, quietHours, digestMinutes: data?.digestMinutes ?? 0 };
}

/** Checks what a user sent (the API's schema checked the shape) and turns it into the event's form. */
export function settingsData(input: NotificationSettings): NotificationSettingsData {
  if (!input.channels.security.email) {
    throw new DomainError('security_mail_required', 'channels.security.email: security mail (sign-ins, password resets, verification) cannot be turned off', { field: 'channels.security.email' });
  }
  const q = input.quietHours;
  if (q) {
    for (const [name, value] of [['start', q.start], ['end', q.end]] as const) {
      if (!HH_MM.test(value)) throw new DomainError('invalid_notification_settings', `quietHours.${name}: must be HH:MM (00:00–23:59)`, { field: `quietHours.${name}` });
    }
    if (q.start === q.end) throw new DomainError('invalid_notification_settings', 'quietHours: start and end must differ', { field: 'quietHours' });
  }
  const disabled = CATEGORIES.flatMap((c) => CHANNELS.filter((ch) => !input.channels[c][ch]).map((ch) => `${c}:${ch}`));
  return { disabled, quietStart: q?.start ?? null, quietEnd: q?.end ?? null, digestMinutes: input.digestMinutes };
}

export function channelOn(settings: NotificationSettings, category: Category, channel: ChannelName): boolean {
  return category === 'security' && channel === 'email' ? true : settings.channels[category][channel];
}

const minutesOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3));

/**
 * When a notice of `category` due at `at` may go out: `at` itself, or the
 * end of the quiet hours it falls in (in `timeZone`), or the end of the
 * digest window it falls in. Security notices never wait.
 */
export function releaseAt(settings: NotificationSettings, category: Category, timeZone: string, at: Date): Date {
  if (category === 'security') return at;
  let when = at;
  if (settings.digestMinutes > 0 && DIGEST_CATEGORIES.includes(category)) {
    // Fixed windows from the epoch: every notice of a window goes out at its end, together.
    const windowMs = settings.digestMinutes * 60_000;
    const end = Math.ceil(at.getTime() / windowMs) * windowMs;
    when = new Date(end);
  }
  const q = settings.quietHours;
  if (!q) return when;
  const local = Temporal.Instant.fromEpochMilliseconds(when.getTime()).toZonedDateTimeISO(timeZone);
  const now = local.hour * 60 + local.minute;
  const start = minutesOf(q.start);
  const end = minutesOf(q.end);
  const inside = start < end ? now >= start && now < end : now >= start || now < end;
  if (!inside) return when;
  const endTime = Temporal.PlainTime.from(q.end);
  let release = local.withPlainTime(endTime);
  if (Temporal.ZonedDateTime.compare(release, local) <= 0) release = release.add({ days: 1 }).withPlainTime(endTime);
  return new Date(release.epochMilliseconds);
}
