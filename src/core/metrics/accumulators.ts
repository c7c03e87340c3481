/**
 * Metric accumulators for training and evaluation loops (MONAI's Cumulative / DiceMetric pattern):
 * `update(pred, target)` per batch with plain arrays (e.g. `await tensor.data()`), `compute()` at
 * the end, `reset()` to reuse. They keep only what the metric needs: AUROC keeps one score and one
 * label per example in compact typed arrays, Dice keeps three counts per image, never the images.
 */
import { auroc, aurocOvr } from './auroc';
import { aurocBootstrapCi, type BootstrapCi, type BootstrapOptions } from './classification';
import { summarizeOverlap, type EmptyConvention, type OverlapCounts, type SegmentationSummary } from './segmentation';
import { checkFinite, checkSameLength } from './stats';

export interface Metric<R> {
  /** Adds one batch. */
  update(pred: ArrayLike<number>, target: ArrayLike<number>): void;
  /** The metric over everything added since the last reset. */
  compute(): R;
  /** Forgets everything added. */
  reset(): void;
  /** Examples (AUROC) or images (Dice) added so far. */
  readonly count: number;
}

/** A growable Float64Array. */
class Buffer64 {
  data = new Float64Array(1024);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const d = new Float64Array(this.data.length * 2);
      d.set(this.data);
      this.data = d;
    }
    this.data[this.length++] = v;
  }
  view(): Float64Array {
    return this.data.subarray(0, this.length);
  }
  clear(): void {
    this.length = 0;
  }
}

export interface AurocMetricResult {
  /** Binary AUROC, or the one-vs-rest macro average with `classes`. */
  auroc: number;
  /** Per-class one-vs-rest AUROC (multi-class only). */
  perClass?: number[];
  n: number;
  /** Binary only. */
  nPos?: number;
  nNeg?: number;
  /** Bootstrap interval (binary, when the bootstrap option is set and both classes are present). */
  ci?: BootstrapCi;
}

/**
 * Accumulates scores and labels for AUROC.
 * - Binary (default): pred is one score per example, target 0 or 1.
 * - Multi-class (`classes` = C > 2): pred is N x C probabilities row-major, target class indices;
 *   compute() gives the one-vs-rest macro AUROC.
 */
export class AurocMetric implements Metric<AurocMetricResult> {
  private scores = new Buffer64();
  private labels = new Buffer64();
  private readonly classes: number;
  private readonly bootstrap?: BootstrapOptions;

  constructor(opts: { classes?: number; bootstrap?: BootstrapOptions } = {}) {
    const classes = opts.classes ?? 2;
    if (!(Number.isInteger(classes) && classes >= 2)) throw new Error(`AurocMetric: classes must be an integer >= 2, got ${classes}`);
    this.classes = classes;
    this.bootstrap = opts.bootstrap;
  }

  get count(): number {
    return this.labels.length;
  }

  update(pred: ArrayLike<number>, target: ArrayLike<number>): void {
    const C = this.classes;
    if (C === 2) {
      checkSameLength('AurocMetric.update', 'pred', pred, 'target', target);
    } else if (pred.length !== target.length * C) {
      throw new Error(`AurocMetric.update: pred has ${pred.length} values, expected target.length x classes = ${target.length} x ${C}`);
    }
    checkFinite('AurocMetric.update', 'pred', pred);
    for (let i = 0; i < target.length; i++) {
      const y = target[i];
      const ok = C === 2 ? y === 0 || y === 1 : Number.isInteger(y) && y >= 0 && y < C;
      if (!ok) throw new Error(`AurocMetric.update: target[${i}] is ${y}; expected ${C === 2 ? '0 or 1' : `a class index in [0, ${C})`}`);
    }
    for (let i = 0; i < pred.length; i++) this.scores.push(pred[i]);
    for (let i = 0; i < target.length; i++) this.labels.push(target[i]);
  }

  compute(): AurocMetricResult {
    const s = this.scores.view();
    const y = this.labels.view();
    if (this.classes > 2) {
      const r = aurocOvr(s, y, this.classes);
      return { auroc: r.macro, perClass: r.perClass, n: y.length };
    }
    let nPos = 0;
    for (let i = 0; i < y.length; i++) nPos += y[i];
    const nNeg = y.length - nPos;
    const out: AurocMetricResult = { auroc: auroc(s, y), n: y.length, nPos, nNeg };
    if (this.bootstrap && nPos > 0 && nNeg > 0) out.ci = aurocBootstrapCi(s, y, this.bootstrap);
    return out;
  }

  reset(): void {
    this.scores.clear();
    this.labels.clear();
  }

  /** Copies of the stored scores and labels (for ROC curves or DeLong after the loop). */
  values(): { scores: Float64Array; labels: Float64Array } {
    return { scores: this.scores.view().slice(), labels: this.labels.view().slice() };
  }
}

/**
 * Accumulates Dice and IoU. Each update is a batch of images of `imageSize` values each (default:
 * the whole batch is one image); per image it keeps only TP, FP and FN. compute() returns micro
 * (pooled) and mean-over-images Dice and IoU with the empty-empty convention of segmentation.ts.
 */
export class DiceMetric implements Metric<SegmentationSummary> {
  private tp = new Buffer64();
  private fp = new Buffer64();
  private fn = new Buffer64();
  private readonly imageSize?: number;
  private readonly threshold: number;
  private readonly emptyEmpty: EmptyConvention;

  constructor(opts: { imageSize?: number; threshold?: number; emptyEmpty?: EmptyConvention } = {}) {
    if (opts.imageSize !== undefined && !(Number.isInteger(opts.imageSize) && opts.imageSize > 0))
      throw new Error(`DiceMetric: imageSize must be a positive integer, got ${opts.imageSize}`);
    this.imageSize = opts.imageSize;
    this.threshold = opts.threshold ?? 0.5;
    this.emptyEmpty = opts.emptyEmpty ?? 'exclude';
    if (this.emptyEmpty !== 'exclude' && this.emptyEmpty !== 'one') throw new Error(`DiceMetric: emptyEmpty must be 'exclude' or 'one', got ${String(opts.emptyEmpty)}`);
  }

  get count(): number {
    return this.tp.length;
  }

  update(pred: ArrayLike<number>, target: ArrayLike<number>): void {
    checkSameLength('DiceMetric.update', 'pred', pred, 'target', target);
    const size = this.imageSize ?? pred.length;
    if (size === 0) throw new Error('DiceMetric.update: empty batch');
    if (pred.length % size !== 0) throw new Error(`DiceMetric.update: pred has ${pred.length} values, not a multiple of imageSize ${size}`);
    for (let s = 0; s < pred.length; s += size) {
      let tp = 0;
      let fp = 0;
      let fn = 0;
      for (let i = s; i < s + size; i++) {
        const p = pred[i] > this.threshold;
        const t = target[i] > 0;
        if (p && t) tp++;
        else if (p) fp++;
        else if (t) fn++;
      }
      this.tp.push(tp);
      this.fp.push(fp);
      this.fn.push(fn);
    }
  }

  compute(): SegmentationSummary {
    const counts: OverlapCounts[] = [];
    for (let i = 0; i < this.tp.length; i++) counts.push({ tp: this.tp.data[i], fp: this.fp.data[i], fn: this.fn.data[i] });
    return summarizeOverlap(counts, this.emptyEmpty);
  }

  reset(): void {
    this.tp.clear();
    this.fp.clear();
    this.fn.clear();
  }
}
