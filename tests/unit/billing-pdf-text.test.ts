/** The invoice PDF's text helpers: WinAnsi-only text, calendar days in a zone, tax rates from basis points. */
import { describe, expect, it } from 'vitest';
import { dateInZone, percentOfBasisPoints, winAnsi } from '../../producers/billing/pdf-text.js';

describe('winAnsi', () => {
  it('keeps ASCII, Latin-1 and the WinAnsi extras as they are', () => {
    expect(winAnsi('Pro, 3 months (20%)')).toBe('Pro, 3 months (20%)');
    expect(winAnsi('Müller Straße, Ærø, façade, ¿qué? 5 €, “quoted” – dash … ™ Œ š Ÿ')).toBe('Müller Straße, Ærø, façade, ¿qué? 5 €, “quoted” – dash … ™ Œ š Ÿ');
  });

  it('replaces each character it cannot show with one ?', () => {
    expect(winAnsi('План Про')).toBe('???? ???');
    // An emoji is one code point but two UTF-16 units: still one '?'.
    expect(winAnsi('Pro ✨🚀')).toBe('Pro ??');
    expect(winAnsi('东京 Tokyo')).toBe('?? Tokyo');
    // Code points in 0x80-0x9F are C1 controls, not the WinAnsi glyphs at those bytes.
    expect(winAnsi('a\u0080b\u0000c')).toBe('a?b?c');
  });

  it('composes accents first, and turns tabs and line breaks into spaces', () => {
    expect(winAnsi('Cafe\u0301')).toBe('Café');
    expect(winAnsi('a\tb\nc\r\nd')).toBe('a b c  d');
  });
});

describe('dateInZone', () => {
  it('is the calendar day in the zone, not in UTC', () => {
    const instant = '2026-03-01T11:30:00Z';
    expect(dateInZone(instant, 'UTC')).toBe('2026-03-01');
    expect(dateInZone(instant, 'Pacific/Auckland')).toBe('2026-03-02');
    expect(dateInZone(new Date('2026-03-01T03:00:00Z'), 'America/Los_Angeles')).toBe('2026-02-28');
  });
});

describe('percentOfBasisPoints', () => {
  it('has two decimals, by integer arithmetic', () => {
    expect(percentOfBasisPoints(1900)).toBe('19.00');
    expect(percentOfBasisPoints(725)).toBe('7.25');
    expect(percentOfBasisPoints(5)).toBe('0.05');
    expect(percentOfBasisPoints(0)).toBe('0.00');
  });

  it('refuses what is not whole non-negative basis points', () => {
    expect(() => percentOfBasisPoints(19.5)).toThrow(RangeError);
    expect(() => percentOfBasisPoints(-1)).toThrow(RangeError);
  });
});
