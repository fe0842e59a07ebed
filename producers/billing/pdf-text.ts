/**
 * Text as the invoice PDF may print it. The PDF uses only the standard fonts
 * (Helvetica), which need no font files but can show only the WinAnsi
 * (Windows-1252) characters; pdfkit writes anything else as broken glyph codes.
 * So every string goes through `winAnsi` first, and dates are calendar days
 * in the customer's zone.
 */

/** The code points above Latin-1's range that WinAnsi has (its 0x80–0x9F block). */
const WIN_ANSI_EXTRA = new Set([
  0x20ac, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0x017d, 0x2018, 0x2019, 0x201c,
  0x201d, 0x2022, 0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x017e, 0x0178,
]);

function printable(codePoint: number): boolean {
  return (codePoint >= 0x20 && codePoint <= 0x7e) || (codePoint >= 0xa0 && codePoint <= 0xff) || WIN_ANSI_EXTRA.has(codePoint);
}

/**
 * `text` with every character the standard fonts cannot show replaced by one
 * `?` per character (code point, so an emoji is one `?`, not two); tabs and
 * line breaks become spaces, since layout is the PDF's business. NFC first, so
 * an `é` written as `e` + combining accent stays an `é`.
 */
export function winAnsi(text: string): string {
  let out = '';
  for (const char of text.normalize('NFC')) {
    const codePoint = char.codePointAt(0) ?? 0;
    if (printable(codePoint)) out += char;
    else if (char === '\t' || char === '\n' || char === '\r') out += ' ';
    else out += '?';
  }
  return out;
}

/** The calendar day `YYYY-MM-DD` of an instant in an IANA zone (what the customer's calendar said). */
export function dateInZone(instant: string | Date, timeZone: string): string {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).formatToParts(new Date(instant));
  const part = (type: Intl.DateTimeFormatPartTypes) => parts.find((p) => p.type === type)?.value ?? '';
  return `${part('year')}-${part('month')}-${part('day')}`;
}

/** `19.00` from 1900 basis points: integer arithmetic, two decimals always. */
export function percentOfBasisPoints(basisPoints: number): string {
  if (!Number.isSafeInteger(basisPoints) || basisPoints < 0) throw new RangeError(`tax rate must be whole non-negative basis points, got ${basisPoints}`);
  return `${Math.trunc(basisPoints / 100)}.${String(basisPoints % 100).padStart(2, '0')}`;
}
