/**
 * Scales and ticks for the SVG plots, pure: linear and log10 maps from data to pixels, "nice"
 * tick values (steps of 1, 2 or 5 times a power of ten), decade ticks with 2 and 5 in between
 * on short log ranges, and tick label formatting.
 */

export interface Scale {
  /** Data value to pixel. */
  (v: number): number;
  domain: [number, number];
  range: [number, number];
  log: boolean;
}

export function linearScale(domain: [number, number], range: [number, number]): Scale {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const k = d1 === d0 ? 0 : (r1 - r0) / (d1 - d0);
  const f = ((v: number) => r0 + (v - d0) * k) as Scale;
  f.domain = domain;
  f.range = range;
  f.log = false;
  return f;
}

export function logScale(domain: [number, number], range: [number, number]): Scale {
  if (!(domain[0] > 0 && domain[1] > 0)) throw new Error(`logScale: domain must be positive, got [${domain.join(', ')}]`);
  const l0 = Math.log10(domain[0]);
  const l1 = Math.log10(domain[1]);
  const [r0, r1] = range;
  const k = l1 === l0 ? 0 : (r1 - r0) / (l1 - l0);
  const f = ((v: number) => r0 + (Math.log10(v) - l0) * k) as Scale;
  f.domain = domain;
  f.range = range;
  f.log = true;
  return f;
}

/** A step of 1, 2 or 5 x 10^k giving about `count` intervals over `span`. */
export function niceStep(span: number, count = 5): number {
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const raw = span / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const m = norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10;
  return m * mag;
}

function decimalsOf(step: number): number {
  return Math.max(0, Math.min(10, -Math.floor(Math.log10(step) + 1e-9)));
}

function roundTo(v: number, decimals: number): number {
  return +v.toFixed(decimals);
}

/** Tick values within [min, max] at a nice step. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) return [min];
  const step = niceStep(max - min, count);
  const dec = decimalsOf(step) + 1;
  const out: number[] = [];
  for (let v = Math.ceil(min / step - 1e-9) * step; v <= max + step * 1e-9; v += step) out.push(roundTo(v, dec) === 0 ? 0 : roundTo(v, dec));
  return out;
}

/** Extends [min, max] outwards to multiples of a nice step (a degenerate range is widened). */
export function niceDomain(min: number, max: number, count = 5): [number, number] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  if (max === min) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= pad;
    max += pad;
  }
  const step = niceStep(max - min, count);
  const dec = decimalsOf(step) + 1;
  return [roundTo(Math.floor(min / step + 1e-9) * step, dec), roundTo(Math.ceil(max / step - 1e-9) * step, dec)];
}

/**
 * Log ticks: major ticks at powers of ten inside the domain; when fewer than three, also at 2 and
 * 5 times them. Minor ticks (unlabelled) at the other integer multiples.
 */
export function logTicks(min: number, max: number): { major: number[]; minor: number[] } {
  if (!(min > 0 && max > min)) return { major: [min], minor: [] };
  const k0 = Math.floor(Math.log10(min));
  const k1 = Math.ceil(Math.log10(max));
  const inside = (v: number) => v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9);
  const clean = (v: number) => +v.toPrecision(12);
  const decades: number[] = [];
  for (let k = k0; k <= k1; k++) decades.push(clean(10 ** k));
  let majorMult = [1];
  if (decades.filter(inside).length < 3) majorMult = [1, 2, 5];
  const major: number[] = [];
  const minor: number[] = [];
  for (const d of decades)
    for (let m = 1; m <= 9; m++) {
      const v = clean(d * m);
      if (!inside(v)) continue;
      (majorMult.includes(m) ? major : minor).push(v);
    }
  return { major, minor };
}

/** Tick label: fixed decimals fitting the step; thousands as k and millions as M. */
export function formatTick(v: number, step?: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6 && Number.isInteger(v / 1e5)) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4 && Number.isInteger(v / 100)) return `${+(v / 1e3).toPrecision(3)}k`;
  if (step !== undefined && step > 0) return v.toFixed(decimalsOf(step));
  return String(+v.toPrecision(4));
}
