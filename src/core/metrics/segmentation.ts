/**
 * Segmentation metrics for the nodule U-Net, pure: Dice and IoU per slice and aggregated, 3D
 * connected components (6, 18 or 26-connectivity), per-nodule Dice, and the iterations a
 * (smoothed) metric curve needs to reach a level (the paper's "learns twice as fast").
 *
 * Masks are flat arrays. A predicted voxel is foreground when pred > threshold (default 0.5, so
 * probabilities and 0/1 masks both work); a ground-truth voxel when target > 0. Volumes are laid
 * out x fastest, then y, then z: index = x + nx * (y + ny * z), so each slice is a contiguous
 * block of nx * ny values.
 *
 * Empty-empty convention: a slice (or image) where both prediction and ground truth are empty has
 * no defined Dice. With emptyEmpty 'exclude' (the default, like MONAI's ignore_empty) it is left out
 * of the mean over slices (its Dice is NaN); with 'one' it scores 1. A slice with an empty ground
 * truth but a non-empty prediction always scores 0. Micro (pooled) Dice over all voxels is
 * unaffected by the convention.
 */
import { checkArray, checkSameLength } from './stats';

export type EmptyConvention = 'exclude' | 'one';

export interface MaskOptions {
  /** Prediction is foreground where pred > threshold (default 0.5). */
  threshold?: number;
}

/** Overlap counts of one image or volume. */
export interface OverlapCounts {
  /** Foreground in both. */
  tp: number;
  /** Predicted foreground, ground-truth background. */
  fp: number;
  /** Ground-truth foreground, predicted background. */
  fn: number;
}

export function overlapCounts(pred: ArrayLike<number>, target: ArrayLike<number>, opts: MaskOptions = {}): OverlapCounts {
  checkSameLength('overlapCounts', 'pred', pred, 'target', target);
  return countRange(pred, target, 0, pred.length, opts.threshold ?? 0.5);
}

function countRange(pred: ArrayLike<number>, target: ArrayLike<number>, start: number, end: number, threshold: number): OverlapCounts {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = start; i < end; i++) {
    const p = pred[i] > threshold;
    const t = target[i] > 0;
    if (p && t) tp++;
    else if (p) fp++;
    else if (t) fn++;
  }
  return { tp, fp, fn };
}

/** Dice = 2 TP / (2 TP + FP + FN); both empty: NaN ('exclude') or 1 ('one'). */
export function diceFromCounts(c: OverlapCounts, emptyEmpty: EmptyConvention = 'exclude'): number {
  const d = 2 * c.tp + c.fp + c.fn;
  return d > 0 ? (2 * c.tp) / d : emptyEmpty === 'one' ? 1 : NaN;
}

/** IoU (Jaccard) = TP / (TP + FP + FN); both empty: NaN ('exclude') or 1 ('one'). */
export function iouFromCounts(c: OverlapCounts, emptyEmpty: EmptyConvention = 'exclude'): number {
  const d = c.tp + c.fp + c.fn;
  return d > 0 ? c.tp / d : emptyEmpty === 'one' ? 1 : NaN;
}

/** Dice of one image or volume. */
export function dice(pred: ArrayLike<number>, target: ArrayLike<number>, opts: MaskOptions & { emptyEmpty?: EmptyConvention } = {}): number {
  checkSameLength('dice', 'pred', pred, 'target', target);
  return diceFromCounts(countRange(pred, target, 0, pred.length, opts.threshold ?? 0.5), opts.emptyEmpty);
}

/** IoU of one image or volume. */
export function iou(pred: ArrayLike<number>, target: ArrayLike<number>, opts: MaskOptions & { emptyEmpty?: EmptyConvention } = {}): number {
  checkSameLength('iou', 'pred', pred, 'target', target);
  return iouFromCounts(countRange(pred, target, 0, pred.length, opts.threshold ?? 0.5), opts.emptyEmpty);
}

