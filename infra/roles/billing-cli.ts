/**
 * `relaygrid billing …`: the admin billing API's operations for operators at
 * a shell (docs/billing-operators.md): search orders and invoices, confirm a
 * manual payment, cancel an unpaid order, refund, revenue. Acts as
 * `operator:<unix user>`. Arguments are checked before anything connects; a
 * write prints the order once the read models show it, so the next command
 * sees it too.
 */
import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import type { Billing } from '../../producers/billing/billing.js';
import type { OrderView, Search } from '../../producers/billing/billing-queries.js';
import { INVOICE_STATUSES, type InvoiceView } from '../../producers/billing/invoice-view.js';
import { formatMoney } from '../../producers/billing/money.js';
import { ORDER_STATUSES } from '../../producers/billing/order.decider.js';
import { REFERENCE } from '../../producers/billing/payments.js';
import { KEY as REFUND_KEY } from '../../producers/billing/refunds.js';
import { HttpError } from '../../producers/api/errors.js';
import { DomainError } from '../../producers/decider.js';
import { CommandHandler } from '../../producers/event-store/command-handler.js';
import { EventStore } from '../../producers/event-store/event-store.js';
import { Plans } from '../../producers/plans/plans.js';
import { CheckpointWatcher } from '../../projectors/runtime/checkpoint-watcher.js';
import { projectedOrder } from '../../workers/billing/projected-order.js';
import type { Runtime } from '../runtime.js';
import { CliError } from '../cli/cli-error.js';
import { printTable } from '../cli/table.js';
import { openOperatorBilling } from './billing.js';

export const BILLING_USAGE = `usage: relaygrid billing <command>

  orders [--status S] [--user ID] [--limit N] [--json]   newest first; statuses: ${ORDER_STATUSES.join(', ')}
  order <orderId> [--json]
  confirm <orderId> --reference REF [--amount MINOR]   a manual payment arrived: the order is paid, invoiced and fulfilled
                                         (the same reference again changes nothing; --amount: minor units, default the total)
  cancel <orderId> [--reason TEXT]       cancel an unpaid order
  refund <orderId> [--amount MINOR] [--reason TEXT] [--key KEY]   refund (default: what is left), as a credit note on its invoice;
                                         the same --key again refunds once (without one, a key is made and printed)
  invoices [--user ID] [--number N] [--status S] [--json]   newest first; statuses: ${INVOICE_STATUSES.join(', ')}
  revenue --from YYYY-MM-DD --to YYYY-MM-DD [--json]   money in per local day and plan, [from, to)`;

export class BillingCommandError extends CliError {}

/** The write stands, its read model has not caught up: not an argument mistake. */
class ReadModelBehindError extends CliError {
  override readonly exitCode = 1;
}

