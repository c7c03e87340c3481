/**
 * Binary classification metrics for the downstream evaluation, pure:
 * - ROC curve points like sklearn.metrics.roc_curve(drop_intermediate=False) and the
 *   precision-recall curve / average precision like sklearn;
 * - confusion-matrix metrics at a threshold, and threshold choice by Youden's J (the paper) or
 *   maximal F1 (the public code), chosen on validation and then applied to test;
 * - AUROC with a stratified percentile-bootstrap interval (seeded), and a paired bootstrap for the
 *   difference of two models;
 * - DeLong's test between two correlated ROC curves, with the fast midrank algorithm of
 *   Sun & Xu (2014), and DeLong's interval for one AUROC.
 *
 * Labels are 0 (negative) or 1 (positive); an example is called positive at threshold t when its
 * score >= t (sklearn's convention for roc_curve thresholds).
 */
import { Rng } from '../random';
import { auroc } from './auroc';
import { checkFinite, checkLevel, checkSameLength, normalQuantile, normalSf, quantileSorted, rankAverage } from './stats';

function checkBinary(fn: string, scores: ArrayLike<number>, labels: ArrayLike<number>): { nPos: number; nNeg: number } {
  checkSameLength(fn, 'scores', scores, 'labels', labels);
  checkFinite(fn, 'scores', scores);
  let nPos = 0;
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (y === 1) nPos++;
    else if (y !== 0) throw new Error(`${fn}: labels[${i}] is ${y}; labels must be 0 or 1`);
  }
  return { nPos, nNeg: labels.length - nPos };
}

/** Cumulative true and false positives at each distinct score, scores descending (sklearn's _binary_clf_curve). */
export interface BinaryCurve {
  /** Distinct scores, descending. */
  thresholds: Float64Array;
  /** True positives among the examples with score >= thresholds[k]. */
  tps: Float64Array;
  /** False positives among the examples with score >= thresholds[k]. */
  fps: Float64Array;
  nPos: number;
  nNeg: number;
}

export function binaryCurve(scores: ArrayLike<number>, labels: ArrayLike<number>, fn = 'binaryCurve'): BinaryCurve {
  const { nPos, nNeg } = checkBinary(fn, scores, labels);
  const n = scores.length;
  const idx = Array.from({ length: n }, (_, i) => i).sort((i, j) => scores[j] - scores[i]);
  const th: number[] = [];
  const tp: number[] = [];
  const fp: number[] = [];
  let t = 0;
  let f = 0;
  for (let k = 0; k < n; k++) {
    const i = idx[k];
    if (labels[i] === 1) t++;
    else f++;
    if (k === n - 1 || scores[idx[k + 1]] !== scores[i]) {
      th.push(scores[i]);
      tp.push(t);
      fp.push(f);
    }
  }
  return { thresholds: Float64Array.from(th), tps: Float64Array.from(tp), fps: Float64Array.from(fp), nPos, nNeg };
}

export interface RocCurve {
  /** False positive rate at each threshold, from 0 to 1. */
  fpr: Float64Array;
  /** True positive rate (sensitivity) at each threshold, from 0 to 1. */
  tpr: Float64Array;
  /** Decreasing; thresholds[0] = Infinity (nothing positive), then every distinct score. */
  thresholds: Float64Array;
  nPos: number;
  nNeg: number;
}

/**
 * ROC curve points as sklearn.metrics.roc_curve(y, s, drop_intermediate=False): one point per
 * distinct score plus the origin. thresholds[0] is Infinity (sklearn >= 1.3; older versions wrote
 * max score + 1 there). Throws when either class is absent.
 */
export function rocCurve(scores: ArrayLike<number>, labels: ArrayLike<number>): RocCurve {
  const c = binaryCurve(scores, labels, 'rocCurve');
  if (c.nPos === 0 || c.nNeg === 0)
    throw new Error(`rocCurve: labels need both classes (${c.nPos} positives, ${c.nNeg} negatives)`);
  const m = c.thresholds.length + 1;
  const fpr = new Float64Array(m);
  const tpr = new Float64Array(m);
  const thresholds = new Float64Array(m);
  thresholds[0] = Infinity;
  for (let k = 0; k < c.thresholds.length; k++) {
    fpr[k + 1] = c.fps[k] / c.nNeg;
    tpr[k + 1] = c.tps[k] / c.nPos;
    thresholds[k + 1] = c.thresholds[k];
  }
  return { fpr, tpr, thresholds, nPos: c.nPos, nNeg: c.nNeg };
}

