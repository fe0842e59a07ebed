/**
 * The invoice PDF read back as text by poppler's `pdftotext -layout` (and
 * `pdfinfo` for pages and dates), line by line against the InvoiceView it
 * was rendered from. No services needed; poppler-utils must be installed —
 * the test fails, never skips, without it.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderCreditNotePdf, renderInvoicePdf, type BilledTo, type Seller } from '../../producers/billing/invoice-pdf.js';
import type { InvoiceLineView, InvoiceView } from '../../producers/billing/invoice-view.js';
import { formatMoney } from '../../producers/billing/money.js';
import { winAnsi } from '../../producers/billing/pdf-text.js';

const execFileAsync = promisify(execFile);

const seller: Seller = { name: 'Relaygrid GmbH', lines: ['Musterstrasse 1', '10115 Berlin', 'Germany'], taxId: 'DE123456789' };
const billedTo: BilledTo = { lines: ['Jane Doe', 'jane@example.org', 'Queen Street 1', 'Auckland 1010'] };
const erased: BilledTo = { lines: ['(personal data erased)'] };

// 11:30 UTC on 1 March is already 00:30 on 2 March in Auckland (NZDT, UTC+13).
const FINALIZED = '2026-03-01T11:30:00Z';
const PAID = '2026-03-01T12:00:00Z';
const LONG = 'Pro, 3 months: unlimited nodes in twelve countries, VLESS+REALITY and Trojan inbounds, two devices at a time, priority support and a description long enough to wrap over several lines of the table';

function line(kind: InvoiceLineView['kind'], description: string, quantity: number, unitAmountMinor: number): InvoiceLineView {
  return { kind, description, quantity, unitAmountMinor, amountMinor: quantity * unitAmountMinor };
}

/** An invoice whose sums are those of its lines, taxed at `taxRateBasisPoints` (rounded half up; amounts here are positive). */
function invoice(over: Partial<InvoiceView> & Pick<InvoiceView, 'currency' | 'lines'>): InvoiceView {
  const subtotalMinor = over.lines.reduce((sum, l) => sum + l.amountMinor, 0);
  const taxRateBasisPoints = over.taxRateBasisPoints ?? 0;
  const taxMinor = Math.floor((subtotalMinor * taxRateBasisPoints + 5000) / 10_000);
  return {
    id: 'inv_1',
    number: `2026-${over.currency}-000042`,
    status: 'paid',
    orderId: 'ord_7f3a',
    userId: 'usr_1',
    subtotalMinor,
    taxRateBasisPoints,
    taxCountry: null,
    taxMinor,
    totalMinor: subtotalMinor + taxMinor,
    periodStart: '2026-02-28T11:00:00Z',
    periodEnd: '2026-05-31T12:00:00Z',
    createdAt: '2026-03-01T11:00:00Z',
    finalizedAt: FINALIZED,
    paidAt: PAID,
    voidedAt: null,
    creditNotes: [],
    timeZone: 'Pacific/Auckland',
    ...over,
  };
}

const eur = invoice({
  currency: 'EUR',
  taxRateBasisPoints: 1900,
  taxCountry: 'DE',
  lines: [
    line('plan', LONG, 3, 999),
    line('proration', 'Proration: unused Basic, 12 days', 1, -1234),
    line('discount', 'Coupon SPRING (20%)', 1, -600),
    line('overage', 'Overage traffic, GiB', 12, 50),
    line('plan', 'Pro ✨ План', 1, 100),
  ],
  creditNotes: [{ id: 'cn_1', number: 'CN-2026-EUR-000001', amountMinor: 500, reason: 'Goodwill for the March outage', issuedAt: '2026-03-10T20:00:00Z' }],
});
const jpy = invoice({ currency: 'JPY', lines: [line('plan', 'Basic, 1 month', 1, 980), line('overage', 'Overage traffic, GiB', 7, 30)] });
const many = invoice({
  currency: 'EUR',
  taxRateBasisPoints: 700,
  lines: Array.from({ length: 60 }, (_, i) => line('overage', `Node ${String(i + 1).padStart(2, '0')} traffic, GiB`, i + 1, 25)),
});
const draft = invoice({ currency: 'EUR', number: null, status: 'draft', finalizedAt: null, paidAt: null, lines: [line('plan', 'Pro, 1 month', 1, 999)] });

const money = (inv: InvoiceView, amountMinor: number) => formatMoney({ amountMinor: BigInt(amountMinor), currency: inv.currency });

let dir = '';

