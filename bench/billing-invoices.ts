/**
 * Invoice generation for N subscriptions renewing in the same hour (issue 14),
 * against a raw batched insert of the same rows, in the same run.
 *
 *   relaygrid: for each of N renewal orders (one currency, priced with the
 *              real price()), Invoicing.issue(order, period, timeZone) on a
 *              CommandHandler over the bench's runtime, BENCH_CONCURRENCY in
 *              flight (a sliding window): the draft (load + append), a
 *              number from DocumentNumbers (one
 *              series, `invoice-<year>-EUR`: the requests that arrive while
 *              an Assign is in flight share the next one), the finalization
 *              (append). The real invoices projector runs alongside from the
 *              start, as in production. Timed: until every issue() has
 *              answered (all finalized in the log), and until the `invoices`
 *              read model holds N finalized rows.
 *   raw:       the same N finalized rows (numbers 1..N), built in memory and
 *              inserted in batches of 1,000 (one multi-row insert each,
 *              autocommit) into `invoices_raw`, created `like invoices
 *              including all` (same columns and indexes, the unique
 *              (series, sequence) too); no NATS, no decider, no numbering.
 *              Run before and after the relaygrid run, the faster kept.
 *
 * Then the read model is checked: N rows, all finalized, sequences exactly
 * 1..N (no gap, no duplicate), each number the formatted sequence.
 *
 * Args/env: --count N or BENCH_COUNT (100000), --concurrency C or
 *           BENCH_CONCURRENCY (128), BENCH_QUIET_WAIT_MS (60000).
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import { uuidv7 } from '../contracts/ids.js';
import type { Runtime } from '../infra/runtime.js';
import { BillingDeps } from '../producers/billing/billing-deps.js';
import { Invoicing } from '../producers/billing/invoicing.js';
import { DocumentNumbers } from '../producers/billing/numbering.js';
import type { PlacedOrder } from '../producers/billing/order.decider.js';
import { price, type Priced } from '../producers/billing/pricing.js';
import { invoiceIdOf } from '../producers/billing/invoice.decider.js';
import { CommandHandler } from '../producers/event-store/command-handler.js';
import { EventStore } from '../producers/event-store/event-store.js';
import { addLocalMonths } from '../producers/plans/periods.js';
import { invoicesProjection } from '../projectors/billing/invoices.projection.js';
import { pricedColumns } from '../projectors/billing/priced-columns.js';
import type { InvoiceTable } from '../schema/database.js';
import { countingProjector } from './counting-projector.js';
import { cpuLine, cpuSince, envInt, fmt, inWindow, machine, rowCount, runMain, settledStart, sleep, withBench, type CpuUse } from './support.js';

/** `--name N` on the command line, else the environment variable, else the default. */
function arg(flag: string, env: string, fallback: number): number {
  const at = process.argv.indexOf(flag);
  if (at < 0) return envInt(env, fallback);
  const value = Number(process.argv[at + 1]?.replace(/_/g, ''));
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${flag} takes a positive whole number`);
  return value;
}

const COUNT = arg('--count', 'BENCH_COUNT', 100_000);
const CONCURRENCY = arg('--concurrency', 'BENCH_CONCURRENCY', 128);
const RAW_BATCH = 1000;
const RAW_TABLE = 'invoices_raw';
const TIME_ZONE = 'UTC';
const CURRENCY = 'EUR';

interface Period {
  start: Date;
  end: Date;
}

function renewals(count: number, priced: Priced, period: Period): PlacedOrder[] {
  return Array.from({ length: count }, () => ({
    orderId: `ord_${randomBytes(16).toString('hex')}`,
    userId: uuidv7(),
    kind: 'renewal' as const,
    planId: 'plan-bench',
    months: 1,
    priced,
    coupon: null,
    provider: 'manual',
    paymentMethodId: null,
    requestHash: 'renewal',
    period,
  }));
}

/** The finalized row the projector ends with for order i numbered `sequence` (draft and finalization at `at`). */
function finalizedRow(order: PlacedOrder, sequence: number, period: Period, at: Date, year: number): InvoiceTable {
  const series = `invoice-${year}-${CURRENCY}`;
  return {
    id: invoiceIdOf(order.orderId),
    order_id: order.orderId,
    user_id: order.userId,
    number: `${year}-${CURRENCY}-${String(sequence).padStart(6, '0')}`,
    series,
    sequence,
    status: 'finalized',
    ...pricedColumns(order.priced),
    credited_minor: 0,
    period_start: period.start,
    period_end: period.end,
    time_zone: TIME_ZONE,
    created_at: at,
    finalized_at: at,
    paid_at: null,
    voided_at: null,
    last_seq: sequence * 2,
  };
}

async function rawRun(rt: Runtime, orders: readonly PlacedOrder[], period: Period, year: number): Promise<number> {
  await sql`truncate ${sql.table(RAW_TABLE)}`.execute(rt.db);
  const start = performance.now();
  const at = new Date();
  for (let i = 0; i < orders.length; i += RAW_BATCH) {
    const rows = orders.slice(i, i + RAW_BATCH).map((o, j) => {
      const row = finalizedRow(o, i + j + 1, period, at, year);
      return { ...row, lines: JSON.stringify(row.lines) };
    });
    // The scratch table is not in the Database type: the rows are the invoices table's.
    await rt.db.insertInto(RAW_TABLE as 'invoices').values(rows as unknown as InvoiceTable[]).execute();
  }
  return (performance.now() - start) / 1000;
}

interface RelaygridRun {
  /** Until every issue() answered: all N finalized in the log. */
  finalized: number;
  /** Until the read model held N finalized rows. */
  projected: number;
  transactions: number;
  seriesAppends: number;
  conflicts: number;
  cpu: CpuUse;
}

async function finalizedRows(rt: Runtime): Promise<number> {
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from invoices where status = 'finalized'`.execute(rt.db);
  return rows[0]?.n ?? 0;
}