/** Overlap counts of each slice of a stack (sliceSize values per slice, slices contiguous). */
export function perSliceCounts(pred: ArrayLike<number>, target: ArrayLike<number>, sliceSize: number, opts: MaskOptions = {}): OverlapCounts[] {
  checkSameLength('perSliceCounts', 'pred', pred, 'target', target);
  if (!(Number.isInteger(sliceSize) && sliceSize > 0)) throw new Error(`perSliceCounts: sliceSize must be a positive integer, got ${sliceSize}`);
  if (pred.length % sliceSize !== 0)
    throw new Error(`perSliceCounts: pred has ${pred.length} values, not a multiple of sliceSize ${sliceSize}`);
  const out: OverlapCounts[] = [];
  for (let s = 0; s < pred.length; s += sliceSize) out.push(countRange(pred, target, s, s + sliceSize, opts.threshold ?? 0.5));
  return out;
}

export interface SegmentationSummary {
  /** Dice over all pooled voxels (micro average); NaN / 1 when everything is empty. */
  microDice: number;
  microIou: number;
  /** Mean of per-slice Dice over the slices scored (see the empty-empty convention). */
  meanDice: number;
  meanIou: number;
  /** Sample sd of the per-slice Dice scored. */
  sdDice: number;
  /** Slices given. */
  nSlices: number;
  /** Slices in the mean. */
  nScored: number;
  /** Slices where prediction and ground truth are both empty. */
  nEmptyEmpty: number;
  emptyEmpty: EmptyConvention;
  /** Per-slice Dice and IoU (NaN for excluded empty-empty slices). */
  perSlice: { dice: number; iou: number }[];
  /** Pooled counts. */
  total: OverlapCounts;
}

/** Aggregates per-slice (or per-image) counts: micro Dice / IoU and the mean over slices. */
export function summarizeOverlap(counts: readonly OverlapCounts[], emptyEmpty: EmptyConvention = 'exclude'): SegmentationSummary {
  if (!Array.isArray(counts)) throw new Error('summarizeOverlap: counts must be an array of {tp, fp, fn}');
  if (emptyEmpty !== 'exclude' && emptyEmpty !== 'one') throw new Error(`summarizeOverlap: emptyEmpty must be 'exclude' or 'one', got ${String(emptyEmpty)}`);
  const total = { tp: 0, fp: 0, fn: 0 };
  const perSlice: { dice: number; iou: number }[] = [];
  let nEmptyEmpty = 0;
  const scored: number[] = [];
  const scoredIou: number[] = [];
  for (const c of counts) {
    total.tp += c.tp;
    total.fp += c.fp;
    total.fn += c.fn;
    if (c.tp + c.fp + c.fn === 0) nEmptyEmpty++;
    const d = diceFromCounts(c, emptyEmpty);
    const j = iouFromCounts(c, emptyEmpty);
    perSlice.push({ dice: d, iou: j });
    if (Number.isFinite(d)) {
      scored.push(d);
      scoredIou.push(j);
    }
  }
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  const meanDice = mean(scored);
  const sdDice = scored.length > 1 ? Math.sqrt(scored.reduce((a, b) => a + (b - meanDice) ** 2, 0) / (scored.length - 1)) : NaN;
  return {
    microDice: diceFromCounts(total, emptyEmpty),
    microIou: iouFromCounts(total, emptyEmpty),
    meanDice,
    meanIou: mean(scoredIou),
    sdDice,
    nSlices: counts.length,
    nScored: scored.length,
    nEmptyEmpty,
    emptyEmpty,
    perSlice,
    total,
  };
}

/** Per-slice and aggregated Dice / IoU of a stack of slices (sliceSize values each). */
export function segmentationScores(
  pred: ArrayLike<number>,
  target: ArrayLike<number>,
  sliceSize: number,
  opts: MaskOptions & { emptyEmpty?: EmptyConvention } = {},
): SegmentationSummary {
  return summarizeOverlap(perSliceCounts(pred, target, sliceSize, opts), opts.emptyEmpty);
}

// ---------------------------------------------------------------------------------------------
// Connected components and per-nodule Dice

export type Dims3 = readonly [nx: number, ny: number, nz: number];
export type Connectivity = 6 | 18 | 26;

export interface BoundingBox {
  /** Inclusive [x, y, z] minimum. */
  min: [number, number, number];
  /** Inclusive [x, y, z] maximum. */
  max: [number, number, number];
}

export interface Component {
  /** 1-based label in the label volume. */
  label: number;
  voxels: number;
  bbox: BoundingBox;
}

