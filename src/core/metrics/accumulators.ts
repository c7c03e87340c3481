/**
 * Metric accumulators, the one way the evaluation loops of the trainer (pretraining's validation
 * and Table II evaluation, fine-tuning's validation and held-out results) add up their metrics
 * (MONAI's Cumulative / DiceMetric pattern): `update(pred, target)` per batch with plain arrays
 * (e.g. `await tensor.data()`), `compute()` at the end, `reset()` to reuse. They keep only what
 * the metric needs: AUROC keeps one score (or one row of probabilities) and one label per example
 * in compact typed arrays, Dice keeps three counts per image, image metrics three numbers per
 * image, never the images. AUROC and Dice also keep, when given, each example's cluster (its
 * patient) for the patient-level bootstrap of ./cluster.
 */
import { auroc, aurocOvr, crossEntropy } from './auroc';
import { aurocBootstrapCi, type BootstrapCi, type BootstrapOptions } from './classification';
import { aurocClusterCi, type ClusterBootstrapOptions, type ClusterCi } from './cluster';
import { maskedMse, meanSd, mse, ssim } from './image';
import { summarizeOverlap, type EmptyConvention, type OverlapCounts, type SegmentationSummary } from './segmentation';
import { checkSameLength } from './stats';

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
  /** Mean cross-entropy of the probability rows against the labels (multi-class only). */
  crossEntropy?: number;
  /** Fraction of examples whose largest probability is their label's (multi-class only). */
  accuracy?: number;
  n: number;
  /** Binary only. */
  nPos?: number;
  nNeg?: number;
  /** Slice-level bootstrap interval (binary, when the bootstrap option is set and both classes are present). */
  ci?: BootstrapCi;
  /**
   * Patient-level (cluster) bootstrap interval: binary, when the clusterBootstrap option is set,
   * every update gave clusters and both classes are present.
   */
  clusterCi?: ClusterCi;
  /** Distinct clusters (patients) given, when every update gave them. */
  clusters?: number;
}

/**
 * Accumulates scores and labels for AUROC.
 * - Binary (default): pred is one score per example, target 0 or 1.
 * - Multi-class (`classes` = C > 2, or any C with `rows`): pred is N x C probabilities row-major,
 *   target class indices; compute() gives the one-vs-rest macro AUROC, the cross-entropy and the
 *   accuracy (`rows` lets a 2-class classifier's softmax rows be scored so, as a pretext task's are).
 * A NaN score (a diverged model) makes the AUROC NaN, as auroc() does.
 */
export class AurocMetric implements Metric<AurocMetricResult> {
  private scores = new Buffer64();
  private labels = new Buffer64();
  private clusterIds = new Buffer64();
  private withoutClusters = 0;
  private readonly classes: number;
  /** Rows of C probabilities per example (always when C > 2). */
  private readonly rows: boolean;
  private readonly bootstrap?: BootstrapOptions;
  private readonly clusterBootstrap?: ClusterBootstrapOptions;

  constructor(opts: { classes?: number; rows?: boolean; bootstrap?: BootstrapOptions; clusterBootstrap?: ClusterBootstrapOptions } = {}) {
    const classes = opts.classes ?? 2;
    if (!(Number.isInteger(classes) && classes >= 2)) throw new Error(`AurocMetric: classes must be an integer >= 2, got ${classes}`);
    this.classes = classes;
    this.rows = classes > 2 || opts.rows === true;
    this.bootstrap = opts.bootstrap;
    this.clusterBootstrap = opts.clusterBootstrap;
  }

  get count(): number {
    return this.labels.length;
  }

  /** Adds a batch; `clusters` gives each example's cluster (patient) as a number. */
  update(pred: ArrayLike<number>, target: ArrayLike<number>, clusters?: ArrayLike<number>): void {
    const C = this.classes;
    if (clusters) checkSameLength('AurocMetric.update', 'clusters', clusters, 'target', target);
    if (!this.rows) {
      checkSameLength('AurocMetric.update', 'pred', pred, 'target', target);
    } else if (pred.length !== target.length * C) {
      throw new Error(`AurocMetric.update: pred has ${pred.length} values, expected target.length x classes = ${target.length} x ${C}`);
    }
    for (let i = 0; i < target.length; i++) {
      const y = target[i];
      const ok = !this.rows ? y === 0 || y === 1 : Number.isInteger(y) && y >= 0 && y < C;
      if (!ok) throw new Error(`AurocMetric.update: target[${i}] is ${y}; expected ${!this.rows ? '0 or 1' : `a class index in [0, ${C})`}`);
    }
    for (let i = 0; i < pred.length; i++) this.scores.push(pred[i]);
    for (let i = 0; i < target.length; i++) this.labels.push(target[i]);
    if (clusters) for (let i = 0; i < clusters.length; i++) this.clusterIds.push(clusters[i]);
    else this.withoutClusters += target.length;
  }

