/**
 * `coupons`: discount coupons as the admin API lists them — terms, expiry,
 * the use count and whether they are disabled. `uses` is redemptions minus
 * releases: the decider appends a release only for an order holding a use,
 * and a redemption only for an order not holding one, so counting is exact
 * without keeping order ids here. Amounts travel as decimal strings into
 * `bigint[]` and are read back `::text` (exact past 2^53).
 */
import { sql, type Transaction } from 'kysely';
import type { StoredEvent } from '../../contracts/envelope.js';
import type { CouponTable, Database } from '../../schema/database.js';
import { foldRows, type RowStep } from '../runtime/batch-fold.js';
import type { Projection } from '../runtime/projection.js';
import { upsertUnnest, type UnnestColumn } from '../runtime/unnest.js';

type CouponRow = Omit<CouponTable, 'amount_off_minor'> & { amount_off_minor: string | null };

const column = (name: keyof CouponRow, arrayType: string): UnnestColumn<CouponRow> => ({ name, arrayType, value: (r) => r[name] });

const COLUMNS: UnnestColumn<CouponRow>[] = [
  ...(['code', 'kind', 'currency'] as const).map((n) => column(n, 'text[]')),
  ...(['percent_off', 'max_uses', 'uses'] as const).map((n) => column(n, 'integer[]')),
  column('amount_off_minor', 'bigint[]'),
  ...(['expires_at', 'disabled_at', 'created_at'] as const).map((n) => column(n, 'timestamptz[]')),
  column('last_seq', 'bigint[]'),
];

function stored(trx: Transaction<Database>) {
  return async (codes: string[]): Promise<[string, CouponRow][]> => {
    const { rows } = await sql<CouponRow>`select code, kind, percent_off, amount_off_minor::text as amount_off_minor, currency, expires_at, max_uses, uses, disabled_at, created_at, last_seq
      from coupons where code = any(${codes}::text[])`.execute(trx);
    return rows.map((r) => [r.code, r]);
  };
}

function step(event: StoredEvent): RowStep<CouponRow> {
  const seq = event.seq;
  const change = (code: string, update: (row: CouponRow) => Partial<CouponRow>): RowStep<CouponRow> => ({ id: code, update: (row) => ({ ...row, ...update(row), last_seq: seq }) });
  switch (event.type) {
    case 'billing.CouponCreated': {
      const d = event.data;
      const create: CouponRow = {
        code: d.code,
        kind: d.kind,
        percent_off: d.percentOff,
        amount_off_minor: d.amountOffMinor === null ? null : d.amountOffMinor.toString(),
        currency: d.currency,
        expires_at: d.expiresAt,
        max_uses: d.maxUses,
        uses: 0,
        disabled_at: null,
        created_at: d.createdAt,
        last_seq: seq,
      };
      return { id: d.code, create };
    }
    case 'billing.CouponRedeemed':
      return change(event.data.code, (r) => ({ uses: r.uses + 1 }));
    case 'billing.CouponRedemptionReleased':
      return change(event.data.code, (r) => ({ uses: Math.max(0, r.uses - 1) }));
    case 'billing.CouponDisabled': {
      const { disabledAt } = event.data;
      return change(event.data.code, () => ({ disabled_at: disabledAt }));
    }
    default:
      return undefined;
  }
}

export const COUPONS_PROJECTOR = 'coupons';

export const couponsProjection: Projection = {
  name: COUPONS_PROJECTOR,
  context: 'billing',
  tables: ['coupons'],
  filter: (names) => names.aggregateSubjects('billing', 'coupon'),
  async apply(trx, events) {
    const rows = await foldRows(events, step, stored(trx));
    await upsertUnnest(trx, 'coupons', COLUMNS, rows, ['code']);
  },
};
