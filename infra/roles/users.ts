/**
 * `relaygrid users …`: account administration for operators at a shell, e.g.
 * creating the first admin of a fresh install. Acts as `operator:<unix user>`.
 */
import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { DomainError } from '../../producers/decider.js';
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from '../../producers/identity/passwords.js';
import { isRole, ROLES, type Role } from '../../producers/identity/roles.js';
import type { Runtime } from '../runtime.js';
import { listUsers, USER_STATUSES } from '../../projectors/identity/users.queries.js';
import type { UserStatus } from '../../schema/database.js';
import { openIdentity } from './api.js';
import { CliError } from '../cli/cli-error.js';
import { printTable } from '../cli/table.js';

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

const COMMANDS = ['create-admin', 'suspend', 'reinstate', 'grant', 'revoke', 'list'] as const;

/** A `users` command whose arguments have been checked: what runs once connected. */
export type UsersCommand =
  | { command: 'usage' }
  | { command: 'create-admin'; email: string; password: string; shown: boolean }
  | { command: 'suspend'; target: string; reason: string }
  | { command: 'reinstate'; target: string }
  | { command: 'grant' | 'revoke'; target: string; role: Role }
  | { command: 'list'; q: string | undefined; status: UserStatus | undefined };

/** Checks the arguments (and reads a --password-stdin password) before anything connects. */
export async function parseUsersArgs(args: string[]): Promise<UsersCommand> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { email: { type: 'string' }, 'password-stdin': { type: 'boolean' }, reason: { type: 'string' }, q: { type: 'string' }, status: { type: 'string' } },
  });
  const [command, target, role] = positionals;
  const user = () => {
    if (!target) throw new UsersCommandError(`<id|email>: name the user\n\n${USERS_USAGE}`);
    return target;
  };
  const roleArg = () => {
    if (!role || !isRole(role)) throw new UsersCommandError(`<role>: one of ${ROLES.join(', ')}`);
    return role;
  };
  switch (command) {
    case undefined:
      return { command: 'usage' };
    case 'create-admin': {
      if (!values.email || !values.email.includes('@')) throw new UsersCommandError('--email: the new admin\'s email address');
      const shown = !values['password-stdin'];
      const password = shown ? randomBytes(15).toString('base64url') : await readStdin();
      if (password.length < PASSWORD_MIN_LENGTH || password.length > PASSWORD_MAX_LENGTH) {
        throw new UsersCommandError(`password: must be ${PASSWORD_MIN_LENGTH}-${PASSWORD_MAX_LENGTH} characters`);
      }
      return { command, email: values.email, password, shown };
    }
    case 'suspend':
      if (!values.reason) throw new UsersCommandError('--reason: say why, it is recorded in the event');
      return { command, target: user(), reason: values.reason };
    case 'reinstate':
      return { command, target: user() };
    case 'grant':
    case 'revoke':
      return { command, target: user(), role: roleArg() };
    case 'list': {
      const status = values.status as UserStatus | undefined;
      if (status !== undefined && !USER_STATUSES.includes(status)) throw new UsersCommandError(`--status: one of ${USER_STATUSES.join(', ')}`);
      return { command, q: values.q, status };
    }
    default:
      throw new UsersCommandError(`unknown users command "${command}" (one of ${COMMANDS.join(', ')}; \`relaygrid users --help\` shows the usage)`);
  }
}

export async function runUsers(rt: Runtime, cmd: Exclude<UsersCommand, { command: 'usage' }>): Promise<void> {
  const identity = openIdentity(rt);
  const actor = { actor: `operator:${userInfo().username}` };
  try {
    switch (cmd.command) {
      case 'create-admin': {
        const created = await identity.accounts.register({ email: cmd.email, password: cmd.password, roles: ['admin', 'client'] }, actor);
        console.log(`created admin ${created.userId} <${cmd.email}>`);
        if (cmd.shown) console.log(`password (shown once): ${cmd.password}`);
        return;
      }
      case 'suspend':
        await identity.admin.suspend(await identity.admin.resolveUser(cmd.target), cmd.reason, actor);
        console.log(`suspended ${cmd.target}`);
        return;
      case 'reinstate':
        await identity.admin.reinstate(await identity.admin.resolveUser(cmd.target), actor);
        console.log(`reinstated ${cmd.target}`);
        return;
      case 'grant':
        await identity.admin.grantRole(await identity.admin.resolveUser(cmd.target), cmd.role, actor);
        console.log(`granted ${cmd.role} to ${cmd.target}`);
        return;
      case 'revoke':
        await identity.admin.revokeRole(await identity.admin.resolveUser(cmd.target), cmd.role, actor);
        console.log(`revoked ${cmd.role} from ${cmd.target}`);
        return;
      case 'list': {
        const rows = await listUsers(rt.db, { q: cmd.q, status: cmd.status, limit: 1000 });
        printTable(['ID', 'STATUS', 'ROLES', 'EMAIL'], rows.map((row) => [row.id, row.status, (row.roles ?? []).join(','), row.email ?? '(forgotten)']));
        return;
      }
    }
  } catch (err) {
    if (err instanceof DomainError) throw new UsersCommandError(`${err.code}: ${err.message}`);
    throw err;
  }
}