  private hasClusters(): boolean {
    return this.withoutClusters === 0 && this.clusterIds.length === this.labels.length && this.labels.length > 0;
  }

  compute(): AurocMetricResult {
    const s = this.scores.view();
    const y = this.labels.view();
    const C = this.classes;
    if (this.rows) {
      const r = aurocOvr(s, y, C);
      let correct = 0;
      for (let i = 0; i < y.length; i++) {
        const row = Array.from(s.subarray(i * C, (i + 1) * C));
        if (row.indexOf(Math.max(...row)) === y[i]) correct++;
      }
      const accuracy = y.length ? correct / y.length : NaN;
      return { auroc: r.macro, perClass: r.perClass, crossEntropy: crossEntropy(s, y, C), accuracy, n: y.length };
    }
    let nPos = 0;
    for (let i = 0; i < y.length; i++) nPos += y[i];
    const nNeg = y.length - nPos;
    const out: AurocMetricResult = { auroc: auroc(s, y), n: y.length, nPos, nNeg };
    if (this.bootstrap && nPos > 0 && nNeg > 0) out.ci = aurocBootstrapCi(s, y, this.bootstrap);
    if (this.hasClusters()) {
      const ids = this.clusterIds.view();
      out.clusters = new Set(ids).size;
      if (this.clusterBootstrap && nPos > 0 && nNeg > 0 && Number.isFinite(out.auroc)) out.clusterCi = aurocClusterCi(s, y, ids, this.clusterBootstrap);
    }
    return out;
  }

  reset(): void {
    this.scores.clear();
    this.labels.clear();
    this.clusterIds.clear();
    this.withoutClusters = 0;
  }

  /** Copies of the stored scores, labels and (when every update gave them) clusters, for ROC curves or paired tests after the loop. */
  values(): { scores: Float64Array; labels: Float64Array; clusters?: Float64Array } {
    return { scores: this.scores.view().slice(), labels: this.labels.view().slice(), ...(this.hasClusters() && { clusters: this.clusterIds.view().slice() }) };
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
  private clusterIds = new Buffer64();
  private withoutClusters = 0;
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

  /** Adds a batch of images; `clusters` gives each image's cluster (patient) as a number. */
  update(pred: ArrayLike<number>, target: ArrayLike<number>, clusters?: ArrayLike<number>): void {
    checkSameLength('DiceMetric.update', 'pred', pred, 'target', target);
    const size = this.imageSize ?? pred.length;
    if (size === 0) throw new Error('DiceMetric.update: empty batch');
    if (pred.length % size !== 0) throw new Error(`DiceMetric.update: pred has ${pred.length} values, not a multiple of imageSize ${size}`);
    if (clusters && clusters.length !== pred.length / size) throw new Error(`DiceMetric.update: ${clusters.length} clusters for ${pred.length / size} images`);
    if (clusters) for (let i = 0; i < clusters.length; i++) this.clusterIds.push(clusters[i]);
    else this.withoutClusters += pred.length / size;
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
    this.clusterIds.clear();
    this.withoutClusters = 0;
  }

  /** Each image's counts and (when every update gave them) clusters, for the patient-level bootstrap. */
  values(): { counts: OverlapCounts[]; clusters?: Float64Array } {
    const counts: OverlapCounts[] = [];
    for (let i = 0; i < this.tp.length; i++) counts.push({ tp: this.tp.data[i], fp: this.fp.data[i], fn: this.fn.data[i] });
    const withClusters = this.withoutClusters === 0 && this.clusterIds.length === this.tp.length && this.tp.length > 0;
    return { counts, ...(withClusters && { clusters: this.clusterIds.view().slice() }) };
  }
}

/** Mean, standard deviation and count (of the finite values). */
export interface MeanStat {
  mean: number;
  sd: number;
  n: number;
}

export interface MeanMetricResult {
  /** Names in the order they were first added. */
  names: string[];
  /** Per name: mean and sd over the values (images). */
  perItem: Record<string, MeanStat>;
  /** Per name: mean and sd over the groups' means (the groups that have the name). */
  perGroup: Record<string, MeanStat>;
  /** Groups seen. */
  groups: number;
}

/**
 * Accumulates named per-image values (MSE, SSIM, a per-image loss), each in a group (a volume;
 * default: group 0). compute() gives, per name, mean and sd over the images and over the groups'
 * means (the paper's per-volume statistics). Non-finite values are left out of both (meanSd).
 */
export class MeanMetric {
  private readonly values = new Map<string, { v: Buffer64; g: Buffer64 }>();
  private readonly groupOrder = new Map<number, number>();