/** Area under piecewise-linear points (trapezoid rule; x must be monotone). */
export function trapezoidArea(x: ArrayLike<number>, y: ArrayLike<number>): number {
  checkSameLength('trapezoidArea', 'x', x, 'y', y);
  let s = 0;
  for (let i = 1; i < x.length; i++) s += ((x[i] - x[i - 1]) * (y[i] + y[i - 1])) / 2;
  return Math.abs(s);
}

export interface PrCurve {
  /** Precision at each threshold ascending, then 1 (sklearn's final point). */
  precision: Float64Array;
  /** Recall at each threshold ascending, then 0. */
  recall: Float64Array;
  /** Distinct scores, ascending (one fewer than precision / recall). */
  thresholds: Float64Array;
}

/**
 * Precision-recall curve as sklearn.metrics.precision_recall_curve (sklearn 1.1 - 1.2 form, no
 * intermediate points dropped): ascending thresholds; precision 0 where nothing is predicted positive.
 * Throws when there are no positives.
 */
export function prCurve(scores: ArrayLike<number>, labels: ArrayLike<number>): PrCurve {
  const c = binaryCurve(scores, labels, 'prCurve');
  if (c.nPos === 0) throw new Error('prCurve: labels contain no positives');
  const m = c.thresholds.length;
  const precision = new Float64Array(m + 1);
  const recall = new Float64Array(m + 1);
  const thresholds = new Float64Array(m);
  for (let k = 0; k < m; k++) {
    const r = m - 1 - k;
    const ps = c.tps[r] + c.fps[r];
    precision[k] = ps > 0 ? c.tps[r] / ps : 0;
    recall[k] = c.tps[r] / c.nPos;
    thresholds[k] = c.thresholds[r];
  }
  precision[m] = 1;
  recall[m] = 0;
  return { precision, recall, thresholds };
}

/**
 * Average precision as sklearn.metrics.average_precision_score: sum over thresholds of
 * (R_k - R_{k-1}) P_k (a step function, no interpolation). NaN when there are no positives.
 */
export function averagePrecision(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const c = binaryCurve(scores, labels, 'averagePrecision');
  if (c.nPos === 0) return NaN;
  let ap = 0;
  let prevRecall = 0;
  for (let k = 0; k < c.thresholds.length; k++) {
    const recall = c.tps[k] / c.nPos;
    ap += (recall - prevRecall) * (c.tps[k] / (c.tps[k] + c.fps[k]));
    prevRecall = recall;
  }
  return ap;
}

/** Area under the precision-recall curve by the trapezoid rule (sklearn auc(recall, precision)); optimistic, prefer averagePrecision. */
export function prAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const c = prCurve(scores, labels);
  return trapezoidArea(c.recall, c.precision);
}

export interface ThresholdMetrics {
  threshold: number;
  n: number;
  tp: number;
  fp: number;
  tn: number;
  fn: number;
  /** Sensitivity = recall = TP / (TP + FN); NaN without positives. */
  sensitivity: number;
  /** Specificity = TN / (TN + FP); NaN without negatives. */
  specificity: number;
  /** Positive predictive value = precision = TP / (TP + FP); NaN when nothing is called positive. */
  ppv: number;
  /** Negative predictive value = TN / (TN + FN); NaN when nothing is called negative. */
  npv: number;
  accuracy: number;
  /** 2 TP / (2 TP + FP + FN); NaN when there are no positives and none is predicted. */
  f1: number;
  /** Youden's J = sensitivity + specificity - 1. */
  youdenJ: number;
}

function fromCounts(threshold: number, tp: number, fp: number, tn: number, fn: number): ThresholdMetrics {
  const div = (a: number, b: number) => (b > 0 ? a / b : NaN);
  const sensitivity = div(tp, tp + fn);
  const specificity = div(tn, tn + fp);
  return {
    threshold,
    n: tp + fp + tn + fn,
    tp,
    fp,
    tn,
    fn,
    sensitivity,
    specificity,
    ppv: div(tp, tp + fp),
    npv: div(tn, tn + fn),
    accuracy: div(tp + tn, tp + fp + tn + fn),
    f1: div(2 * tp, 2 * tp + fp + fn),
    youdenJ: sensitivity + specificity - 1,
  };
}