async function relaygridRun(rt: Runtime, invoicing: Invoicing, handler: CommandHandler, orders: readonly PlacedOrder[], period: Period): Promise<RelaygridRun> {
  const cpuStart = await settledStart(rt);
  const { projector, transactions } = countingProjector(rt, invoicesProjection);
  const start = performance.now();
  const running = projector.run();
  let done = 0;
  const progress = setInterval(() => console.log(`    … ${fmt.int(done)} issued after ${fmt.s((performance.now() - start) / 1000)} s`), 10_000);
  let finalized: number;
  try {
    await inWindow(orders.length, CONCURRENCY, async (i) => {
      await invoicing.issue(orders[i]!, period, TIME_ZONE);
      done++;
    });
    finalized = (performance.now() - start) / 1000;
    // Polled every 50 ms (the projector's checkpoint only moves on invoice subjects, so the stream's last sequence is no target).
    while ((await finalizedRows(rt)) < orders.length) {
      const failure = projector.status().failure;
      if (failure) throw new Error(`the invoices projector stopped: ${failure.error}`);
      await sleep(50);
    }
  } finally {
    clearInterval(progress);
  }
  const projected = (performance.now() - start) / 1000;
  const cpu = cpuSince(cpuStart, orders.length);
  await projector.close();
  await running;
  const info = await rt.nats.jsm.streams.info(rt.names.stream('billing'));
  const seriesAppends = info.state.messages - 2 * orders.length;
  return { finalized, projected, transactions: transactions(), seriesAppends, conflicts: handler.conflicts, cpu };
}

