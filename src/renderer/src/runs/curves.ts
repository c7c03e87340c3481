/**
 * Metric curves of runs, kept outside reactive state: loaded once from runs.metrics, then grown
 * by live 'step' and 'eval' events. Plus the alignment uPlot needs (one x array shared by every
 * line, null where a line has no point). Pure; unit-tested.
 */
import type { RunMetrics } from '../../../shared/types';

export interface Curve {
  split: string;
  name: string;
  steps: number[];
  values: number[];
}

/** Curves of one run by "split/name". */
export type CurveSet = Map<string, Curve>;

export function curveKey(split: string, name: string): string {
  return `${split}/${name}`;
}

export function fromMetrics(m: RunMetrics): CurveSet {
  const out: CurveSet = new Map();
  for (const s of m.series) out.set(curveKey(s.split, s.name), { split: s.split, name: s.name, steps: [...s.steps], values: [...s.values] });
  return out;
}

/**
 * Adds the values of one step (a 'step' event's losses, or an 'eval' event's metrics). A step at or
 * before the last recorded one replaces the tail (a resumed run repeats steps after its checkpoint).
 */
export function appendPoint(set: CurveSet, split: string, step: number, values: Record<string, number>): void {
  for (const [name, v] of Object.entries(values)) {
    if (!Number.isFinite(v)) continue;
    const key = curveKey(split, name);
    let c = set.get(key);
    if (!c) {
      c = { split, name, steps: [], values: [] };
      set.set(key, c);
    }
    let n = c.steps.length;
    while (n > 0 && c.steps[n - 1] >= step) n--;
    if (n < c.steps.length) {
      c.steps.length = n;
      c.values.length = n;
    }
    c.steps.push(step);
    c.values.push(v);
  }
}

/** Merges curves loaded later (from the database) with points that live events added meanwhile. */
export function mergeCurves(loaded: CurveSet, live: CurveSet | undefined): CurveSet {
  if (!live) return loaded;
  for (const c of live.values()) {
    const target = loaded.get(curveKey(c.split, c.name));
    const last = target && target.steps.length ? target.steps[target.steps.length - 1] : -Infinity;
    const extra: Record<number, number> = {};
    c.steps.forEach((s, i) => {
      if (s > last) extra[s] = c.values[i];
    });
    for (const [s, v] of Object.entries(extra)) appendPoint(loaded, c.split, Number(s), { [c.name]: v });
  }
  return loaded;
}

/** Names of the metrics, losses first in a fixed order, then the rest alphabetically. */
const ORDER = ['loss', 'mse', 'maskedMse', 'vq', 'ssim', 'crossEntropy', 'diceLoss', 'bce', 'accuracy', 'auroc', 'dice', 'iou', 'meanSliceDice'];
export function metricNames(set: CurveSet | undefined, exclude: readonly string[] = ['slicesPerSecond']): string[] {
  if (!set) return [];
  const names = [...new Set([...set.values()].map((c) => c.name))].filter((n) => !exclude.includes(n));
  return names.sort((a, b) => {
    const ia = ORDER.indexOf(a);
    const ib = ORDER.indexOf(b);
    if (ia >= 0 || ib >= 0) return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
    return a.localeCompare(b);
  });
}

/** Human names of metrics. */
export const METRIC_LABELS: Record<string, string> = {
  loss: 'total loss',
  mse: 'MSE',
  maskedMse: 'masked-region MSE',
  vq: 'VQ loss',
  ssim: 'SSIM',
  crossEntropy: 'cross-entropy',
  accuracy: 'accuracy',
  auroc: 'AUROC',
  dice: 'Dice',
  iou: 'IoU',
  meanSliceDice: 'mean Dice per slice',
  bce: 'cross-entropy',
  diceLoss: 'Dice loss',
  slicesPerSecond: 'slices/s',
};

export function metricLabel(name: string): string {
  return METRIC_LABELS[name] ?? name;
}

/**
 * At most about `max` points of a line, for drawing: the points in order, split into max / 2
 * buckets of consecutive points, each bucket giving its lowest and its highest point (in step
 * order), so spikes survive; the first and last points are always kept. A chart redraws its lines
 * several times a second while a run trains: without this its cost grew with the run's length (a
 * run of thousands of fast steps left the page seconds behind its own clicks).
 */
