/**
 * Display of estimates with intervals and of p-values, for the fine-tune, experiments and bias
 * probe pages. An undefined value (NaN, or null once it went through JSON) shows as `—`. Pure;
 * unit-tested.
 */
import { NONE } from './format';

type Value = number | null | undefined;
const num = (v: Value): v is number => typeof v === 'number' && Number.isFinite(v);

/** "0.615 [0.308, 0.923]"; the estimate alone when there is no interval; `—` when unknown. */
export function withCi(estimate: Value, lower?: Value, upper?: Value, digits = 3): string {
  if (!num(estimate)) return NONE;
  const e = estimate.toFixed(digits);
  return num(lower) && num(upper) ? `${e} [${lower.toFixed(digits)}, ${upper.toFixed(digits)}]` : e;
}

/** A proportion as a percentage with one decimal at most: 0.05 -> "5%", 0.125 -> "12.5%". */
export function percent(v: Value, digits = 1): string {
  if (!num(v)) return NONE;
  return `${+(v * 100).toFixed(digits)}%`;
}

/** A p-value: three significant digits, "< 0.001" below that. */
export function pValue(p: Value): string {
  if (!num(p)) return NONE;
  if (p < 0.001) return '< 0.001';
  return p.toPrecision(3);
}

/** A signed difference: "+0.051", "−0.051", "0.000". */
export function signed(v: Value, digits = 3): string {
  if (!num(v)) return NONE;
  const s = Math.abs(v).toFixed(digits);
  if (Number(s) === 0) return (0).toFixed(digits);
  return `${v > 0 ? '+' : '−'}${s}`;
}