const OPTIONS = {
  status: { type: 'string' },
  user: { type: 'string' },
  limit: { type: 'string' },
  number: { type: 'string' },
  reference: { type: 'string' },
  amount: { type: 'string' },
  reason: { type: 'string' },
  key: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export type BillingCommand =
  | { command: 'usage' }
  | { command: 'orders' | 'invoices'; search: Search; json: boolean }
  | { command: 'order'; orderId: string; json: boolean }
  | { command: 'confirm'; orderId: string; reference: string; amountMinor?: number }
  | { command: 'cancel'; orderId: string; reason: string }
  | { command: 'refund'; orderId: string; key: string; minted: boolean; amountMinor?: number; reason?: string }
  | { command: 'revenue'; from: string; to: string; json: boolean };

const COMMANDS = ['orders', 'order', 'confirm', 'cancel', 'refund', 'invoices', 'revenue'] as const;
const ORDER_ID = /^ord_[0-9a-f]{32}$/;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

function check<T extends string | undefined>(value: T, ok: (v: string) => boolean, what: string): T {
  if (value !== undefined && !ok(value)) throw new BillingCommandError(what);
  return value;
}

/** `--amount` in minor units (999 is 9.99 EUR), as the field the context takes. */
function amountOf(value: string | undefined, least: number): { amountMinor?: number } {
  if (value === undefined) return {};
  if (!/^\d{1,15}$/.test(value) || Number(value) < least) throw new BillingCommandError(`--amount: a whole number of minor units${least > 0 ? `, at least ${least}` : ''} (999 is 9.99 EUR)`);
  return { amountMinor: Number(value) };
}

export function parseBillingArgs(args: string[]): BillingCommand {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: OPTIONS });
  } catch (err) {
    throw new BillingCommandError(`${(err as Error).message}\n\n${BILLING_USAGE}`);
  }
  const { values: v, positionals } = parsed;
  const [command, first] = positionals;
  const orderId = () => {
    if (!first) throw new BillingCommandError(`<orderId>: missing\n\n${BILLING_USAGE}`);
    return check(first, (id) => ORDER_ID.test(id), `<orderId>: an order id, ord_ and 32 hex digits (\`relaygrid billing orders\` lists them)`);
  };
  const status = (statuses: readonly string[]) => check(v.status, (s) => statuses.includes(s), `--status: one of ${statuses.join(', ')}`);
  const user = check(v.user, (u) => u.length <= 64, '--user: a user id');
  const json = v.json ?? false;
  const reason = check(v.reason, (r) => r.length >= 1 && r.length <= 200, '--reason: 1-200 characters');
  switch (command) {
    case undefined:
      return { command: 'usage' };
    case 'orders': {
      const limit = check(v.limit, (l) => /^\d{1,3}$/.test(l) && Number(l) >= 1 && Number(l) <= 500, '--limit: a whole number from 1 to 500');
      return { command, search: { userId: user, status: status(ORDER_STATUSES), limit: limit === undefined ? 50 : Number(limit) }, json };
    }
    case 'order':
      return { command, orderId: orderId(), json };
    case 'confirm': {
      const id = orderId();
      if (v.reference === undefined) throw new BillingCommandError('--reference: missing (the transfer\'s or the transaction\'s reference)');
      const reference = check(v.reference, (r) => REFERENCE.test(r), '--reference: 1-128 printable ASCII characters');
      return { command, orderId: id, reference, ...amountOf(v.amount, 0) };
    }
    case 'cancel':
      return { command, orderId: orderId(), reason: reason ?? 'cancelled by an operator' };
    case 'refund': {
      const id = orderId();
      const key = check(v.key, (k) => REFUND_KEY.test(k), '--key: 1-255 printable ASCII characters, no spaces');
      return { command, orderId: id, key: key ?? randomUUID(), minted: key === undefined, ...amountOf(v.amount, 1), ...(reason ? { reason } : {}) };
    }
    case 'invoices':
      return { command, search: { userId: user, status: status(INVOICE_STATUSES), number: check(v.number, (n) => n.length <= 40, '--number: an invoice number'), limit: 50 }, json };
    case 'revenue': {
      const day = (value: string | undefined, flag: string) => {
        if (value === undefined) throw new BillingCommandError(`${flag}: missing (a local date, YYYY-MM-DD)`);
        return check(value, (d) => DAY.test(d), `${flag}: a local date, YYYY-MM-DD`);
      };
      const from = day(v.from, '--from');
      const to = day(v.to, '--to');
      if (from >= to) throw new BillingCommandError('--to: must be after --from');
      return { command, from, to, json };
    }
    default:
      throw new BillingCommandError(`unknown billing command "${command}" (one of ${COMMANDS.join(', ')}; \`relaygrid billing --help\` shows the usage)`);
  }
}

const money = (amountMinor: number, currency: string) => formatMoney({ amountMinor: BigInt(amountMinor), currency });
const printJson = (value: unknown) => console.log(JSON.stringify(value, null, 2));

function printOrders(orders: readonly OrderView[]): void {
  printTable(
    ['ID', 'STATUS', 'USER', 'PLAN', 'TOTAL', 'REFUNDED', 'PROVIDER', 'PLACED', 'INVOICE'],
    orders.map((o) => [o.id, o.status, o.userId, o.planId, money(o.totalMinor, o.currency), money(o.refundedMinor, o.currency), o.provider, o.placedAt, o.invoiceId ?? '-']),
  );
}