/** Sensitivity, specificity, PPV, NPV, accuracy and F1 when score >= threshold is called positive. */
export function thresholdMetrics(scores: ArrayLike<number>, labels: ArrayLike<number>, threshold: number): ThresholdMetrics {
  checkBinary('thresholdMetrics', scores, labels);
  if (Number.isNaN(threshold)) throw new Error('thresholdMetrics: threshold is NaN');
  let tp = 0;
  let fp = 0;
  let tn = 0;
  let fn = 0;
  for (let i = 0; i < scores.length; i++) {
    const pos = scores[i] >= threshold;
    if (labels[i] === 1) pos ? tp++ : fn++;
    else pos ? fp++ : tn++;
  }
  return fromCounts(threshold, tp, fp, tn, fn);
}

export type ThresholdMethod = 'youden' | 'maxF1';

export interface ThresholdChoice {
  method: ThresholdMethod;
  /** Apply as score >= threshold on other data (test). */
  threshold: number;
  /** The maximised criterion: J for 'youden', F1 for 'maxF1'. */
  value: number;
  /** Metrics on the data the threshold was chosen on. */
  metrics: ThresholdMetrics;
}

/**
 * Chooses a threshold on (validation) data.
 * - 'youden' (the paper): maximal J = TPR - FPR over the ROC points; ties go to the highest
 *   threshold (the first in roc_curve order, like numpy.argmax).
 * - 'maxF1' (the public code): maximal F1 over the precision-recall thresholds; ties go to the
 *   lowest threshold (the first in precision_recall_curve order).
 * placement 'score' returns the score itself (sklearn's threshold); 'midpoint' returns the midpoint
 * between it and the next lower distinct score, which classifies the validation data identically
 * and sits between classes on new data.
 */
export function chooseThreshold(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  opts: { method?: ThresholdMethod; placement?: 'score' | 'midpoint' } = {},
): ThresholdChoice {
  const method = opts.method ?? 'youden';
  if (method !== 'youden' && method !== 'maxF1') throw new Error(`chooseThreshold: method must be 'youden' or 'maxF1', got ${String(method)}`);
  const c = binaryCurve(scores, labels, 'chooseThreshold');
  if (c.nPos === 0 || c.nNeg === 0)
    throw new Error(`chooseThreshold: labels need both classes (${c.nPos} positives, ${c.nNeg} negatives)`);
  const m = c.thresholds.length;
  let best = -1;
  let bestValue = -Infinity;
  for (let k = 0; k < m; k++) {
    const tp = c.tps[k];
    const fp = c.fps[k];
    if (method === 'youden') {
      const j = tp / c.nPos - fp / c.nNeg;
      if (j > bestValue) {
        bestValue = j;
        best = k;
      }
    } else {
      const f1 = (2 * tp) / (2 * tp + fp + (c.nPos - tp));
      if (f1 >= bestValue) {
        bestValue = f1;
        best = k;
      }
    }
  }
  let threshold = c.thresholds[best];
  if (opts.placement === 'midpoint' && best + 1 < m) threshold = (c.thresholds[best] + c.thresholds[best + 1]) / 2;
  const tp = c.tps[best];
  const fp = c.fps[best];
  return { method, threshold, value: bestValue, metrics: fromCounts(threshold, tp, fp, c.nNeg - fp, c.nPos - tp) };
}

/** Youden-optimal threshold (see chooseThreshold). */
export function youdenThreshold(scores: ArrayLike<number>, labels: ArrayLike<number>, placement: 'score' | 'midpoint' = 'score'): ThresholdChoice {
  return chooseThreshold(scores, labels, { method: 'youden', placement });
}

/** Max-F1 threshold, the public code's choice (see chooseThreshold). */
export function maxF1Threshold(scores: ArrayLike<number>, labels: ArrayLike<number>, placement: 'score' | 'midpoint' = 'score'): ThresholdChoice {
  return chooseThreshold(scores, labels, { method: 'maxF1', placement });
}

// ---------------------------------------------------------------------------------------------
// Bootstrap

export interface BootstrapOptions {
  /** Number of resamples (default 2000). */
  nResamples?: number;
  /** Seed of a fresh Rng (default 0), used when rng is not given. */
  seed?: number;
  /** Generator to draw from (advanced by the call). */
  rng?: Rng;
  /** Interval level (default 0.95). */
  level?: number;
  /** Resample positives and negatives separately, keeping their counts (default true). */
  stratified?: boolean;
}

