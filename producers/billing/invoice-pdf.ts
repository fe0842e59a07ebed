/**
 * The invoice (and credit note) as a PDF a person reads and an accountant
 * files. pdfkit with the standard Helvetica fonts only: no font files to ship,
 * at the price of WinAnsi text (pdf-text.ts replaces what it cannot show).
 *
 * Deterministic: the document's dates (and so pdfkit's file ID, which hashes
 * them) are the invoice's own, never "now", so the same invoice always gives
 * the same bytes — a re-download is byte-identical to what was mailed.
 *
 * Personal data arrives already unsealed by the caller (`BilledTo`) and goes
 * only into the returned bytes: nothing here logs.
 */
import PDFDocument from 'pdfkit';
import { formatMoney } from './money.js';
import { dateInZone, percentOfBasisPoints, winAnsi } from './pdf-text.js';
import type { CreditNoteView, InvoiceStatus, InvoiceView } from './invoice-view.js';

export interface Seller {
  name: string;
  lines: string[];
  taxId: string | null;
}

/** The customer's name, email and address lines as unsealed by the caller; `['(personal data erased)']` for a forgotten person. */
export interface BilledTo {
  lines: string[];
}

type Doc = PDFKit.PDFDocument;
type Align = 'left' | 'right';

// A4 in points. The bottom margin is small so the footer can sit below the
// content area without pdfkit starting a page for it; content stops at CONTENT_BOTTOM.
const PAGE_WIDTH = 595.28;
const PAGE_HEIGHT = 841.89;
const LEFT = 50;
const RIGHT = PAGE_WIDTH - 50;
const TOP = 50;
const CONTENT_BOTTOM = PAGE_HEIGHT - 70;
const FOOTER_Y = PAGE_HEIGHT - 45;
const BODY_SIZE = 10;
const ROW_GAP = 4;
const RIGHT_COLUMN_X = 320;

interface Column {
  header: string;
  x: number;
  width: number;
  align: Align;
}

const AMOUNT_COLUMN: Column = { header: 'Amount', x: 450, width: RIGHT - 450, align: 'right' };

const DESCRIPTION_COLUMN: Column = { header: 'Description', x: LEFT, width: 250, align: 'left' };

const LINE_COLUMNS: Column[] = [
  DESCRIPTION_COLUMN,
  { header: 'Qty', x: 305, width: 45, align: 'right' },
  { header: 'Unit price', x: 355, width: 90, align: 'right' },
  AMOUNT_COLUMN,
];

const CREDIT_NOTE_COLUMNS: Column[] = [
  { header: 'Credit note', x: LEFT, width: 140, align: 'left' },
  { header: 'Date', x: 195, width: 70, align: 'left' },
  { header: 'Reason', x: 270, width: 175, align: 'left' },
  AMOUNT_COLUMN,
];

interface Style {
  bold?: boolean;
  size?: number;
  color?: string;
}

/** A pdfkit document and the cursor we lay out with: every string is sanitised here, once. */
class Sheet {
  y = TOP;

  constructor(readonly doc: Doc) {}

  private style({ bold = false, size = BODY_SIZE, color = 'black' }: Style): Doc {
    return this.doc.font(bold ? 'Helvetica-Bold' : 'Helvetica').fontSize(size).fillColor(color);
  }

  /** Height `text` takes wrapped to `width`. */
  measure(text: string, width: number, style: Style = {}): number {
    return text === '' ? 0 : this.style(style).heightOfString(winAnsi(text), { width });
  }

  /** Writes `text` at (x, y) wrapped to `width`; returns its height. Does not move the cursor. */
  put(text: string, x: number, y: number, width: number, align: Align = 'left', style: Style = {}): number {
    if (text === '') return 0;
    const height = this.measure(text, width, style);
    this.style(style).text(winAnsi(text), x, y, { width, align });
    return height;
  }

  /** Lines stacked at `x` from the cursor; returns where they end. Does not move the cursor. */
  stack(x: number, width: number, lines: { text: string; style?: Style }[]): number {
    let y = this.y;
    for (const line of lines) y += this.put(line.text, x, y, width, 'left', line.style);
    return y;
  }

