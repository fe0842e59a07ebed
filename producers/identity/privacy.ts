/** Who may see a user's presence and read receipts: the privacy settings the messenger honours. */
export const VISIBILITIES = ['everyone', 'contacts', 'nobody'] as const;
export type Visibility = (typeof VISIBILITIES)[number];

/** The default for new users, and for any value an event may carry that this build does not know. */
export const DEFAULT_VISIBILITY: Visibility = 'contacts';

export function asVisibility(value: string): Visibility {
  return (VISIBILITIES as readonly string[]).includes(value) ? (value as Visibility) : DEFAULT_VISIBILITY;
}
