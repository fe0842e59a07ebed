/**
 * The messenger's fixed limits. Constants rather than configuration: clients
 * are written against them, and each one names the stable error code a client
 * sees when it is exceeded.
 */

/** Active devices per user (`device_limit_reached`): bounds the fan-out of every message to them. */
export const MAX_DEVICES_PER_USER = 5;

/** One-time prekeys in one upload (`invalid_body` on oneTimePreKeys). */
export const MAX_PREKEYS_PER_UPLOAD = 100;

/** Unclaimed one-time prekeys a device may hold (`prekey_limit_reached`). */
export const MAX_PREKEYS_PER_DEVICE = 500;

/** Key bundles one requester may fetch per minute (429 `rate_limited`): claims consume other people's prekeys. */
export const CLAIMS_PER_MINUTE = 100;

/** Contacts, and separately blocks, per user (`contact_limit_reached`, `block_limit_reached`). */
export const MAX_CONTACTS = 5000;

/** Members of one group (`group_full`); at least 1,000, which the fan-out benchmark connects. */
export const MAX_GROUP_MEMBERS = 1024;