/** Every number 1..N exactly once, each row finalized with the number its sequence formats to. */
async function checkNumbers(rt: Runtime, count: number, year: number): Promise<void> {
  const { rows } = await sql<{ n: number; distinct_seq: number; min_seq: number; max_seq: number; finalized: number; well_numbered: number; series: number }>`
    select count(*)::int as n, count(distinct sequence)::int as distinct_seq, min(sequence)::int as min_seq, max(sequence)::int as max_seq,
           count(*) filter (where status = 'finalized')::int as finalized,
           count(*) filter (where number = ${`${year}-${CURRENCY}-`} || lpad(sequence::text, 6, '0'))::int as well_numbered,
           count(distinct series)::int as series
    from invoices
  `.execute(rt.db);
  const r = rows[0];
  const ok = r && r.n === count && r.distinct_seq === count && r.min_seq === 1 && r.max_seq === count && r.finalized === count && r.well_numbered === count && r.series === 1;
  if (!ok) throw new Error(`invoice numbers are not 1..${count} without gap or duplicate: ${JSON.stringify(r)}`);
  console.log(`  check: ${fmt.int(count)} invoices in the read model, all finalized, one series, sequences 1..${fmt.int(count)} (${fmt.int(r.distinct_seq)} distinct: no gap, no duplicate), numbers ${year}-${CURRENCY}-000001…`);
}

async function main(): Promise<void> {
  await withBench('bench-invoices', async ({ rt }) => {
    console.log(`machine: ${await machine(rt)}`);
    console.log(`${fmt.int(COUNT)} renewals in one hour, one currency (${CURRENCY}), ${CONCURRENCY} issue() calls in flight`);
    await sql`create table ${sql.table(RAW_TABLE)} (like invoices including all)`.execute(rt.db);
    const priced = price({ plan: { planId: 'plan-bench', name: 'Bench', price: { amountMinor: 999n, currency: CURRENCY } }, months: 1, tax: { country: 'DE', rateBasisPoints: 1900 } });
    // Every subscription renews within the next hour: one period start for all (their invoice contents do not depend on it).
    const hour = new Date(Math.ceil(Date.now() / 3_600_000) * 3_600_000);
    const period = { start: hour, end: addLocalMonths(hour, 1, TIME_ZONE) };
    const orders = renewals(COUNT, priced, period);
    const year = new Date().getUTCFullYear();

    const handler = new CommandHandler(new EventStore(rt.nats, rt.names, rt.registry), { metrics: rt.metrics });
    const deps = new BillingDeps(handler, rt.db);
    const invoicing = new Invoicing(deps, new DocumentNumbers(deps, TIME_ZONE));

    const raws: number[] = [];
    const rawLine = (seconds: number) => console.log(`  raw        ${fmt.int(COUNT)} rows  ${fmt.s(seconds).padStart(7)} s  ${fmt.int(COUNT / seconds).padStart(8)} rows/s`);
    console.log('measured');
    await settledStart(rt);
    raws.push(await rawRun(rt, orders, period, year));
    rawLine(raws[0]!);
    const rg = await relaygridRun(rt, invoicing, handler, orders, period);
    console.log(`  relaygrid  ${fmt.int(COUNT)} invoices  finalized in the log ${fmt.s(rg.finalized)} s (${fmt.int(COUNT / rg.finalized)} invoices/s), in the read model ${fmt.s(rg.projected)} s (${fmt.int(COUNT / rg.projected)}/s)`);
    console.log(`             ${fmt.int(rg.seriesAppends)} series appends (${fmt.s(COUNT / Math.max(1, rg.seriesAppends))} numbers each), ${rg.conflicts} conflicts, ${rg.transactions} projector transactions   ${cpuLine(rg.cpu)}`);
    await settledStart(rt);
    raws.push(await rawRun(rt, orders, period, year));
    rawLine(raws[1]!);
    if ((await rowCount(rt, RAW_TABLE)) !== COUNT) throw new Error(`${RAW_TABLE} does not hold ${COUNT} rows`);

    await checkNumbers(rt, COUNT, year);
    const raw = Math.min(...raws);
    console.log();
    console.log(`raw insert (best of 2) ${fmt.int(COUNT / raw)} rows/s`);
    console.log(`invoices/s finalized in the log ${fmt.int(COUNT / rg.finalized)}: ${fmt.pct(raw / rg.finalized)} of raw (${fmt.s(rg.finalized / raw)}× its time)`);
    console.log(`invoices/s in the read model    ${fmt.int(COUNT / rg.projected)}: ${fmt.pct(raw / rg.projected)} of raw (${fmt.s(rg.projected / raw)}× its time)`);
  });
}

runMain(main);