export interface Components {
  /** 0 for background, else the component label. */
  labels: Int32Array;
  count: number;
  components: Component[];
}

function checkDims(fn: string, mask: ArrayLike<number>, dims: Dims3): void {
  checkArray(fn, 'mask', mask);
  if (!Array.isArray(dims) || dims.length !== 3 || !dims.every((d) => Number.isInteger(d) && d > 0))
    throw new Error(`${fn}: dims must be three positive integers [nx, ny, nz], got ${JSON.stringify(dims)}`);
  const n = dims[0] * dims[1] * dims[2];
  if (mask.length !== n) throw new Error(`${fn}: mask has ${mask.length} values but dims ${dims.join('x')} need ${n}`);
}

function neighbourOffsets(connectivity: Connectivity): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (let dz = -1; dz <= 1; dz++)
    for (let dy = -1; dy <= 1; dy++)
      for (let dx = -1; dx <= 1; dx++) {
        const m = Math.abs(dx) + Math.abs(dy) + Math.abs(dz);
        if (m === 0) continue;
        if (connectivity === 6 && m > 1) continue;
        if (connectivity === 18 && m > 2) continue;
        out.push([dx, dy, dz]);
      }
  return out;
}

/**
 * Labels the connected foreground components of a 3D mask (foreground: value > threshold,
 * default 0; connectivity 26 by default: faces, edges and corners). Labels are numbered in scan
 * order of each component's first voxel.
 */
export function connectedComponents3d(mask: ArrayLike<number>, dims: Dims3, opts: { connectivity?: Connectivity; threshold?: number } = {}): Components {
  checkDims('connectedComponents3d', mask, dims);
  const connectivity = opts.connectivity ?? 26;
  if (connectivity !== 6 && connectivity !== 18 && connectivity !== 26)
    throw new Error(`connectedComponents3d: connectivity must be 6, 18 or 26, got ${String(connectivity)}`);
  const threshold = opts.threshold ?? 0;
  const [nx, ny, nz] = dims;
  const nxy = nx * ny;
  const labels = new Int32Array(mask.length);
  const offsets = neighbourOffsets(connectivity);
  const components: Component[] = [];
  const stack: number[] = [];
  for (let start = 0; start < mask.length; start++) {
    if (!(mask[start] > threshold) || labels[start] !== 0) continue;
    const label = components.length + 1;
    const bbox: BoundingBox = { min: [nx, ny, nz], max: [-1, -1, -1] };
    let voxels = 0;
    labels[start] = label;
    stack.push(start);
    while (stack.length) {
      const i = stack.pop()!;
      voxels++;
      const z = Math.floor(i / nxy);
      const r = i - z * nxy;
      const y = Math.floor(r / nx);
      const x = r - y * nx;
      if (x < bbox.min[0]) bbox.min[0] = x;
      if (y < bbox.min[1]) bbox.min[1] = y;
      if (z < bbox.min[2]) bbox.min[2] = z;
      if (x > bbox.max[0]) bbox.max[0] = x;
      if (y > bbox.max[1]) bbox.max[1] = y;
      if (z > bbox.max[2]) bbox.max[2] = z;
      for (const [dx, dy, dz] of offsets) {
        const X = x + dx;
        const Y = y + dy;
        const Z = z + dz;
        if (X < 0 || Y < 0 || Z < 0 || X >= nx || Y >= ny || Z >= nz) continue;
        const j = X + nx * (Y + ny * Z);
        if (labels[j] === 0 && mask[j] > threshold) {
          labels[j] = label;
          stack.push(j);
        }
      }
    }
    components.push({ label, voxels, bbox });
  }
  return { labels, count: components.length, components };
}

export interface NoduleScore extends OverlapCounts {
  /** Label of the ground-truth component. */
  label: number;
  voxels: number;
  bbox: BoundingBox;
  dice: number;
  iou: number;
  /** Some predicted voxel overlaps the nodule. */
  detected: boolean;
}

export interface PerNoduleResult {
  nodules: NoduleScore[];
  /** Mean Dice over ground-truth nodules (NaN when there are none). */
  meanDice: number;
  /** Fraction of nodules with any overlapping prediction. */
  detectionRate: number;
  /** Connected components of the prediction. */
  predComponents: number;
  /** Predicted components that touch no ground-truth nodule. */
  falsePositiveComponents: number;
}

