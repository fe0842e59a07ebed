/**
 * A channel delivers one rendered notification to one person. Email is the
 * one built; Web Push is meant to be one more implementation of the same
 * interface (with `Topic` = the notification id playing Message-ID's part).
 */
import type { ChannelName } from './settings.js';

/** What every channel gets: who, what, and the id every attempt of it carries. */
export interface Outgoing {
  notificationId: string;
  userId: string;
  /** The address for email; a channel that needs none ignores it. */
  to: string;
  subject: string;
  text: string;
  html: string;
  /** False for what a user asked for or cannot opt out of (security): no List-Unsubscribe. */
  optional: boolean;
  attachments: readonly { filename: string; contentType: string; content: Buffer }[];
}

/** sent: the receiving side took it. retry: try again later. permanent: never (a refused address). */
export type ChannelResult = { outcome: 'sent' } | { outcome: 'retry' | 'permanent'; error: string };

export interface Channel {
  readonly name: ChannelName;
  send(message: Outgoing): Promise<ChannelResult>;
  close(): Promise<void>;
}