  /** A whole-width line of text at the cursor, which moves below it. */
  line(text: string, style: Style = {}): void {
    this.y += this.put(text, LEFT, this.y, RIGHT - LEFT, 'left', style);
  }

  gap(points: number): void {
    this.y += points;
  }

  rule(): void {
    this.doc.moveTo(LEFT, this.y).lineTo(RIGHT, this.y).lineWidth(0.5).strokeColor('#888888').stroke();
  }

  /** Height left on this page. */
  room(): number {
    return CONTENT_BOTTOM - this.y;
  }

  newPage(): void {
    this.doc.addPage();
    this.y = TOP;
  }

  /** Starts a new page unless `height` still fits on this one. */
  ensure(height: number): void {
    if (height > this.room()) this.newPage();
  }

  /**
   * `text` cut into the longest start that fits `height` wrapped to `width`
   * (at a space when there is one) and the rest; the rest is '' when all fits.
   */
  split(text: string, width: number, height: number): [head: string, rest: string] {
    if (this.measure(text, width) <= height) return [text, ''];
    let fits = 0;
    let tooLong = text.length;
    while (tooLong - fits > 1) {
      const middle = Math.floor((fits + tooLong) / 2);
      if (this.measure(text.slice(0, middle), width) <= height) fits = middle;
      else tooLong = middle;
    }
    const space = text.lastIndexOf(' ', fits);
    const cut = space > 0 ? space : fits;
    return [text.slice(0, cut).trimEnd(), text.slice(cut).trimStart()];
  }
}

/** A table whose header is repeated on every page it continues on; cells wrap within their column. */
function table(sheet: Sheet, columns: Column[], rows: string[][]): void {
  const header = (): void => {
    const height = Math.max(...columns.map((c) => sheet.put(c.header, c.x, sheet.y, c.width, c.align, { bold: true })));
    sheet.gap(height + 2);
    sheet.rule();
    sheet.gap(ROW_GAP);
  };
  const headerHeight = Math.max(...columns.map((c) => sheet.measure(c.header, c.width, { bold: true }))) + 2 + ROW_GAP;
  const pageRoom = CONTENT_BOTTOM - TOP - headerHeight;
  const heightOf = (row: string[]): number => Math.max(...row.map((cell, i) => sheet.measure(cell, columns[i]?.width ?? 0)));
  const draw = (row: string[]): void => {
    row.forEach((cell, i) => {
      const column = columns[i];
      if (column) sheet.put(cell, column.x, sheet.y, column.width, column.align);
    });
    sheet.gap(heightOf(row) + ROW_GAP);
  };
  const nextPage = (): void => {
    sheet.newPage();
    header();
  };
  // The header never sits alone at a page's foot: it moves along with (the start of) the first row.
  sheet.ensure(headerHeight + Math.min(rows[0] ? heightOf(rows[0]) : 0, 60));
  header();
  for (const row of rows) {
    const height = heightOf(row);
    if (height > sheet.room()) {
      if (height <= pageRoom) nextPage();
      else {
        // Taller than a page (a runaway description): split it at what fits, continue on the next pages.
        let rest = row;
        while (heightOf(rest) > sheet.room()) {
          const parts = rest.map((cell, i) => sheet.split(cell, columns[i]?.width ?? 0, sheet.room()));
          if (parts.some(([head]) => head !== '')) draw(parts.map(([head]) => head));
          rest = parts.map(([, tail]) => tail);
          nextPage();
        }
        draw(rest);
        continue;
      }
    }
    draw(row);
  }
}

/** Label and amount pairs under a table, right-aligned in the amount column; the last one bold. */
function totals(sheet: Sheet, rows: [label: string, amount: string][]): void {
  const labelX = RIGHT_COLUMN_X;
  const labelWidth = AMOUNT_COLUMN.x - labelX - 5;
  const heights = rows.map(([label, amount]) => Math.max(sheet.measure(label, labelWidth, { bold: true }), sheet.measure(amount, AMOUNT_COLUMN.width, { bold: true })));
  sheet.ensure(heights.reduce((a, b) => a + b + ROW_GAP, 0));
  rows.forEach(([label, amount], i) => {
    const style = { bold: i === rows.length - 1 };
    sheet.put(label, labelX, sheet.y, labelWidth, 'left', style);
    sheet.put(amount, AMOUNT_COLUMN.x, sheet.y, AMOUNT_COLUMN.width, 'right', style);
    sheet.gap((heights[i] ?? 0) + ROW_GAP);
  });
}