export interface BootstrapCi {
  /** The statistic on the original data. */
  estimate: number;
  /** Percentile interval of the resampled statistics. */
  lower: number;
  upper: number;
  level: number;
  /** Standard deviation of the resampled statistics. */
  se: number;
  nResamples: number;
  /** Resamples with both classes present (all of them when stratified). */
  nValid: number;
  stratified: boolean;
}

/**
 * Scores sorted once, with tie groups, so that a resample's AUROC is one linear pass over weights
 * (used by the slice-level bootstrap here and the patient-level one in ./cluster).
 */
export class WeightedAuroc {
  readonly order: Int32Array;
  /** Index in `order` where each tie group starts (plus a final n). */
  readonly groupStart: number[];
  constructor(scores: ArrayLike<number>) {
    const n = scores.length;
    this.order = Int32Array.from({ length: n }, (_, i) => i).sort((i, j) => scores[i] - scores[j]);
    this.groupStart = [];
    for (let k = 0; k < n; k++) if (k === 0 || scores[this.order[k]] !== scores[this.order[k - 1]]) this.groupStart.push(k);
    this.groupStart.push(n);
  }

  /** AUROC (ties one half) of the multiset where example i appears w[i] times. */
  value(w: Float64Array, labels: ArrayLike<number>): number {
    let negBelow = 0;
    let sum = 0;
    let P = 0;
    for (let g = 0; g + 1 < this.groupStart.length; g++) {
      let pos = 0;
      let neg = 0;
      for (let k = this.groupStart[g]; k < this.groupStart[g + 1]; k++) {
        const i = this.order[k];
        if (labels[i] === 1) pos += w[i];
        else neg += w[i];
      }
      sum += pos * (negBelow + 0.5 * neg);
      negBelow += neg;
      P += pos;
    }
    return P > 0 && negBelow > 0 ? sum / (P * negBelow) : NaN;
  }
}

function resolveBootstrap(fn: string, opts: BootstrapOptions) {
  const nResamples = opts.nResamples ?? 2000;
  if (!(Number.isInteger(nResamples) && nResamples >= 1)) throw new Error(`${fn}: nResamples must be a positive integer, got ${nResamples}`);
  const level = opts.level ?? 0.95;
  checkLevel(fn, level);
  const rng = opts.rng ?? new Rng(opts.seed ?? 0);
  return { nResamples, level, rng, stratified: opts.stratified ?? true };
}

/** Draws one bootstrap resample as counts per example. */
function drawWeights(w: Float64Array, rng: Rng, stratified: boolean, pos: Int32Array, neg: Int32Array): void {
  w.fill(0);
  if (stratified) {
    for (let k = 0; k < pos.length; k++) w[pos[rng.int(pos.length)]]++;
    for (let k = 0; k < neg.length; k++) w[neg[rng.int(neg.length)]]++;
  } else {
    const n = w.length;
    for (let k = 0; k < n; k++) w[rng.int(n)]++;
  }
}

function classIndices(labels: ArrayLike<number>): { pos: Int32Array; neg: Int32Array } {
  const pos: number[] = [];
  const neg: number[] = [];
  for (let i = 0; i < labels.length; i++) (labels[i] === 1 ? pos : neg).push(i);
  return { pos: Int32Array.from(pos), neg: Int32Array.from(neg) };
}

function percentileCi(estimate: number, stats: number[], level: number, nResamples: number, stratified: boolean): BootstrapCi {
  const sorted = Float64Array.from(stats).sort();
  const nValid = sorted.length;
  const mean = nValid ? sorted.reduce((a, b) => a + b, 0) / nValid : NaN;
  const se = nValid > 1 ? Math.sqrt(sorted.reduce((a, b) => a + (b - mean) ** 2, 0) / (nValid - 1)) : NaN;
  const alpha = 1 - level;
  return {
    estimate,
    lower: nValid ? quantileSorted(sorted, alpha / 2) : NaN,
    upper: nValid ? quantileSorted(sorted, 1 - alpha / 2) : NaN,
    level,
    se,
    nResamples,
    nValid,
    stratified,
  };
}