  /** Values added so far, all names together. */
  get count(): number {
    let n = 0;
    for (const { v } of this.values.values()) n += v.length;
    return n;
  }

  /** Adds one value of `name` for `group`. */
  add(name: string, value: number, group = 0): void {
    let e = this.values.get(name);
    if (!e) this.values.set(name, (e = { v: new Buffer64(), g: new Buffer64() }));
    e.v.push(value);
    e.g.push(group);
    if (!this.groupOrder.has(group)) this.groupOrder.set(group, this.groupOrder.size);
  }

  compute(): MeanMetricResult {
    const perItem: Record<string, MeanStat> = {};
    const perGroup: Record<string, MeanStat> = {};
    for (const [name, { v, g }] of this.values) {
      perItem[name] = meanSd(Array.from(v.view()));
      const byGroup: number[][] = Array.from({ length: this.groupOrder.size }, () => []);
      for (let i = 0; i < v.length; i++) byGroup[this.groupOrder.get(g.data[i])!].push(v.data[i]);
      perGroup[name] = meanSd(byGroup.map((xs) => meanSd(xs).mean));
    }
    return { names: [...this.values.keys()], perItem, perGroup, groups: this.groupOrder.size };
  }

  reset(): void {
    this.values.clear();
    this.groupOrder.clear();
  }
}

/**
 * The pretext tasks' image metrics (paper Table II) per image: MSE, SSIM and, when a mask is
 * given, the masked-region MSE, accumulated by group (volume) in a {@link MeanMetric}. Each update
 * is a batch of `size` x `size` images.
 */
export class ReconstructionMetric {
  private readonly means = new MeanMetric();
  private images = 0;

  constructor(private readonly size: number) {
    if (!(Number.isInteger(size) && size > 0)) throw new Error(`ReconstructionMetric: size must be a positive integer, got ${size}`);
  }

  /** Images added so far. */
  get count(): number {
    return this.images;
  }

  /**
   * Adds the images of a batch: pred and target hold N images (N x size x size), mask the same
   * or nothing; `groups` gives each image's group (default 0).
   */
  update(pred: ArrayLike<number>, target: ArrayLike<number>, opts: { mask?: ArrayLike<number>; groups?: ArrayLike<number> } = {}): void {
    checkSameLength('ReconstructionMetric.update', 'pred', pred, 'target', target);
    const px = this.size * this.size;
    if (pred.length % px !== 0) throw new Error(`ReconstructionMetric.update: pred has ${pred.length} values, not a multiple of size x size = ${px}`);
    if (opts.mask) checkSameLength('ReconstructionMetric.update', 'pred', pred, 'mask', opts.mask);
    const n = pred.length / px;
    if (opts.groups && opts.groups.length !== n) throw new Error(`ReconstructionMetric.update: ${opts.groups.length} groups for ${n} images`);
    for (let k = 0; k < n; k++) {
      const o = slice(pred, k * px, (k + 1) * px);
      const t = slice(target, k * px, (k + 1) * px);
      const g = opts.groups ? opts.groups[k] : 0;
      this.means.add('mse', mse(o, t), g);
      this.means.add('ssim', ssim(o, t, this.size), g);
      if (opts.mask) this.means.add('maskedMse', maskedMse(o, t, slice(opts.mask, k * px, (k + 1) * px)), g);
      this.images++;
    }
  }

  compute(): MeanMetricResult {
    return this.means.compute();
  }

  reset(): void {
    this.means.reset();
    this.images = 0;
  }
}

/** A view of [start, end) of a typed array, or a copy of that range of another array. */
function slice(a: ArrayLike<number>, start: number, end: number): ArrayLike<number> {
  const t = a as ArrayLike<number> & { subarray?: (s: number, e: number) => ArrayLike<number> };
  return typeof t.subarray === 'function' ? t.subarray(start, end) : Array.prototype.slice.call(a, start, end);
}