/**
 * Dice of each ground-truth nodule (3D connected component of the target) against the prediction.
 * match 'bbox' (default): the prediction inside the nodule's bounding box, grown by `margin`
 * voxels on each side. match 'overlap': the whole predicted components that overlap the nodule.
 * In both, voxels of other ground-truth nodules never count as false positives of this one.
 */
export function perNoduleDice(
  pred: ArrayLike<number>,
  target: ArrayLike<number>,
  dims: Dims3,
  opts: MaskOptions & { match?: 'bbox' | 'overlap'; margin?: number; connectivity?: Connectivity } = {},
): PerNoduleResult {
  checkSameLength('perNoduleDice', 'pred', pred, 'target', target);
  checkDims('perNoduleDice', target, dims);
  const match = opts.match ?? 'bbox';
  if (match !== 'bbox' && match !== 'overlap') throw new Error(`perNoduleDice: match must be 'bbox' or 'overlap', got ${String(match)}`);
  const margin = opts.margin ?? 0;
  if (!(Number.isInteger(margin) && margin >= 0)) throw new Error(`perNoduleDice: margin must be a non-negative integer, got ${margin}`);
  const threshold = opts.threshold ?? 0.5;
  const [nx, ny, nz] = dims;
  const gt = connectedComponents3d(target, dims, { connectivity: opts.connectivity ?? 26, threshold: 0 });
  const pc = connectedComponents3d(pred, dims, { connectivity: opts.connectivity ?? 26, threshold });
  const isPred = (i: number) => pred[i] > threshold;

  // Which predicted components touch which nodules.
  const touches = new Map<number, Set<number>>(); // gt label -> pred labels
  const predTouched = new Uint8Array(pc.count + 1);
  for (let i = 0; i < gt.labels.length; i++) {
    const g = gt.labels[i];
    const p = pc.labels[i];
    if (g && p) {
      let s = touches.get(g);
      if (!s) touches.set(g, (s = new Set()));
      s.add(p);
      predTouched[p] = 1;
    }
  }

  const nodules: NoduleScore[] = gt.components.map((comp) => {
    let tp = 0;
    let fp = 0;
    let fn = 0;
    if (match === 'bbox') {
      const lo = comp.bbox.min.map((v) => Math.max(0, v - margin));
      const hi = [Math.min(nx - 1, comp.bbox.max[0] + margin), Math.min(ny - 1, comp.bbox.max[1] + margin), Math.min(nz - 1, comp.bbox.max[2] + margin)];
      for (let z = lo[2]; z <= hi[2]; z++)
        for (let y = lo[1]; y <= hi[1]; y++)
          for (let x = lo[0]; x <= hi[0]; x++) {
            const i = x + nx * (y + ny * z);
            const g = gt.labels[i];
            const p = isPred(i);
            if (g === comp.label) p ? tp++ : fn++;
            else if (p && g === 0) fp++;
          }
      // Nodule voxels are all inside the box, so fn is complete.
    } else {
      const mine = touches.get(comp.label) ?? new Set<number>();
      // Only the union of the boxes of the nodule and its predicted components can count.
      const lo = [...comp.bbox.min];
      const hi = [...comp.bbox.max];
      for (const p of mine) {
        const b = pc.components[p - 1].bbox;
        for (let a = 0; a < 3; a++) {
          lo[a] = Math.min(lo[a], b.min[a]);
          hi[a] = Math.max(hi[a], b.max[a]);
        }
      }
      for (let z = lo[2]; z <= hi[2]; z++)
        for (let y = lo[1]; y <= hi[1]; y++)
          for (let x = lo[0]; x <= hi[0]; x++) {
            const i = x + nx * (y + ny * z);
            const g = gt.labels[i];
            const inPred = pc.labels[i] !== 0 && mine.has(pc.labels[i]);
            if (g === comp.label) inPred ? tp++ : fn++;
            else if (inPred && g === 0) fp++;
          }
    }
    const c = { tp, fp, fn };
    return { label: comp.label, voxels: comp.voxels, bbox: comp.bbox, ...c, dice: diceFromCounts(c), iou: iouFromCounts(c), detected: tp > 0 };
  });
  const n = nodules.length;
  let fpComponents = 0;
  for (let p = 1; p <= pc.count; p++) if (!predTouched[p]) fpComponents++;
  return {
    nodules,
    meanDice: n ? nodules.reduce((a, b) => a + b.dice, 0) / n : NaN,
    detectionRate: n ? nodules.filter((x) => x.detected).length / n : NaN,
    predComponents: pc.count,
    falsePositiveComponents: fpComponents,
  };
}