/**
 * AUROC with a percentile-bootstrap interval (default 2000 stratified resamples, 95%, seed 0).
 * The percentiles interpolate linearly between order statistics (numpy.quantile). Unstratified
 * resamples that miss a class are skipped (nValid counts the others).
 */
export function aurocBootstrapCi(scores: ArrayLike<number>, labels: ArrayLike<number>, opts: BootstrapOptions = {}): BootstrapCi {
  const { nPos, nNeg } = checkBinary('aurocBootstrapCi', scores, labels);
  if (nPos === 0 || nNeg === 0) throw new Error(`aurocBootstrapCi: labels need both classes (${nPos} positives, ${nNeg} negatives)`);
  const { nResamples, level, rng, stratified } = resolveBootstrap('aurocBootstrapCi', opts);
  const wa = new WeightedAuroc(scores);
  const { pos, neg } = classIndices(labels);
  const w = new Float64Array(scores.length);
  const stats: number[] = [];
  for (let b = 0; b < nResamples; b++) {
    drawWeights(w, rng, stratified, pos, neg);
    const v = wa.value(w, labels);
    if (Number.isFinite(v)) stats.push(v);
  }
  return percentileCi(auroc(scores, labels), stats, level, nResamples, stratified);
}

/**
 * Paired bootstrap of AUROC(scoresA) - AUROC(scoresB) on the same examples (the same resample
 * for both models): percentile interval of the difference, and a two-sided bootstrap p-value
 * 2 * min(P(diff* <= 0), P(diff* >= 0)), capped at 1.
 */
export function aurocDiffBootstrapCi(
  scoresA: ArrayLike<number>,
  scoresB: ArrayLike<number>,
  labels: ArrayLike<number>,
  opts: BootstrapOptions = {},
): BootstrapCi & { pValue: number } {
  const { nPos, nNeg } = checkBinary('aurocDiffBootstrapCi', scoresA, labels);
  checkBinary('aurocDiffBootstrapCi', scoresB, labels);
  if (nPos === 0 || nNeg === 0) throw new Error(`aurocDiffBootstrapCi: labels need both classes (${nPos} positives, ${nNeg} negatives)`);
  const { nResamples, level, rng, stratified } = resolveBootstrap('aurocDiffBootstrapCi', opts);
  const wa = new WeightedAuroc(scoresA);
  const wb = new WeightedAuroc(scoresB);
  const { pos, neg } = classIndices(labels);
  const w = new Float64Array(labels.length);
  const stats: number[] = [];
  let le = 0;
  let ge = 0;
  for (let b = 0; b < nResamples; b++) {
    drawWeights(w, rng, stratified, pos, neg);
    const d = wa.value(w, labels) - wb.value(w, labels);
    if (!Number.isFinite(d)) continue;
    stats.push(d);
    if (d <= 0) le++;
    if (d >= 0) ge++;
  }
  const ci = percentileCi(auroc(scoresA, labels) - auroc(scoresB, labels), stats, level, nResamples, stratified);
  return { ...ci, pValue: stats.length ? Math.min(1, (2 * Math.min(le, ge)) / stats.length) : NaN };
}

// ---------------------------------------------------------------------------------------------
// DeLong

export interface DelongCovariance {
  /** AUROC of each score vector (Mann-Whitney, ties one half). */
  aucs: number[];
  /** k x k covariance matrix of the AUROC estimates, S10 / m + S01 / n. */
  covariance: number[][];
  nPos: number;
  nNeg: number;
}

/**
 * DeLong's covariance of k correlated AUROCs on the same examples, by the fast algorithm of
 * Sun & Xu (2014): with midranks Tz over all m + n examples, Tx over the m positives and Ty over
 * the n negatives, the structural components are V10_i = (Tz_i - Tx_i) / n for positives and
 * V01_j = 1 - (Tz_j - Ty_j) / m for negatives; AUC = mean V10; S10, S01 their sample covariances
 * (divisors m - 1, n - 1); Cov = S10 / m + S01 / n. Needs at least 2 positives and 2 negatives.
 */
