/**
 * `relaygrid plans …`: the plan catalogue and users' subscriptions for
 * operators at a shell (docs/plans.md). Acts as `operator:<unix user>`.
 * Arguments are checked before anything connects; `update` changes only the
 * terms it is given, the others stay as the log has them.
 */
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { DomainError } from '../../producers/decider.js';
import { termsToFields, validatePlanInput, type PlanTerms } from '../../producers/plans/model.js';
import { Plans } from '../../producers/plans/plans.js';
import { CommandHandler } from '../../producers/event-store/command-handler.js';
import { EventStore } from '../../producers/event-store/event-store.js';
import type { Runtime } from '../runtime.js';
import { CliError } from '../cli/cli-error.js';
import { printTable } from '../cli/table.js';
import { openIdentity } from './api.js';

export const PLANS_USAGE = `usage: relaygrid plans <command>

  list [--all]                           the catalogue (--all: retired plans too)
  create <planId> --name N --price-minor N --currency C [terms]
  update <planId> [--name N] [--price-minor N] [--currency C] [terms]   changes what is given; subscribers take it at their next period
  retire <planId>                        no new subscriptions; current ones keep it until they end
  subscribe <user id|email> <planId> [--starts-at ISO] [--request-id ID]   grant a plan; it replaces the user's subscription (the same request id again changes nothing)
  grant <user id|email> <bytes> [--expires-at ISO] [--grant-id ID]   add bytes (e.g. 10GiB); the same grant id again adds nothing
  disable <user id|email> --reason "…"   suspend the subscription (the user leaves every node); periods keep running
  enable <user id|email> [--reason "…"]  lift it again

terms:
  --allowance <bytes|unlimited>          per period, e.g. 50GiB, 1048576
  --reset none|day|week|month|calendar_month
  --days N [--on-hold-timeout N]         valid N days from the start, or (with --on-hold-timeout) from first traffic
  --no-expiry                            valid until changed
  --ip-limit <N|unlimited>  --labels a,b  --kinds vless-reality,trojan-tls  --next <planId|none>  --overage block|soft`;

export class PlansCommandError extends CliError {}

const UNITS: Record<string, bigint> = { '': 1n, B: 1n, KiB: 1024n, MiB: 1024n ** 2n, GiB: 1024n ** 3n, TiB: 1024n ** 4n };

/** `10GiB` → "10737418240": the decimal string the plans context takes. */
export function parseByteSize(value: string, flag: string): string {
  const match = /^(\d{1,19})(B|KiB|MiB|GiB|TiB)?$/.exec(value);
  if (!match) throw new PlansCommandError(`${flag}: a whole number of bytes, or with a unit B, KiB, MiB, GiB, TiB (e.g. 50GiB)`);
  return (BigInt(match[1]!) * UNITS[match[2] ?? '']!).toString();
}

const int = (value: string, flag: string) => {
  if (!/^\d{1,15}$/.test(value)) throw new PlansCommandError(`${flag}: a whole number`);
  return Number(value);
};
const list = (value: string) => value.split(',').map((s) => s.trim()).filter(Boolean);