function printInvoices(invoices: readonly InvoiceView[]): void {
  printTable(
    ['NUMBER', 'STATUS', 'ID', 'ORDER', 'USER', 'TOTAL', 'CREDIT NOTES', 'CREATED'],
    invoices.map((i) => [i.number ?? '(draft)', i.status, i.id, i.orderId, i.userId, money(i.totalMinor, i.currency), i.creditNotes.map((n) => `${n.number} ${money(n.amountMinor, i.currency)}`).join(', ') || '-', i.createdAt]),
  );
}

/** One line about the order a write left, with its invoice's number when it has one. */
async function describe(billing: Billing, order: OrderView): Promise<string> {
  const invoice = order.invoiceId ? await billing.queries.invoice(order.invoiceId) : null;
  const refunded = order.refundedMinor > 0 ? `, ${money(order.refundedMinor, order.currency)} refunded` : '';
  return `order ${order.id}: ${order.status}, ${money(order.totalMinor, order.currency)}${refunded}${invoice?.number ? `, invoice ${invoice.number}` : ''}`;
}

function toCliError(err: unknown): never {
  if (err instanceof DomainError) throw new BillingCommandError(`${err.code}: ${err.message}`);
  if (err instanceof HttpError && err.code === 'read_model_behind') throw new ReadModelBehindError(`the write is recorded, but ${err.message} (\`relaygrid billing order …\` shows it once the projectors run)`);
  throw err;
}

export async function runBilling(rt: Runtime, cmd: Exclude<BillingCommand, { command: 'usage' }>): Promise<void> {
  const handler = new CommandHandler(new EventStore(rt.nats, rt.names, rt.registry), { metrics: rt.metrics });
  const billing = openOperatorBilling(rt, handler, new Plans({ handler, db: rt.db }));
  const watcher = new CheckpointWatcher(rt.config.databaseUrl, rt.db);
  const actor = { actor: `operator:${userInfo().username}` };
  const written = async (verb: string, orderId: string) => console.log(`${verb} ${await describe(billing, await projectedOrder(billing, { watcher }, orderId))}`);
  try {
    switch (cmd.command) {
      case 'orders': {
        const orders = await billing.queries.orders(cmd.search);
        return cmd.json ? printJson(orders) : printOrders(orders);
      }
      case 'order': {
        const order = await billing.queries.order(cmd.orderId);
        return cmd.json ? printJson(order) : printOrders([order]);
      }
      case 'confirm':
        await billing.payments.confirm(cmd.orderId, { reference: cmd.reference, amountMinor: cmd.amountMinor }, actor);
        return await written('confirmed', cmd.orderId);
      case 'cancel':
        await billing.payments.cancel(cmd.orderId, cmd.reason, actor);
        return await written('cancelled', cmd.orderId);
      case 'refund': {
        // Printed before the refund goes out: if this process dies half-way, the operator still has the key that makes a retry safe.
        if (cmd.minted) console.log(`refund key: ${cmd.key}, run again with --key ${cmd.key} to retry without refunding twice`);
        const { creditNoteId } = await billing.refunds.refund(cmd.orderId, cmd.key, { amountMinor: cmd.amountMinor, reason: cmd.reason }, actor);
        await written('refunded', cmd.orderId);
        const order = await billing.queries.order(cmd.orderId);
        const note = order.invoiceId ? (await billing.queries.invoice(order.invoiceId)).creditNotes.find((n) => n.id === creditNoteId) : undefined;
        if (note) console.log(`credit note ${note.number}: ${money(note.amountMinor, order.currency)}`);
        return;
      }
      case 'invoices': {
        const invoices = await billing.queries.invoices(cmd.search);
        return cmd.json ? printJson(invoices) : printInvoices(invoices);
      }
      case 'revenue': {
        const days = await billing.queries.revenueBetweenDays(cmd.from, cmd.to);
        if (cmd.json) return printJson({ timeZone: billing.timeZone, days });
        console.log(`revenue in ${billing.timeZone}, ${cmd.from} to ${cmd.to} (exclusive)`);
        return printTable(
          ['DAY', 'PLAN', 'ORDERS', 'GROSS', 'REFUNDED', 'NET'],
          days.map((d) => [d.day, d.planId, String(d.orders), money(d.grossMinor, d.currency), money(d.refundedMinor, d.currency), money(d.netMinor, d.currency)]),
        );
      }
    }
  } catch (err) {
    toCliError(err);
  } finally {
    await watcher.close();
  }
}
