/** The roles of Relaygrid. Every route declares which of them may call it. */
export const ROLES = ['admin', 'operator', 'client', 'analyst', 'auditor'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/** Every self-registered person is a client; the other roles are granted. */
export const DEFAULT_ROLES: readonly Role[] = ['client'];
