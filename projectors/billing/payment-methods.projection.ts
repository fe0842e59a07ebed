/**
 * `payment_methods`: users' saved payment methods as the API lists them —
 * provider, brand, last four, expiry, which one is the default. Never the
 * token: only the log holds it (producers/billing/payment-methods.ts resolve).
 * The details are opened with the person's key and sealed again without the
 * token (producers/billing/payment-method-details.ts): forgetting the person
 * makes them unreadable here too; projected after that, they are null.
 *
 * A default change touches every method of its user (one row gains the flag,
 * the previous one loses it), so the batch folds per user: the live rows of
 * the users it names are read once, changed in order, and the changed ones
 * written in one statement.
 */
import type { Transaction } from 'kysely';
import type { StoredEvent } from '../../contracts/envelope.js';
import type { Database, PaymentMethodTable } from '../../schema/database.js';
import { sealForDisplay } from '../../producers/billing/payment-method-details.js';
import type { Projection } from '../runtime/projection.js';
import { upsertUnnest, type UnnestColumn } from '../runtime/unnest.js';

const COLUMNS: UnnestColumn<PaymentMethodTable>[] = [
  ...(['id', 'user_id', 'provider'] as const).map((name) => ({ name, arrayType: 'text[]', value: (r: PaymentMethodTable) => r[name] })),
  { name: 'details_sealed', arrayType: 'bytea[]', value: (r) => r.details_sealed },
  { name: 'is_default', arrayType: 'boolean[]', value: (r) => r.is_default },
  ...(['added_at', 'removed_at'] as const).map((name) => ({ name, arrayType: 'timestamptz[]', value: (r: PaymentMethodTable) => r[name] })),
  { name: 'last_seq', arrayType: 'bigint[]', value: (r) => r.last_seq },
];

const TYPES = new Set(['billing.PaymentMethodAdded', 'billing.PaymentMethodRemoved', 'billing.DefaultPaymentMethodChanged']);

/** The batch's rows: the live methods of its users, and which of them changed. */
class UserRows {
  private readonly rows = new Map<string, PaymentMethodTable>();
  private readonly changed = new Set<string>();

  constructor(
    stored: readonly PaymentMethodTable[],
    private readonly keys: ReadonlyMap<string, Buffer>,
  ) {
    for (const row of stored) this.rows.set(row.id, row);
  }

  set(row: PaymentMethodTable): void {
    this.rows.set(row.id, row);
    this.changed.add(row.id);
  }

  /** The default of `userId` is now `id` (or none): every live row of the user whose flag differs. */
  moveDefault(userId: string, id: string | null, seq: number): void {
    for (const row of this.rows.values()) {
      if (row.user_id !== userId || row.removed_at !== null || row.is_default === (row.id === id)) continue;
      this.set({ ...row, is_default: row.id === id, last_seq: seq });
    }
  }

  apply(event: StoredEvent): void {
    const seq = event.seq;
    switch (event.type) {
      case 'billing.PaymentMethodAdded': {
        const d = event.data;
        if (d.makeDefault) this.moveDefault(d.userId, null, seq);
        this.set({
          id: d.paymentMethodId,
          user_id: d.userId,
          provider: d.provider,
          details_sealed: sealForDisplay(this.keys.get(d.userId), d.userId, d.detailsSealed),
          is_default: d.makeDefault,
          added_at: d.addedAt,
          removed_at: null,
          last_seq: seq,
        });
        return;
      }
      case 'billing.PaymentMethodRemoved': {
        const row = this.rows.get(event.data.paymentMethodId);
        if (row) this.set({ ...row, is_default: false, removed_at: event.data.removedAt, last_seq: seq });
        return;
      }
      case 'billing.DefaultPaymentMethodChanged':
        this.moveDefault(event.data.userId, event.data.paymentMethodId, seq);
        return;
      default:
        return;
    }
  }

  written(): PaymentMethodTable[] {
    return [...this.changed].map((id) => this.rows.get(id)).filter((r) => r !== undefined);
  }
}

function userOf(event: StoredEvent): string | undefined {
  return TYPES.has(event.type) ? (event.data as { userId: string }).userId : undefined;
}

async function liveRows(trx: Transaction<Database>, users: string[]): Promise<PaymentMethodTable[]> {
  if (users.length === 0) return [];
  return trx.selectFrom('payment_methods').selectAll().where('user_id', 'in', users).where('removed_at', 'is', null).execute();
}

export const PAYMENT_METHODS_PROJECTOR = 'payment-methods';

export const paymentMethodsProjection: Projection = {
  name: PAYMENT_METHODS_PROJECTOR,
  context: 'billing',
  tables: ['payment_methods'],
  filter: (names) => names.aggregateSubjects('billing', 'payment-methods'),
  async apply(trx, events, ctx) {
    const users = [...new Set(events.map(userOf).filter((u) => u !== undefined))];
    const added = events.filter((e) => e.type === 'billing.PaymentMethodAdded').map(userOf).filter((u) => u !== undefined);
    const rows = new UserRows(await liveRows(trx, users), await ctx.keys.getMany(added, trx));
    for (const event of events) rows.apply(event);
    await upsertUnnest(trx, 'payment_methods', COLUMNS, rows.written(), ['id']);
  },
};
