/**
 * Users for tests that exercise the log and the projectors rather than the
 * identity services: the same sealed UserRegistered the API writes, without
 * an argon2 hash per user.
 */
import type { DomainEvent, EventMeta } from '../../contracts/envelope.js';
import { uuidv7 } from '../../contracts/ids.js';
import { requireMasterKey } from '../../infra/config.js';
import type { Runtime } from '../../infra/runtime.js';
import { DomainError } from '../../producers/decider.js';
import type { CommandHandler } from '../../producers/event-store/command-handler.js';
import { WrongExpectedSequenceError } from '../../producers/event-store/errors.js';
import { PersonKeys } from '../../producers/identity/crypto/person-keys.js';
import { seal } from '../../producers/identity/crypto/sealing.js';
import { EmailIndex, normaliseEmail } from '../../producers/identity/email.js';
import { reserveEmail } from '../../producers/identity/register-user.js';

export interface TestUsers {
  keys: PersonKeys;
  emails: EmailIndex;
  /** A UserRegistered v3 for a new person (their key is created), as the API would seal it. */
  registered(userId: string, email: string, displayName?: string | null, at?: Date): Promise<DomainEvent<'identity.UserRegistered'>>;
  /** Reserves the email and appends the registration through the command handler; answers the user id and sequence. */
  register(handler: CommandHandler, input: { email: string; displayName?: string | null }, meta: EventMeta): Promise<{ userId: string; seq: number }>;
}

export function testUsers(rt: Runtime): TestUsers {
  const master = requireMasterKey(rt.config);
  const keys = new PersonKeys(rt.db, master);
  const emails = new EmailIndex(master);
  const registered: TestUsers['registered'] = async (userId, email, displayName = null, at = new Date()) => {
    const key = await keys.create(userId);
    return {
      type: 'identity.UserRegistered',
      data: {
        userId,
        emailHash: emails.of(email),
        emailSealed: seal(key, userId, normaliseEmail(email)),
        displayNameSealed: displayName ? seal(key, userId, displayName) : null,
        passwordHashSealed: null,
        roles: ['client'],
        registeredAt: at,
      },
    };
  };
  return {
    keys,
    emails,
    registered,
    async register(handler, input, meta) {
      const userId = uuidv7();
      await reserveEmail(handler, emails.of(input.email), userId, meta);
      const event = await registered(userId, input.email, input.displayName ?? null);
      try {
        const result = await handler.store.append(handler.store.names.aggregate('identity', 'user', userId), [event], { expectedSeq: 0, meta });
        return { userId, seq: result.seq };
      } catch (err) {
        // A concurrent registration of the address found this claim stalled and
        // closed the user id first (register-user.ts); the API answers email_taken then.
        if (err instanceof WrongExpectedSequenceError) throw new DomainError('email_taken', 'this email address is already registered');
        throw err;
      }
    },
  };
}