const OPTIONS = {
  all: { type: 'boolean' },
  name: { type: 'string' },
  allowance: { type: 'string' },
  reset: { type: 'string' },
  days: { type: 'string' },
  'on-hold-timeout': { type: 'string' },
  'no-expiry': { type: 'boolean' },
  'ip-limit': { type: 'string' },
  labels: { type: 'string' },
  kinds: { type: 'string' },
  'price-minor': { type: 'string' },
  currency: { type: 'string' },
  next: { type: 'string' },
  overage: { type: 'string' },
  'starts-at': { type: 'string' },
  'expires-at': { type: 'string' },
  'grant-id': { type: 'string' },
  reason: { type: 'string' },
  'request-id': { type: 'string' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

/** The plan fields the flags set, as the API's JSON would carry them. */
function planPatch(v: Values): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  if (v.name !== undefined) patch['name'] = v.name;
  if (v.allowance !== undefined) patch['allowanceBytes'] = v.allowance === 'unlimited' ? null : parseByteSize(v.allowance, '--allowance');
  if (v.reset !== undefined) patch['resetStrategy'] = v.reset;
  if (v['no-expiry']) patch['validity'] = { kind: 'none' };
  else if (v.days !== undefined) {
    const days = int(v.days, '--days');
    patch['validity'] = v['on-hold-timeout'] === undefined ? { kind: 'days', days } : { kind: 'on_hold', days, timeoutDays: int(v['on-hold-timeout'], '--on-hold-timeout') };
  } else if (v['on-hold-timeout'] !== undefined) throw new PlansCommandError('--on-hold-timeout: give --days too (the validity once the clock starts)');
  if (v['ip-limit'] !== undefined) patch['ipLimit'] = v['ip-limit'] === 'unlimited' ? null : int(v['ip-limit'], '--ip-limit');
  if (v.labels !== undefined) patch['nodeLabels'] = list(v.labels);
  if (v.kinds !== undefined) patch['inboundKinds'] = list(v.kinds);
  if (v.next !== undefined) patch['nextPlanId'] = v.next === 'none' ? null : v.next;
  if (v.overage !== undefined) patch['overage'] = v.overage;
  const price: Record<string, unknown> = {};
  if (v['price-minor'] !== undefined) price['amountMinor'] = int(v['price-minor'], '--price-minor');
  if (v.currency !== undefined) price['currency'] = v.currency.toUpperCase();
  if (Object.keys(price).length > 0) patch['price'] = price;
  return patch;
}

/** A plan's terms back in the API's JSON shape, for `update` to lay the flags over. */
function asInput(name: string, t: PlanTerms): Record<string, unknown> {
  const f = termsToFields(t);
  return {
    name,
    allowanceBytes: f.allowanceBytes?.toString() ?? null,
    resetStrategy: f.resetStrategy,
    validity: t.validity,
    ipLimit: f.ipLimit,
    nodeLabels: f.nodeLabels,
    inboundKinds: f.inboundKinds,
    price: { amountMinor: Number(f.priceMinor), currency: f.currency },
    nextPlanId: f.nextPlanId,
    overage: f.overage,
  };
}

export type PlansCommand =
  | { command: 'usage' }
  | { command: 'list'; all: boolean }
  | { command: 'create'; planId: string; input: Record<string, unknown> }
  | { command: 'update'; planId: string; patch: Record<string, unknown> }
  | { command: 'retire'; planId: string }
  | { command: 'subscribe'; target: string; planId: string; startsAt?: string; requestId?: string }
  | { command: 'grant'; target: string; bytes: string; expiresAt?: string; grantId?: string }
  | { command: 'disable' | 'enable'; target: string; reason: string };

const COMMANDS = ['list', 'create', 'update', 'retire', 'subscribe', 'grant', 'disable', 'enable'] as const;

function toCliError(err: unknown): never {
  if (err instanceof DomainError) throw new PlansCommandError(`${err.code}: ${err.message}`);
  throw err;
}

export function parsePlansArgs(args: string[]): PlansCommand {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: OPTIONS });
  } catch (err) {
    throw new PlansCommandError(`${(err as Error).message}\n\n${PLANS_USAGE}`);
  }
  const { values, positionals } = parsed;
  const [command, first, second] = positionals;
  const need = (value: string | undefined, what: string) => {
    if (!value) throw new PlansCommandError(`${what}: missing\n\n${PLANS_USAGE}`);
    return value;
  };
  const time = (value: string | undefined, flag: string) => {
    if (value !== undefined && Number.isNaN(new Date(value).getTime())) throw new PlansCommandError(`${flag}: an ISO 8601 date-time, e.g. 2026-12-01T00:00:00Z`);
    return value;
  };
  switch (command) {
    case undefined:
      return { command: 'usage' };
    case 'list':
      return { command, all: values.all ?? false };
    case 'create': {
      const planId = need(first, '<planId>');
      const input = { planId, ...planPatch(values) };
      try {
        validatePlanInput(input);
      } catch (err) {
        toCliError(err);
      }
      return { command, planId, input };
    }
    case 'update': {
      const planId = need(first, '<planId>');
      const patch = planPatch(values);
      // The flags' own values are checked now, before connecting: laid over placeholders for what they leave out.
      try {
        validatePlanInput({ name: planId, ...patch, price: { amountMinor: 0, currency: 'EUR', ...(patch['price'] as object | undefined) } });
      } catch (err) {
        toCliError(err);
      }
      return { command, planId, patch };
    }
    case 'retire':
      return { command, planId: need(first, '<planId>') };
    case 'subscribe': {
      const startsAt = time(values['starts-at'], '--starts-at');
      return { command, target: need(first, '<user id|email>'), planId: need(second, '<planId>'), ...(startsAt ? { startsAt } : {}), ...(values['request-id'] ? { requestId: values['request-id'] } : {}) };
    }
    case 'grant': {
      const expiresAt = time(values['expires-at'], '--expires-at');
      const bytes = parseByteSize(need(second, '<bytes>'), '<bytes>');
      return { command, target: need(first, '<user id|email>'), bytes, ...(expiresAt ? { expiresAt } : {}), ...(values['grant-id'] ? { grantId: values['grant-id'] } : {}) };
    }
    case 'disable':
      return { command, target: need(first, '<user id|email>'), reason: need(values.reason, '--reason') };
    case 'enable':
      return { command, target: need(first, '<user id|email>'), reason: values.reason ?? 'enabled by an operator' };
    default:
      throw new PlansCommandError(`unknown plans command "${command}" (one of ${COMMANDS.join(', ')}; \`relaygrid plans --help\` shows the usage)`);
  }
}