export function decimate(steps: readonly number[], values: readonly number[], max: number): { steps: number[]; values: number[] } {
  const n = steps.length;
  if (n <= max || max < 4) return { steps: [...steps], values: [...values] };
  const buckets = Math.floor(max / 2) - 1;
  const size = (n - 2) / buckets;
  const outS: number[] = [steps[0]];
  const outV: number[] = [values[0]];
  for (let b = 0; b < buckets; b++) {
    const from = 1 + Math.floor(b * size);
    const to = Math.min(n - 1, 1 + Math.floor((b + 1) * size));
    let lo = -1;
    let hi = -1;
    for (let i = from; i < to; i++) {
      const v = values[i];
      if (!Number.isFinite(v)) continue;
      if (lo < 0 || v < values[lo]) lo = i;
      if (hi < 0 || v > values[hi]) hi = i;
    }
    if (lo < 0) continue;
    for (const i of lo === hi ? [lo] : lo < hi ? [lo, hi] : [hi, lo]) {
      outS.push(steps[i]);
      outV.push(values[i]);
    }
  }
  outS.push(steps[n - 1]);
  outV.push(values[n - 1]);
  return { steps: outS, values: outV };
}

/**
 * Aligns lines with different step grids on one x axis (the union of steps, ascending): uPlot's
 * data layout [xs, ys1, ys2, ...] with null where a line has no point at that step.
 */
export function alignLines(lines: readonly { steps: readonly number[]; values: readonly number[] }[]): (number | null)[][] {
  const xs = [...new Set(lines.flatMap((l) => l.steps))].sort((a, b) => a - b);
  const at = new Map<number, number>();
  xs.forEach((x, i) => at.set(x, i));
  const out: (number | null)[][] = [xs];
  for (const l of lines) {
    const ys = new Array<number | null>(xs.length).fill(null);
    l.steps.forEach((s, i) => (ys[at.get(s)!] = l.values[i]));
    out.push(ys);
  }
  return out;
}

/**
 * Labels of y-axis ticks with as many decimals as their spacing needs (uPlot's default rounds
 * 0.9995 and 1.0000 both to "1" on a flat curve): 0.25 -> 2 decimals, 0.0005 -> 4; large spacings
 * keep whole numbers. Tiny and huge magnitudes use exponent notation.
 */
export function tickLabels(splits: readonly number[]): string[] {
  const finite = splits.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return splits.map(() => '');
  let step = Infinity;
  for (let i = 1; i < finite.length; i++) step = Math.min(step, Math.abs(finite[i] - finite[i - 1]) || Infinity);
  const big = Math.max(...finite.map((v) => Math.abs(v)));
  const zero = (v: number) => Number.isFinite(step) && Math.abs(v) < step / 1e6;
  if (big !== 0 && (big >= 1e6 || big < 1e-4)) {
    const d = Number.isFinite(step) ? Math.min(6, Math.max(0, Math.ceil(Math.log10(big / step)))) : 2;
    return splits.map((v) => (!Number.isFinite(v) ? '' : zero(v) || v === 0 ? '0' : v.toExponential(d)));
  }
  // The fewest decimals that write the spacing exactly (0.25 -> 2, 0.00005 -> 5, 20 -> 0).
  let digits = 2;
  if (Number.isFinite(step)) {
    digits = 8;
    for (let d = 0; d <= 8; d++)
      if (Math.abs(step * 10 ** d - Math.round(step * 10 ** d)) < 1e-6) {
        digits = d;
        break;
      }
  }
  return splits.map((v) => (Number.isFinite(v) ? (zero(v) ? 0 : v).toFixed(digits) : ''));
}

/**
 * Width in px a chart's y axis needs so that no tick label is cut: the widest label, measured by
 * `measure` (the canvas's own text metrics in the chart), plus the tick and gaps; at least `min`.
 */
export function axisWidth(labels: readonly (string | null | undefined)[], measure: (s: string) => number, min = 40): number {
  let widest = 0;
  for (const l of labels) if (l) widest = Math.max(widest, measure(l));
  return Math.max(min, Math.ceil(widest) + 18);
}