/** Runs a poppler tool; without poppler-utils every test fails saying so (a skip would hide an untested PDF). */
async function poppler(tool: 'pdftotext' | 'pdfinfo', args: string[]): Promise<string> {
  try {
    return (await execFileAsync(tool, args, { timeout: 20_000 })).stdout;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${tool} is not installed: install the Debian package poppler-utils (CI does)`);
    throw err;
  }
}

async function fileOf(pdf: Buffer): Promise<string> {
  const file = path.join(dir, `${Math.random().toString(36).slice(2)}.pdf`);
  await writeFile(file, pdf);
  return file;
}

/** The PDF's text as pdftotext lays it out, one entry per text line (pages end with a form feed). */
async function textOf(pdf: Buffer): Promise<string[]> {
  return (await poppler('pdftotext', ['-layout', await fileOf(pdf), '-'])).split('\n');
}

/** Reads a PDF whose first text line is `title` and which contains every one of `expected`; its text lines, for more. */
async function expectDocument(pdf: Buffer, title: string, expected: string[]): Promise<string[]> {
  const text = await textOf(pdf);
  expect(cellsOf(text[0] ?? '')).toEqual([title]);
  const all = text.join('\n');
  for (const s of expected) expect(all).toContain(s);
  return text;
}

async function infoOf(pdf: Buffer): Promise<Record<string, string>> {
  const out = await poppler('pdfinfo', ['-isodates', await fileOf(pdf)]);
  return Object.fromEntries(out.split('\n').filter((l) => l.includes(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));
}

/** A text line's cells: what -layout separates by two or more spaces. */
const cellsOf = (text: string): string[] => text.trim().split(/\s{2,}/).filter((c) => c !== '');

const sameCells = (text: string | undefined, cells: string[]) => text !== undefined && JSON.stringify(cellsOf(text)) === JSON.stringify(cells);

/** The index of the first text line at or after `from` whose cells are exactly `cells`; fails the test if there is none. */
function findRow(text: string[], cells: string[], from = 0): number {
  const at = text.findIndex((t, i) => i >= from && sameCells(t, cells));
  expect(at, `no text line with cells ${JSON.stringify(cells)} after line ${from} in:\n${text.join('\n')}`).toBeGreaterThanOrEqual(0);
  return at;
}

/**
 * Checks every line of the invoice is in the table, in order: quantity, unit
 * price and amount on the same text line as the start of its description, the
 * rest of a wrapped description on the lines right below. Returns the text
 * line after the last row.
 */
function expectLines(text: string[], inv: InvoiceView): number {
  let cursor = 0;
  for (const l of inv.lines) {
    const numbers = [String(l.quantity), money(inv, l.unitAmountMinor), money(inv, l.amountMinor)];
    const expected = winAnsi(l.description).replace(/\s+/g, ' ');
    const at = text.findIndex((t, i) => {
      const cells = cellsOf(t);
      return i >= cursor && cells.length === 4 && JSON.stringify(cells.slice(1)) === JSON.stringify(numbers) && expected.startsWith(cells[0] ?? '\0');
    });
    expect(at, `no row for ${JSON.stringify(l)} after text line ${cursor} in:\n${text.join('\n')}`).toBeGreaterThanOrEqual(0);
    let description = cellsOf(text[at] ?? '')[0] ?? '';
    cursor = at + 1;
    // A wrapped description continues alone in its column on the next text lines.
    for (let next = cellsOf(text[cursor] ?? ''); next.length === 1 && description !== expected; next = cellsOf(text[cursor] ?? '')) {
      const joined = [`${description} ${next[0]}`, `${description}${next[0]}`].find((candidate) => expected.startsWith(candidate));
      if (joined === undefined) break;
      description = joined;
      cursor++;
    }
    expect(description).toBe(expected);
  }
  return cursor;
}

function expectTotals(text: string[], inv: InvoiceView, taxLabel: string, from: number): void {
  const subtotal = findRow(text, ['Subtotal', money(inv, inv.subtotalMinor)], from);
  const tax = findRow(text, [taxLabel, money(inv, inv.taxMinor)], subtotal + 1);
  findRow(text, ['Total', money(inv, inv.totalMinor)], tax + 1);
}

const TABLE_HEADER = ['Description', 'Qty', 'Unit price', 'Amount'];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'rg-invoice-pdf-'));
});

afterAll(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

describe('invoice PDF', () => {
  it('EUR with tax: title, parties, dates in the customer zone, every line, totals and the credit note', async () => {
    // The UTC date of these instants is a day earlier than Auckland's: the PDF shows Auckland's.
    expect([FINALIZED, PAID, eur.periodStart].map((instant) => instant?.slice(0, 10))).toEqual(['2026-03-01', '2026-03-01', '2026-02-28']);
    const text = await expectDocument(await renderInvoicePdf(eur, seller, billedTo), 'Invoice 2026-EUR-000042', [
      seller.name,
      ...seller.lines,
      'VAT ID: DE123456789',
      'Billed to',
      ...billedTo.lines,
      'Invoice date: 2026-03-02',
      'Paid on: 2026-03-02',
      'Service period: 2026-03-01 to 2026-06-01',
      'Order: ord_7f3a',
      'Status: PAID',
    ]);
    expect(text.join('\n')).not.toContain('2026-02-28');
    const header = findRow(text, TABLE_HEADER);
    const end = expectLines(text.slice(header + 1), eur) + header + 1;
    expect(text.some((t) => cellsOf(t)[0] === 'Pro ? ????')).toBe(true);
    expectTotals(text, eur, 'Tax DE 19.00%', end);
    const notes = findRow(text, ['Credit notes'], end);
    findRow(text, ['CN-2026-EUR-000001', '2026-03-11', 'Goodwill for the March outage', '5.00 EUR'], notes);
  });

  it('JPY has no decimals, and no tax country leaves the label bare', async () => {
    const text = await textOf(await renderInvoicePdf(jpy, seller, erased));
    expect(text.join('\n')).toContain('(personal data erased)');
    const end = expectLines(text, jpy);
    expect(money(jpy, jpy.totalMinor)).toBe('1190 JPY');
    expectTotals(text, jpy, 'Tax 0.00%', end);
    expect(text.join('\n')).not.toContain('Credit notes');
  });

  it('60 lines continue over pages, the header repeated on each, every line present', async () => {
    const pdf = await renderInvoicePdf(many, seller, billedTo);
    const pages = Number((await infoOf(pdf)).Pages);
    expect(pages).toBeGreaterThanOrEqual(2);
    const text = await textOf(pdf);
    const end = expectLines(text, many);
    expectTotals(text, many, 'Tax 7.00%', end);
    // Every page holding rows shows the header before its first row.
    const pageTexts = text.join('\n').split('\f').filter((p) => p.trim() !== '');
    expect(pageTexts).toHaveLength(pages);
    for (const page of pageTexts) {
      const lines = page.split('\n');
      const firstRow = lines.findIndex((t) => /^Node \d\d traffic, GiB$/.test(cellsOf(t)[0] ?? ''));
      if (firstRow >= 0) expect(lines.slice(0, firstRow).some((t) => sameCells(t, TABLE_HEADER))).toBe(true);
    }
    for (let page = 1; page <= pages; page++) expect(text.join('\n')).toContain(`Invoice 2026-EUR-000042 - page ${page} of ${pages}`);
  });

  it('a description taller than a page is split over pages, no word lost, the lines after it in place', async () => {
    const words = Array.from({ length: 900 }, (_, i) => `w${i}`);
    const runaway = invoice({ currency: 'EUR', lines: [line('plan', words.join(' '), 1, 999), line('overage', 'Overage traffic, GiB', 2, 50)] });
    const pdf = await renderInvoicePdf(runaway, seller, billedTo);
    expect(Number((await infoOf(pdf)).Pages)).toBeGreaterThanOrEqual(2);
    const text = await textOf(pdf);
    const first = cellsOf(text.find((t) => t.includes('w0 w1 w2')) ?? '');
    expect(first.slice(1)).toEqual(['1', '9.99 EUR', '9.99 EUR']);
    expect(first[0]).toMatch(/^w0 w1 w2\b/);
    expect(text.join(' ').match(/\bw\d+\b/g)).toEqual(words);
    const after = findRow(text, ['Overage traffic, GiB', '2', '0.50 EUR', '1.00 EUR']);
    expectTotals(text, runaway, 'Tax 0.00%', after + 1);
  });

  it('a draft says so, and is dated by its creation', async () => {
    const pdf = await renderInvoicePdf(draft, seller, billedTo);
    const text = await expectDocument(pdf, 'Draft invoice', ['DRAFT - not a valid invoice', 'Status: DRAFT', 'Invoice date: 2026-03-02']);
    expect(text.join('\n')).not.toContain('Paid on');
    expectLines(text, draft);
    expect((await infoOf(pdf)).CreationDate).toBe('2026-03-01T11:00:00Z');
  });

  it('a void invoice is marked void', async () => {
    const text = (await textOf(await renderInvoicePdf({ ...jpy, status: 'void', paidAt: null, voidedAt: '2026-03-04T12:00:00Z' }, seller, billedTo))).join('\n');
    expect(text).toContain('VOID - this invoice was cancelled on 2026-03-05');
    expect(text).toContain('Status: VOID');
    expect(text).toContain('Voided on: 2026-03-05');
  });

  it('is deterministic: the same invoice gives the same bytes, dated by the invoice, not by now', async () => {
    const first = await renderInvoicePdf(eur, seller, billedTo);
    // PDF dates have whole seconds: a second later, a "now" in the file would show.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const second = await renderInvoicePdf(structuredClone(eur), seller, billedTo);
    expect(second.equals(first)).toBe(true);
    const info = await infoOf(first);
    expect(info.CreationDate).toBe(FINALIZED);
    expect(info.ModDate).toBe(FINALIZED);
    expect(info.Title).toBe('Invoice 2026-EUR-000042');
  });
});

describe('credit note PDF', () => {
  it('names the note and its invoice, dated in the customer zone, with the amount credited', async () => {
    const note = eur.creditNotes[0]!;
    const pdf = await renderCreditNotePdf(eur, note, seller, billedTo);
    const text = await expectDocument(pdf, 'Credit note CN-2026-EUR-000001', ['Credit note date: 2026-03-11', 'Invoice: 2026-EUR-000042', 'Jane Doe']);
    findRow(text, ['Credit on invoice 2026-EUR-000042: Goodwill for the March outage', '5.00 EUR']);
    findRow(text, ['Total credited', '5.00 EUR']);
    expect((await renderCreditNotePdf(eur, note, seller, billedTo)).equals(pdf)).toBe(true);
    expect((await infoOf(pdf)).CreationDate).toBe('2026-03-10T20:00:00Z');
  });
});