interface Heading {
  title: string;
  /** A boxed warning under the title (drafts, void invoices). */
  banner: string | null;
  seller: Seller;
  billedTo: BilledTo;
  /** `Label: value` lines beside the seller. */
  facts: string[];
}

/** Title, banner, seller beside the facts (dates, order, status), then who is billed. */
function heading(sheet: Sheet, h: Heading): void {
  sheet.line(h.title, { bold: true, size: 18 });
  sheet.gap(8);
  if (h.banner !== null) {
    const height = sheet.measure(h.banner, RIGHT - LEFT - 16, { bold: true, size: 12 });
    sheet.doc.rect(LEFT, sheet.y, RIGHT - LEFT, height + 12).lineWidth(1.5).strokeColor('#cc0000').stroke();
    sheet.put(h.banner, LEFT + 8, sheet.y + 6, RIGHT - LEFT - 16, 'left', { bold: true, size: 12, color: '#cc0000' });
    sheet.gap(height + 24);
  }
  const sellerLines = [
    { text: 'From', style: { bold: true } },
    { text: h.seller.name, style: { bold: true } },
    ...h.seller.lines.map((text) => ({ text })),
    ...(h.seller.taxId === null ? [] : [{ text: `VAT ID: ${h.seller.taxId}` }]),
  ];
  const sellerEnd = sheet.stack(LEFT, RIGHT_COLUMN_X - LEFT - 20, sellerLines);
  const factsEnd = sheet.stack(RIGHT_COLUMN_X, RIGHT - RIGHT_COLUMN_X, h.facts.map((text) => ({ text })));
  sheet.y = Math.max(sellerEnd, factsEnd) + 14;
  sheet.y = sheet.stack(LEFT, RIGHT_COLUMN_X - LEFT - 20, [{ text: 'Billed to', style: { bold: true } }, ...h.billedTo.lines.map((text) => ({ text }))]);
  sheet.gap(20);
}

/** A document dated `at` (its info dates, so its bytes depend on the invoice only) and the Buffer it ends as. */
async function render(title: string, at: string, draw: (sheet: Sheet) => void): Promise<Buffer> {
  const date = new Date(at);
  const doc = new PDFDocument({
    size: [PAGE_WIDTH, PAGE_HEIGHT],
    margins: { top: TOP, left: LEFT, right: PAGE_WIDTH - RIGHT, bottom: 20 },
    bufferPages: true,
    info: { Title: title, Creator: 'Relaygrid', Producer: 'Relaygrid', CreationDate: date, ModDate: date },
  });
  const bytes = new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    doc.on('data', (chunk: Buffer) => chunks.push(chunk));
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });
  const sheet = new Sheet(doc);
  draw(sheet);
  // Page numbers once the page count is known (bufferPages keeps every page open until now).
  const { start, count } = doc.bufferedPageRange();
  for (let page = start; page < start + count; page++) {
    doc.switchToPage(page);
    sheet.put(`${title} - page ${page - start + 1} of ${count}`, LEFT, FOOTER_Y, RIGHT - LEFT, 'left', { size: 8, color: '#666666' });
  }
  doc.flushPages();
  doc.end();
  return bytes;
}

const STATUS_LABEL: Record<InvoiceStatus, string> = { draft: 'DRAFT', finalized: 'FINALIZED', paid: 'PAID', void: 'VOID' };

function invoiceTitle(invoice: InvoiceView): string {
  return invoice.number === null ? 'Draft invoice' : `Invoice ${invoice.number}`;
}

function servicePeriod(invoice: InvoiceView): string | null {
  const day = (instant: string) => dateInZone(instant, invoice.timeZone);
  const { periodStart: start, periodEnd: end } = invoice;
  if (start !== null && end !== null) return `Service period: ${day(start)} to ${day(end)}`;
  if (start !== null) return `Service period: from ${day(start)}`;
  if (end !== null) return `Service period: until ${day(end)}`;
  return null;
}

