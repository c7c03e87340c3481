/**
 * Display formatting for numbers, durations and rates. Pure functions (no DOM), unit-tested in
 * test/renderer/format.test.ts.
 */

/** Placeholder shown for a missing value. */
export const NONE = '—';

/** A number with a fixed count of decimals, trailing zeros kept; `—` for null/NaN. */
export function fixed(v: number | null | undefined, digits = 2): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return NONE;
  return v.toFixed(digits);
}

/** A number with at most `digits` decimals and no trailing zeros (2.5, 0.703, 3). */
export function compact(v: number | null | undefined, digits = 3): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return NONE;
  return String(Number(v.toFixed(digits)));
}

/**
 * An integer with thousands separators (1,234,567): the same text as `toLocaleString('en-US')`,
 * grouped by hand, because the first call of toLocaleString in a page sets up the browser's number
 * formatting (ICU), 60-140 ms on the Library page's first start, which shows counts before its
 * first rows (bench/index-scale.ts).
 */
export function count(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return NONE;
  const r = Math.round(n);
  // Beyond 2^53 String() switches to exponent notation; those are never counts of ours.
  if (!Number.isSafeInteger(r)) return r.toLocaleString('en-US');
  const digits = String(Math.abs(r));
  let out = '';
  for (let end = digits.length; end > 0; end -= 3) out = digits.slice(Math.max(0, end - 3), end) + (out ? ',' + out : '');
  return (r < 0 || Object.is(r, -0) ? '-' : '') + out;
}

/** Seconds as "45 s", "3 min 05 s", "2 h 07 min"; `—` when unknown. */
export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return NONE;
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** Milliseconds as "85 ms" or "1.42 s". */
export function millis(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return NONE;
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** Files per second: one decimal below 10, whole numbers above. */
export function rate(perSecond: number | null | undefined): string {
  if (perSecond === null || perSecond === undefined || !Number.isFinite(perSecond) || perSecond <= 0) return NONE;
  return perSecond < 10 ? perSecond.toFixed(1) : count(perSecond);
}

/** "512 x 512" from columns and rows. */
export function matrix(columns: number | null, rows: number | null): string {
  if (columns === null && rows === null) return NONE;
  return `${columns ?? '?'} x ${rows ?? '?'}`;
}

/**
 * A count with its noun, singular for exactly one: "1 slice", "2 slices", "1,204 files", "0 runs".
 * `many` for irregular plurals ("1 series", "3 series"). A negative or missing count (never a
 * real count) shows as `—` rather than "-1 encoders".
 */
export function plural(n: number | null | undefined, one: string, many = `${one}s`): string {
  if (n === null || n === undefined || !Number.isFinite(n) || n < 0) return `${NONE} ${many}`;
  return `${count(n)} ${Math.round(n) === 1 ? one : many}`;
}

const pad2 = (n: number) => String(n).padStart(2, '0');

/**
 * The app's one date format: local time as "YYYY-MM-DD HH:mm" (sorts as it reads, unambiguous in
 * every locale). Accepts an ISO string, epoch milliseconds or a Date; an unreadable value is shown
 * as given (or `—` when missing).
 */
export function dateTime(v: string | number | Date | null | undefined): string {
  if (v === null || v === undefined || v === '') return NONE;
  const d = v instanceof Date ? v : new Date(v);
  if (Number.isNaN(d.getTime())) return String(v);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

/** A DICOM date (DA, "YYYYMMDD") as "YYYY-MM-DD"; `—` when missing, as given when malformed. */
export function dicomDate(da: string | null | undefined): string {
  const s = (da ?? '').trim();
  if (s === '') return NONE;
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(s) ?? /^(\d{4})\.(\d{2})\.(\d{2})$/.exec(s);
  return m ? `${m[1]}-${m[2]}-${m[3]}` : s;
}
