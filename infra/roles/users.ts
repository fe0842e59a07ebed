/**
 * `relaygrid users …`: account administration for operators at a shell, e.g.
 * creating the first admin of a fresh install. Acts as `operator:<unix user>`.
 */
import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { DomainError } from '../../producers/decider.js';
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from '../../producers/identity/passwords.js';
import { isRole, ROLES } from '../../producers/identity/roles.js';
import type { Runtime } from '../runtime.js';
import { listUsers, USER_STATUSES } from '../../projectors/identity/users.queries.js';
import type { UserStatus } from '../../schema/database.js';
import { openIdentity } from './api.js';
import { CliError } from '../cli/cli-error.js';

export const USERS_USAGE = `usage: relaygrid users <command>

  create-admin --email E [--password-stdin]   create an admin (a password is generated and printed once unless given on stdin)
  suspend <id|email> --reason "…"             suspend: sessions end, proxy access is revoked
  reinstate <id|email>
  grant <id|email> <role>                     roles: ${ROLES.join(', ')}
  revoke <id|email> <role>
  list [--q <email prefix>] [--status active|suspended|forgotten]`;

export class UsersCommandError extends CliError {}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export async function runUsers(rt: Runtime, args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { email: { type: 'string' }, 'password-stdin': { type: 'boolean' }, reason: { type: 'string' }, q: { type: 'string' }, status: { type: 'string' } },
  });
  const [command, target, role] = positionals;
  const identity = openIdentity(rt);
  const actor = { actor: `operator:${userInfo().username}` };
  const user = async () => {
    if (!target) throw new UsersCommandError(`<id|email>: name the user\n\n${USERS_USAGE}`);
    return identity.admin.resolveUser(target);
  };
  const roleArg = () => {
    if (!role || !isRole(role)) throw new UsersCommandError(`<role>: one of ${ROLES.join(', ')}`);
    return role;
  };
  try {
    switch (command) {
      case 'create-admin': {
        if (!values.email || !values.email.includes('@')) throw new UsersCommandError('--email: the new admin\'s email address');
        const password = values['password-stdin'] ? await readStdin() : randomBytes(15).toString('base64url');
        if (password.length < PASSWORD_MIN_LENGTH || password.length > PASSWORD_MAX_LENGTH) {
          throw new UsersCommandError(`password: must be ${PASSWORD_MIN_LENGTH}-${PASSWORD_MAX_LENGTH} characters`);
        }
        const created = await identity.accounts.register({ email: values.email, password, roles: ['admin', 'client'] }, actor);
        console.log(`created admin ${created.userId} <${values.email}>`);
        if (!values['password-stdin']) console.log(`password (shown once): ${password}`);
        return;
      }
      case 'suspend':
        if (!values.reason) throw new UsersCommandError('--reason: say why, it is recorded in the event');
        await identity.admin.suspend(await user(), values.reason, actor);
        console.log(`suspended ${target}`);
        return;
      case 'reinstate':
        await identity.admin.reinstate(await user(), actor);
        console.log(`reinstated ${target}`);
        return;
      case 'grant':
        await identity.admin.grantRole(await user(), roleArg(), actor);
        console.log(`granted ${role} to ${target}`);
        return;
      case 'revoke':
        await identity.admin.revokeRole(await user(), roleArg(), actor);
        console.log(`revoked ${role} from ${target}`);
        return;
      case 'list': {
        const status = values.status as UserStatus | undefined;
        if (status !== undefined && !USER_STATUSES.includes(status)) throw new UsersCommandError(`--status: one of ${USER_STATUSES.join(', ')}`);
        for (const row of await listUsers(rt.db, { q: values.q, status, limit: 1000 })) console.log(`${row.id}  ${row.status.padEnd(9)}  ${(row.roles ?? []).join(',').padEnd(24)}  ${row.email ?? '(forgotten)'}`);
        return;
      }
      default:
        if (command === undefined) {
          console.log(USERS_USAGE);
          return;
        }
        throw new UsersCommandError(`unknown users command "${command}" (one of create-admin, suspend, reinstate, grant, revoke, list; \`relaygrid users\` shows the usage)`);
    }
  } catch (err) {
    if (err instanceof DomainError) throw new UsersCommandError(`${err.code}: ${err.message}`);
    throw err;
  }
}