// ---------------------------------------------------------------------------------------------
// Learning speed

/** A metric curve: values at steps 0, 1, 2, ... or explicit (step, value) points in step order. */
export type MetricCurve = ArrayLike<number> | readonly { step: number; value: number }[];

function curvePoints(fn: string, curve: MetricCurve): { steps: number[]; values: number[] } {
  checkArray(fn, 'curve', curve);
  const steps: number[] = [];
  const values: number[] = [];
  for (let i = 0; i < curve.length; i++) {
    const p = curve[i] as number | { step: number; value: number };
    if (typeof p === 'number') {
      steps.push(i);
      values.push(p);
    } else if (p && typeof p === 'object' && typeof p.step === 'number' && typeof p.value === 'number') {
      if (steps.length && !(p.step > steps[steps.length - 1])) throw new Error(`${fn}: curve steps must increase (curve[${i}].step = ${p.step})`);
      steps.push(p.step);
      values.push(p.value);
    } else throw new Error(`${fn}: curve[${i}] must be a number or {step, value}`);
  }
  return { steps, values };
}

/**
 * Moving average of a curve. 'trailing' (default): the mean of the last `window` points (fewer at
 * the start); 'centered': `window` points around each (odd windows are symmetric). NaN values
 * are skipped; a window of only NaN gives NaN.
 */
export function smoothCurve(values: ArrayLike<number>, window = 1, mode: 'trailing' | 'centered' = 'trailing'): Float64Array {
  checkArray('smoothCurve', 'values', values);
  if (!(Number.isInteger(window) && window >= 1)) throw new Error(`smoothCurve: window must be a positive integer, got ${window}`);
  const n = values.length;
  const out = new Float64Array(n);
  const before = mode === 'trailing' ? window - 1 : Math.floor((window - 1) / 2);
  const after = window - 1 - before;
  for (let i = 0; i < n; i++) {
    let s = 0;
    let c = 0;
    for (let k = Math.max(0, i - before); k <= Math.min(n - 1, i + after); k++)
      if (!Number.isNaN(values[k])) {
        s += values[k];
        c++;
      }
    out[i] = c ? s / c : NaN;
  }
  return out;
}

/**
 * The first step at which the smoothed curve reaches `level` (>= level; <= level with direction
 * 'below' for losses), or null if it never does. Smoothing: trailing moving average of `window`
 * points (default 1: no smoothing), so a noisy single spike does not count as reaching the level.
 */
export function iterationsToReach(
  curve: MetricCurve,
  level: number,
  opts: { window?: number; mode?: 'trailing' | 'centered'; direction?: 'above' | 'below' } = {},
): number | null {
  if (!Number.isFinite(level)) throw new Error(`iterationsToReach: level must be a finite number, got ${level}`);
  const { steps, values } = curvePoints('iterationsToReach', curve);
  const sm = smoothCurve(values, opts.window ?? 1, opts.mode ?? 'trailing');
  const below = opts.direction === 'below';
  for (let i = 0; i < sm.length; i++) if (below ? sm[i] <= level : sm[i] >= level) return steps[i];
  return null;
}

/**
 * How many times faster curve `fast` reaches `level` than curve `slow`: iterations(slow) /
 * iterations(fast) (2 = "twice as fast"). null when either never reaches it.
 */
export function speedupToReach(fast: MetricCurve, slow: MetricCurve, level: number, opts: Parameters<typeof iterationsToReach>[2] = {}): number | null {
  const a = iterationsToReach(fast, level, opts);
  const b = iterationsToReach(slow, level, opts);
  if (a === null || b === null) return null;
  return a === 0 ? (b === 0 ? 1 : Infinity) : b / a;
}