function taxLabel(invoice: InvoiceView): string {
  const country = invoice.taxCountry === null ? '' : ` ${invoice.taxCountry}`;
  return `Tax${country} ${percentOfBasisPoints(invoice.taxRateBasisPoints)}%`;
}

function invoiceBanner(invoice: InvoiceView): string | null {
  if (invoice.status === 'draft') return 'DRAFT - not a valid invoice: it has no number until it is finalized.';
  if (invoice.status === 'void') return `VOID - this invoice was cancelled${invoice.voidedAt === null ? '' : ` on ${dateInZone(invoice.voidedAt, invoice.timeZone)}`} and is not payable.`;
  return null;
}

export function renderInvoicePdf(invoice: InvoiceView, seller: Seller, billedTo: BilledTo): Promise<Buffer> {
  const money = (amountMinor: number) => formatMoney({ amountMinor: BigInt(amountMinor), currency: invoice.currency });
  const day = (instant: string) => dateInZone(instant, invoice.timeZone);
  const title = invoiceTitle(invoice);
  const dated = invoice.finalizedAt ?? invoice.createdAt;
  const facts = [
    `Invoice date: ${day(dated)}`,
    ...(invoice.paidAt === null ? [] : [`Paid on: ${day(invoice.paidAt)}`]),
    ...(invoice.voidedAt === null ? [] : [`Voided on: ${day(invoice.voidedAt)}`]),
    ...[servicePeriod(invoice)].filter((line): line is string => line !== null),
    `Order: ${invoice.orderId}`,
    `Status: ${STATUS_LABEL[invoice.status]}`,
  ];
  return render(title, dated, (sheet) => {
    heading(sheet, { title, banner: invoiceBanner(invoice), seller, billedTo, facts });
    table(
      sheet,
      LINE_COLUMNS,
      invoice.lines.map((l) => [l.description, String(l.quantity), money(l.unitAmountMinor), money(l.amountMinor)]),
    );
    sheet.gap(6);
    totals(sheet, [
      ['Subtotal', money(invoice.subtotalMinor)],
      [taxLabel(invoice), money(invoice.taxMinor)],
      ['Total', money(invoice.totalMinor)],
    ]);
    if (invoice.creditNotes.length > 0) {
      sheet.gap(16);
      sheet.ensure(40);
      sheet.line('Credit notes', { bold: true });
      sheet.gap(4);
      table(
        sheet,
        CREDIT_NOTE_COLUMNS,
        invoice.creditNotes.map((n) => [n.number, day(n.issuedAt), n.reason, money(n.amountMinor)]),
      );
    }
  });
}

export function renderCreditNotePdf(invoice: InvoiceView, note: CreditNoteView, seller: Seller, billedTo: BilledTo): Promise<Buffer> {
  const money = (amountMinor: number) => formatMoney({ amountMinor: BigInt(amountMinor), currency: invoice.currency });
  const day = (instant: string) => dateInZone(instant, invoice.timeZone);
  const title = `Credit note ${note.number}`;
  const invoiceName = invoice.number ?? '(draft)';
  const facts = [
    `Credit note date: ${day(note.issuedAt)}`,
    `Invoice: ${invoiceName}`,
    `Invoice date: ${day(invoice.finalizedAt ?? invoice.createdAt)}`,
    `Order: ${invoice.orderId}`,
  ];
  return render(title, note.issuedAt, (sheet) => {
    heading(sheet, { title, banner: null, seller, billedTo, facts });
    table(sheet, [{ ...DESCRIPTION_COLUMN, width: AMOUNT_COLUMN.x - LEFT - 10 }, AMOUNT_COLUMN], [[`Credit on invoice ${invoiceName}: ${note.reason}`, money(note.amountMinor)]]);
    sheet.gap(6);
    totals(sheet, [
      [`Invoice total`, money(invoice.totalMinor)],
      ['Total credited', money(note.amountMinor)],
    ]);
  });
}