export async function runPlans(rt: Runtime, cmd: Exclude<PlansCommand, { command: 'usage' }>): Promise<void> {
  const handler = new CommandHandler(new EventStore(rt.nats, rt.names, rt.registry), { metrics: rt.metrics });
  const { catalogue, subscriptions } = new Plans({ handler, db: rt.db });
  const actor = { actor: `operator:${userInfo().username}` };
  const user = (target: string) => openIdentity(rt, handler).admin.resolveUser(target);
  try {
    switch (cmd.command) {
      case 'list': {
        const plans = await catalogue.list({ includeRetired: cmd.all });
        printTable(
          ['ID', 'NAME', 'ALLOWANCE', 'RESET', 'VALIDITY', 'PRICE', 'NEXT', 'STATUS'],
          plans.map((p) => [
            p.planId, p.name, p.allowanceBytes ?? 'unlimited', p.resetStrategy,
            p.validity.kind === 'none' ? 'none' : `${p.validity.days}d${p.validity.kind === 'on_hold' ? ` on hold (${p.validity.timeoutDays}d)` : ''}`,
            `${p.price.amountMinor} ${p.price.currency}`, p.nextPlanId ?? '-', p.retired ? 'retired' : 'on sale',
          ]),
        );
        return;
      }
      case 'create':
        await catalogue.create(cmd.input, actor);
        console.log(`created plan ${cmd.planId}`);
        return;
      case 'update': {
        const current = await catalogue.current(cmd.planId);
        const before = asInput(current.name, current.terms);
        const price = { ...(before['price'] as object), ...((cmd.patch['price'] as object | undefined) ?? {}) };
        await catalogue.update(cmd.planId, { ...before, ...cmd.patch, price }, actor);
        console.log(`updated plan ${cmd.planId} (subscribers take it at their next period)`);
        return;
      }
      case 'retire':
        await catalogue.retire(cmd.planId, actor);
        console.log(`retired plan ${cmd.planId}`);
        return;
      case 'subscribe': {
        const userId = await user(cmd.target);
        await subscriptions.start(userId, { planId: cmd.planId, ...(cmd.startsAt ? { startsAt: cmd.startsAt } : {}), ...(cmd.requestId ? { requestId: cmd.requestId } : {}) }, actor);
        console.log(`subscribed ${cmd.target} to ${cmd.planId}`);
        return;
      }
      case 'grant': {
        const userId = await user(cmd.target);
        const { grantId } = await subscriptions.grant(userId, { bytes: cmd.bytes, expiresAt: cmd.expiresAt, grantId: cmd.grantId }, actor);
        console.log(`granted ${cmd.bytes} bytes to ${cmd.target} (grant ${grantId})`);
        return;
      }
      case 'disable':
      case 'enable': {
        const userId = await user(cmd.target);
        await subscriptions[cmd.command](userId, cmd.reason, actor);
        console.log(`${cmd.command}d the subscription of ${cmd.target}`);
        return;
      }
    }
  } catch (err) {
    toCliError(err);
  }
}
