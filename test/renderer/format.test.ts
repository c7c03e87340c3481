/** The display helpers every page shares: one date format, plurals, DICOM dates. */
import { describe, expect, it, vi } from 'vitest';
import { count, dateTime, dicomDate, plural } from '../../src/renderer/src/lib/format';

describe('count', () => {
  it("writes what toLocaleString('en-US') writes, without calling it (its first call sets up ICU: 60-140 ms before the Library's first rows)", () => {
    const values = [0, -0, 1, 9, 10, 999, 1000, 1001, 12_345, 999_999, 1_000_000, 1_234_567, 7290, 1_116_626_944, Number.MAX_SAFE_INTEGER, -1, -1000, -1_234_567, 0.4, 0.5, 1.5, 999.5, -0.4, -2.5, 123_456.789];
    const expected = values.map((v) => Math.round(v).toLocaleString('en-US'));
    const spy = vi.spyOn(Number.prototype, 'toLocaleString');
    try {
      expect(values.map((v) => count(v))).toEqual(expected);
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
    for (let v = -2100; v <= 2100; v += 7) expect(count(v * 997)).toBe((v * 997).toLocaleString('en-US'));
    expect(count(null)).toBe('—');
    expect(count(Number.NaN)).toBe('—');
    expect(count(Number.POSITIVE_INFINITY)).toBe('—');
  });
});

describe('plural', () => {
  it('says "1 slice" and "2 slices", with thousands separators and irregular plurals', () => {
    expect(plural(1, 'slice')).toBe('1 slice');
    expect(plural(2, 'slice')).toBe('2 slices');
    expect(plural(0, 'slice')).toBe('0 slices');
    expect(plural(1234, 'file')).toBe('1,234 files');
    expect(plural(1, 'study', 'studies')).toBe('1 study');
    expect(plural(3, 'study', 'studies')).toBe('3 studies');
    expect(plural(1, 'series', 'series')).toBe('1 series');
  });
  it('never shows a negative or missing count ("-1 encoders")', () => {
    expect(plural(-1, 'encoder')).toBe('— encoders');
    expect(plural(null, 'encoder')).toBe('— encoders');
    expect(plural(Number.NaN, 'encoder')).toBe('— encoders');
  });
});

describe('dateTime', () => {
  it('formats every instant as local "YYYY-MM-DD HH:mm"', () => {
    const d = new Date(2026, 0, 5, 9, 7, 59); // local time
    expect(dateTime(d)).toBe('2026-01-05 09:07');
    expect(dateTime(d.toISOString())).toBe('2026-01-05 09:07');
    expect(dateTime(d.getTime())).toBe('2026-01-05 09:07');
    expect(dateTime(new Date(2026, 11, 31, 23, 59))).toBe('2026-12-31 23:59');
  });
  it('shows a missing value as a dash and an unreadable one as given', () => {
    expect(dateTime(null)).toBe('—');
    expect(dateTime('')).toBe('—');
    expect(dateTime('yesterday-ish')).toBe('yesterday-ish');
  });
});

describe('dicomDate', () => {
  it('turns DA values into YYYY-MM-DD', () => {
    expect(dicomDate('20240131')).toBe('2024-01-31');
    expect(dicomDate('2024.01.31')).toBe('2024-01-31');
    expect(dicomDate('')).toBe('—');
    expect(dicomDate(null)).toBe('—');
    expect(dicomDate('2024')).toBe('2024');
  });
});
