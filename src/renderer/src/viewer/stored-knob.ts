/**
 * The viewer's benchmark knobs in localStorage (`ctssl-viewer-*`: wire form, transport, background
 * requests, quiet input before vtk.js' warm-up): a stored value when it is one of the allowed ones,
 * else the default (also where storage is unavailable). DOM-light: localStorage only.
 */

/** localStorage `key` when it is one of `allowed`, else `fallback`. */
export function storedChoice<T extends string>(key: string, allowed: readonly T[], fallback: T): T {
  const s = stored(key);
  return s !== null && (allowed as readonly string[]).includes(s) ? (s as T) : fallback;
}

/** localStorage `key` when it is an integer in [min, max], else `fallback`. */
export function storedInt(key: string, min: number, max: number, fallback: number): number {
  const s = stored(key);
  const v = Number(s);
  return s && Number.isInteger(v) && v >= min && v <= max ? v : fallback;
}

function stored(key: string): string | null {
  try {
    // (through globalThis: absent in a worker, and this module is type-checked with the tests too)
    return (globalThis as { localStorage?: { getItem(k: string): string | null } }).localStorage?.getItem(key) ?? null;
  } catch {
    return null; // no storage: the default
  }
}