export function delongCovariance(scoreSets: ArrayLike<number>[], labels: ArrayLike<number>): DelongCovariance {
  if (!Array.isArray(scoreSets) || scoreSets.length === 0) throw new Error('delongCovariance: scoreSets must be a non-empty array of score arrays');
  let m = 0;
  let n = 0;
  for (const s of scoreSets) ({ nPos: m, nNeg: n } = checkBinary('delongCovariance', s, labels));
  if (m < 2 || n < 2) throw new Error(`delongCovariance: needs at least 2 positives and 2 negatives (${m} and ${n})`);
  const { pos, neg } = classIndices(labels);
  const k = scoreSets.length;
  const v10: Float64Array[] = [];
  const v01: Float64Array[] = [];
  const aucs: number[] = [];
  for (const s of scoreSets) {
    const x = Float64Array.from(pos, (i) => s[i]);
    const y = Float64Array.from(neg, (i) => s[i]);
    const z = new Float64Array(m + n);
    z.set(x, 0);
    z.set(y, m);
    const tx = rankAverage(x).ranks;
    const ty = rankAverage(y).ranks;
    const tz = rankAverage(z).ranks;
    const a = new Float64Array(m);
    const b = new Float64Array(n);
    let sum = 0;
    for (let i = 0; i < m; i++) {
      a[i] = (tz[i] - tx[i]) / n;
      sum += a[i];
    }
    for (let j = 0; j < n; j++) b[j] = 1 - (tz[m + j] - ty[j]) / m;
    v10.push(a);
    v01.push(b);
    aucs.push(sum / m);
  }
  const cov = (vs: Float64Array[], len: number) => {
    const means = vs.map((v) => v.reduce((p, q) => p + q, 0) / len);
    return vs.map((vr, r) =>
      vs.map((vs2, s) => {
        let acc = 0;
        for (let i = 0; i < len; i++) acc += (vr[i] - means[r]) * (vs2[i] - means[s]);
        return acc / (len - 1);
      }),
    );
  };
  const s10 = cov(v10, m);
  const s01 = cov(v01, n);
  const covariance = Array.from({ length: k }, (_, r) => Array.from({ length: k }, (_, s) => s10[r][s] / m + s01[r][s] / n));
  return { aucs, covariance, nPos: m, nNeg: n };
}

export interface DelongTest {
  auc1: number;
  auc2: number;
  /** auc1 - auc2 */
  diff: number;
  /** Var(auc1 - auc2) = V11 + V22 - 2 V12. */
  variance: number;
  se: number;
  z: number;
  /** Two-sided p-value 2 (1 - Phi(|z|)). */
  pValue: number;
  /** Normal interval of the difference at `level`. */
  lower: number;
  upper: number;
  level: number;
  covariance: number[][];
}

/**
 * DeLong's test of two correlated ROC curves (two models scored on the same examples).
 * When the variance is 0 (identical rankings), z is 0 with p = 1 if the AUROCs are equal.
 */
export function delongTest(scores1: ArrayLike<number>, scores2: ArrayLike<number>, labels: ArrayLike<number>, level = 0.95): DelongTest {
  checkSameLength('delongTest', 'scores1', scores1, 'scores2', scores2);
  checkLevel('delongTest', level);
  const { aucs, covariance } = delongCovariance([scores1, scores2], labels);
  const diff = aucs[0] - aucs[1];
  const variance = Math.max(0, covariance[0][0] + covariance[1][1] - 2 * covariance[0][1]);
  const se = Math.sqrt(variance);
  const z = se > 0 ? diff / se : diff === 0 ? 0 : Math.sign(diff) * Infinity;
  const half = normalQuantile((1 + level) / 2) * se;
  return {
    auc1: aucs[0],
    auc2: aucs[1],
    diff,
    variance,
    se,
    z,
    pValue: Math.min(1, 2 * normalSf(Math.abs(z))),
    lower: diff - half,
    upper: diff + half,
    level,
    covariance,
  };
}

/** DeLong's normal interval for one AUROC (clipped to [0, 1]), as pROC's ci.auc(method = "delong"). */
export function aurocDelongCi(scores: ArrayLike<number>, labels: ArrayLike<number>, level = 0.95): { auroc: number; variance: number; se: number; lower: number; upper: number; level: number } {
  checkLevel('aurocDelongCi', level);
  const { aucs, covariance } = delongCovariance([scores], labels);
  const variance = covariance[0][0];
  const se = Math.sqrt(variance);
  const half = normalQuantile((1 + level) / 2) * se;
  return { auroc: aucs[0], variance, se, lower: Math.max(0, aucs[0] - half), upper: Math.min(1, aucs[0] + half), level };
}
