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

/** An integer with thousands separators (1,234,567). */
export function count(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return NONE;
  return Math.round(n).toLocaleString('en-US');
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
