/**
 * Classification metrics by hand (src/core/metrics/classification.ts, auroc.ts, accumulators.ts):
 * every expected number below is worked out in the comments. Comparisons with sklearn on random
 * inputs are in metrics-reference.test.ts; bootstrap coverage in metrics-stats.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  auroc,
  aurocBootstrapCi,
  aurocDelongCi,
  aurocDiffBootstrapCi,
  AurocMetric,
  MeanMetric,
  ReconstructionMetric,
  meanSd,
  mse,
  ssim,
  averagePrecision,
  chooseThreshold,
  delongCovariance,
  delongTest,
  erfc,
  maxF1Threshold,
  prCurve,
  rocCurve,
  thresholdMetrics,
  youdenThreshold,
} from '../../../src/core/metrics';
import { Rng } from '../../../src/core/random';

// The example of sklearn's roc_curve documentation. Sorted by score, descending:
//   0.8 (pos), 0.4 (neg), 0.35 (pos), 0.1 (neg); P = 2, N = 2.
//   threshold 0.8 : TP 1 FP 0 -> TPR .5 FPR 0
//   threshold 0.4 : TP 1 FP 1 -> TPR .5 FPR .5
//   threshold 0.35: TP 2 FP 1 -> TPR 1  FPR .5
//   threshold 0.1 : TP 2 FP 2 -> TPR 1  FPR 1
// AUROC: pairs (pos, neg) ranked right: (.8,.1) (.8,.4) (.35,.1) = 3 of 4 -> 0.75.
const s = [0.1, 0.4, 0.35, 0.8];
const y = [0, 0, 1, 1];

describe('ROC and PR curves', () => {
  it('rocCurve gives sklearn points with thresholds[0] = Infinity', () => {
    const r = rocCurve(s, y);
    expect(Array.from(r.fpr)).toEqual([0, 0, 0.5, 0.5, 1]);
    expect(Array.from(r.tpr)).toEqual([0, 0.5, 0.5, 1, 1]);
    expect(Array.from(r.thresholds)).toEqual([Infinity, 0.8, 0.4, 0.35, 0.1]);
    expect(auroc(s, y)).toBe(0.75);
  });

  it('ties share one ROC point and count one half in AUROC', () => {
    // scores .5 .5 .5 .2, labels 1 0 1 0: one threshold .5 takes TP 2 FP 1; then .2 everything.
    // AUROC: each positive (.5) beats .2 (1) and ties .5 (1/2): (1.5 + 1.5) / 4 = 0.75.
    const r = rocCurve([0.5, 0.5, 0.5, 0.2], [1, 0, 1, 0]);
    expect(Array.from(r.fpr)).toEqual([0, 0.5, 1]);
    expect(Array.from(r.tpr)).toEqual([0, 1, 1]);
    expect(Array.from(r.thresholds)).toEqual([Infinity, 0.5, 0.2]);
    expect(auroc([0.5, 0.5, 0.5, 0.2], [1, 0, 1, 0])).toBe(0.75);
  });

  it('average precision and the PR curve', () => {
    // Descending: .8 -> R .5 P 1; .4 -> R .5 P 1/2; .35 -> R 1 P 2/3; .1 -> R 1 P 1/2.
    // AP = .5 * 1 + 0 * 1/2 + .5 * 2/3 + 0 = 5/6.
    expect(averagePrecision(s, y)).toBeCloseTo(5 / 6, 15);
    const pr = prCurve(s, y);
    expect(Array.from(pr.thresholds)).toEqual([0.1, 0.35, 0.4, 0.8]);
    expect(Array.from(pr.recall)).toEqual([1, 1, 0.5, 0.5, 0]);
    expect(Array.from(pr.precision).map((v) => +v.toFixed(12))).toEqual([0.5, +(2 / 3).toFixed(12), 0.5, 1, 1]);
  });

  it('errors name the function and the argument', () => {
    expect(() => rocCurve([0.1, 0.2, 0.3], [0, 1])).toThrow('rocCurve: scores and labels differ in length (3 vs 2)');
    expect(() => auroc([0.1, 0.2, 0.3], [0, 1])).toThrow('auroc: scores and labels differ in length (3 vs 2)');
    expect(() => rocCurve([0.1, 0.2], [0, 2])).toThrow('rocCurve: labels[1] is 2; labels must be 0 or 1');
    expect(() => rocCurve([0.1, NaN], [0, 1])).toThrow('rocCurve: scores[1] is not a finite number (NaN)');
    expect(() => rocCurve([0.1, 0.2], [1, 1])).toThrow('rocCurve: labels need both classes (2 positives, 0 negatives)');
    expect(auroc([0.1, NaN], [0, 1])).toBeNaN();
    expect(averagePrecision([0.1, 0.2], [0, 0])).toBeNaN();
  });
});

describe('thresholds', () => {
  it('metrics at a threshold (score >= threshold is positive)', () => {
    // At 0.35: predicted positive .4 .35 .8 -> TP 2 (.35 .8), FP 1 (.4), TN 1 (.1), FN 0.
    // sens 1, spec 1/2, PPV 2/3, NPV 1, accuracy 3/4, F1 = 4 / (4 + 1) = .8, J = .5
    const m = thresholdMetrics(s, y, 0.35);
    expect([m.tp, m.fp, m.tn, m.fn]).toEqual([2, 1, 1, 0]);
    expect(m.sensitivity).toBe(1);
    expect(m.specificity).toBe(0.5);
    expect(m.ppv).toBeCloseTo(2 / 3, 15);
    expect(m.npv).toBe(1);
    expect(m.accuracy).toBe(0.75);
    expect(m.f1).toBeCloseTo(0.8, 15);
    expect(m.youdenJ).toBe(0.5);
    // Above every score nothing is positive: PPV undefined.
    const none = thresholdMetrics(s, y, 0.9);
    expect(none.ppv).toBeNaN();
    expect(none.specificity).toBe(1);
    expect(none.f1).toBe(0);
  });

  it('Youden: J = .5 at .8 and at .35; the first (highest) wins; midpoint placement', () => {
    // J per threshold: .8 -> .5, .4 -> 0, .35 -> .5, .1 -> 0.
    const c = youdenThreshold(s, y);
    expect(c.threshold).toBe(0.8);
    expect(c.value).toBe(0.5);
    expect(c.metrics.sensitivity).toBe(0.5);
    expect(c.metrics.specificity).toBe(1);
    // midpoint between .8 and the next lower score .4
    expect(youdenThreshold(s, y, 'midpoint').threshold).toBeCloseTo(0.6, 15);
  });

  it('max F1 (the public code): F1 = 2/3, 1/2, 4/5, 2/3 -> .35', () => {
    const c = maxF1Threshold(s, y);
    expect(c.threshold).toBe(0.35);
    expect(c.value).toBeCloseTo(0.8, 15);
    expect(chooseThreshold(s, y, { method: 'maxF1' }).threshold).toBe(0.35);
  });

  it('chosen on validation, applied to test', () => {
    const val = youdenThreshold(s, y, 'midpoint'); // 0.6
    // Test: .9 (1) .7 (1) .2 (0) .5 (0) .65 (1): at .6 -> TP 3, FP 0, TN 2, FN 0.
    const test = thresholdMetrics([0.9, 0.7, 0.2, 0.5, 0.65], [1, 1, 0, 0, 1], val.threshold);
    expect([test.tp, test.fp, test.tn, test.fn]).toEqual([3, 0, 2, 0]);
    expect(test.sensitivity).toBe(1);
    expect(test.specificity).toBe(1);
  });
});

describe('DeLong', () => {
  // Model 1 = s: positives X = (.35, .8), negatives Y = (.1, .4).
  //   psi(.35, .1) = 1, psi(.35, .4) = 0, psi(.8, .) = 1 -> V10 = (.5, 1), V01 = (1 (for .1), .5 (for .4))
  //   S10 = var(.5, 1) = .125, S01 = .125 -> Var = .125/2 + .125/2 = .125
  // Model 2: every positive above every negative -> AUC 1, V10 = V01 = (1, 1), all (co)variances 0.
  // diff = -.25, Var(diff) = .125, z = -.25 / sqrt(.125) = -1/sqrt(2), p = erfc(|z| / sqrt 2) = erfc(.5).
  const s2 = [0.2, 0.1, 0.6, 0.3];
  it('covariance and test by hand', () => {
    const c = delongCovariance([s, s2], y);
    expect(c.aucs).toEqual([0.75, 1]);
    expect(c.covariance[0][0]).toBeCloseTo(0.125, 15);
    expect(c.covariance[1][1]).toBe(0);
    expect(c.covariance[0][1]).toBe(0);
    const t = delongTest(s, s2, y);
    expect(t.diff).toBe(-0.25);
    expect(t.variance).toBeCloseTo(0.125, 15);
    expect(t.z).toBeCloseTo(-Math.SQRT1_2, 14);
    expect(t.pValue).toBeCloseTo(erfc(0.5), 14);
    expect(t.pValue).toBeCloseTo(0.4795001221869535, 12);
  });

  it('identical rankings: variance 0, z 0, p 1; one-AUROC interval', () => {
    // (.3 .5 .4 .9) orders positives and negatives like s: the same structural components.
    const t = delongTest(s, [0.3, 0.5, 0.4, 0.9], y);
    expect(t.variance).toBe(0);
    expect(t.z).toBe(0);
    expect(t.pValue).toBe(1);
    // se = sqrt(.125); 95%: .75 -+ 1.959964 * .353553 = .75 -+ .692952 -> clipped to [.057048, 1]
    const ci = aurocDelongCi(s, y);
    expect(ci.se).toBeCloseTo(Math.sqrt(0.125), 15);
    expect(ci.lower).toBeCloseTo(0.75 - 1.959963984540054 * Math.sqrt(0.125), 12);
    expect(ci.upper).toBe(1);
  });

  it('needs 2 of each class and equal lengths', () => {
    expect(() => delongTest([0.1, 0.2, 0.3], [0.1, 0.2, 0.3], [0, 1, 1])).toThrow('delongCovariance: needs at least 2 positives and 2 negatives (2 and 1)');
    expect(() => delongTest([0.1, 0.2, 0.3], [0.1, 0.2], [0, 1, 1])).toThrow('delongTest: scores1 and scores2 differ in length (3 vs 2)');
  });
});

describe('bootstrap', () => {
  it('perfect separation gives [1, 1]; the same seed gives the same interval; stratified keeps both classes', () => {
    const sep = aurocBootstrapCi([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], { nResamples: 200 });
    expect([sep.estimate, sep.lower, sep.upper, sep.nValid]).toEqual([1, 1, 1, 200]);
    const rng = new Rng(3);
    const scores = Array.from({ length: 60 }, () => rng.next());
    const labels = scores.map((v, i) => (v + (i % 3) * 0.2 > 0.6 ? 1 : 0));
    const a = aurocBootstrapCi(scores, labels, { nResamples: 300, seed: 7 });
    const b = aurocBootstrapCi(scores, labels, { nResamples: 300, rng: new Rng(7) });
    expect(a).toEqual(b);
    expect(a.lower).toBeLessThan(a.estimate);
    expect(a.upper).toBeGreaterThan(a.estimate);
    // Unstratified resamples of a tiny set sometimes miss a class and are skipped.
    const u = aurocBootstrapCi([0.1, 0.9, 0.5], [0, 1, 0], { nResamples: 500, stratified: false, seed: 1 });
    expect(u.nValid).toBeLessThan(500);
    expect(u.nValid).toBeGreaterThan(300); // P(both classes) = 1 - (2/3)^3 - (1/3)^3 = 2/3
    expect(() => aurocBootstrapCi(scores, labels, { nResamples: 0 })).toThrow('aurocBootstrapCi: nResamples must be a positive integer, got 0');
    expect(() => aurocBootstrapCi(scores, labels, { level: 95 })).toThrow('aurocBootstrapCi: level must be in (0, 1), got 95');
  });

  it('paired bootstrap of an AUROC difference: zero for identical models, agrees with DeLong in sign and size', () => {
    const rng = new Rng(11);
    const n = 400;
    const labels = Array.from({ length: n }, (_, i) => (i % 2 ? 1 : 0));
    const a = labels.map((l) => rng.next() + 0.5 * l);
    const b = labels.map((l, i) => 0.6 * a[i] + 0.4 * rng.next() + 0.1 * l);
    const same = aurocDiffBootstrapCi(a, a, labels, { nResamples: 100 });
    expect([same.estimate, same.lower, same.upper, same.pValue]).toEqual([0, 0, 0, 1]);
    const d = aurocDiffBootstrapCi(a, b, labels, { nResamples: 1000, seed: 5 });
    const dl = delongTest(a, b, labels);
    expect(d.estimate).toBeCloseTo(dl.diff, 14);
    expect(Math.abs(d.se - dl.se) / dl.se).toBeLessThan(0.15);
    expect(Math.abs(d.lower - dl.lower)).toBeLessThan(0.01);
    expect(Math.abs(d.upper - dl.upper)).toBeLessThan(0.01);
  });
});

describe('AurocMetric accumulator', () => {
  it('batches give the same AUROC as all at once; reset; multi-class', () => {
    const m = new AurocMetric({ bootstrap: { nResamples: 50 } });
    m.update([0.1, 0.4], [0, 0]);
    m.update([0.35, 0.8], [1, 1]);
    expect(m.count).toBe(4);
    const r = m.compute();
    expect(r.auroc).toBe(0.75);
    expect([r.nPos, r.nNeg]).toEqual([2, 2]);
    expect(r.ci?.nResamples).toBe(50);
    expect(Array.from(m.values().scores)).toEqual(s);
    m.reset();
    expect(m.count).toBe(0);
    expect(m.compute().auroc).toBeNaN();
    // 3 classes, rows of probabilities; class 0 is ranked perfectly, others by hand below.
    const mc = new AurocMetric({ classes: 3 });
    mc.update([0.8, 0.1, 0.1, 0.1, 0.7, 0.2], [0, 1]);
    mc.update([0.2, 0.3, 0.5, 0.1, 0.2, 0.7], [2, 2]);
    // class 0: pos .8 vs .1 .2 .1 -> 1; class 1: pos .7 vs .1 .3 .2 -> 1; class 2: pos .5 .7 vs .1 .2 -> 1
    expect(mc.compute()).toMatchObject({ auroc: 1, perClass: [1, 1, 1], n: 4 });
    expect(() => mc.update([0.1, 0.2], [0])).toThrow('AurocMetric.update: pred has 2 values, expected target.length x classes = 1 x 3');
    expect(() => m.update([0.1], [3])).toThrow('AurocMetric.update: target[0] is 3; expected 0 or 1');
  });

  it('holds more than its initial buffer', () => {
    const m = new AurocMetric();
    for (let b = 0; b < 30; b++) m.update(Float64Array.from({ length: 100 }, (_, i) => i + b), Float64Array.from({ length: 100 }, (_, i) => (i >= 50 ? 1 : 0)));
    expect(m.count).toBe(3000);
    expect(m.compute().auroc).toBeGreaterThan(0.5);
  });
});

describe('MeanMetric and ReconstructionMetric (the loops\' image metrics)', () => {
  it('gives mean and sd per image and over the groups\' means, leaving non-finite values out', () => {
    const m = new MeanMetric();
    m.add('a', 1, 7);
    m.add('a', 3, 7);
    m.add('b', 10, 7);
    m.add('a', 8, 2);
    m.add('a', NaN, 2);
    const r = m.compute();
    expect(r.names).toEqual(['a', 'b']);
    expect(r.groups).toBe(2);
    expect(r.perItem.a).toEqual(meanSd([1, 3, 8]));
    expect(r.perGroup.a).toEqual(meanSd([2, 8]));
    // a group without the name does not count for it
    expect(r.perGroup.b).toEqual({ mean: 10, sd: 0, n: 1 });
    m.reset();
    expect(m.compute()).toEqual({ names: [], perItem: {}, perGroup: {}, groups: 0 });
  });

  it('scores each image of a batch by MSE, SSIM and masked MSE, grouped by volume', () => {
    const size = 12;
    const px = size * size;
    const rng = new Rng(5);
    const target = Float32Array.from({ length: 3 * px }, () => rng.next());
    const pred = Float32Array.from(target, (v) => v * 0.8 + 0.1 * rng.next());
    const mask = Float32Array.from({ length: 3 * px }, (_, i) => (i % px < px / 2 ? 1 : 0));
    const m = new ReconstructionMetric(size);
    m.update(pred.subarray(0, 2 * px), target.subarray(0, 2 * px), { mask: mask.subarray(0, 2 * px), groups: [0, 1] });
    m.update(pred.subarray(2 * px), target.subarray(2 * px), { mask: mask.subarray(2 * px), groups: [1] });
    expect(m.count).toBe(3);
    const r = m.compute();
    expect(r.names).toEqual(['mse', 'ssim', 'maskedMse']);
    const img = (a: Float32Array, k: number) => a.subarray(k * px, (k + 1) * px);
    const mses = [0, 1, 2].map((k) => mse(img(pred, k), img(target, k)));
    expect(r.perItem.mse).toEqual(meanSd(mses));
    expect(r.perGroup.mse).toEqual(meanSd([mses[0], (mses[1] + mses[2]) / 2]));
    expect(r.perItem.ssim.mean).toBeCloseTo(meanSd([0, 1, 2].map((k) => ssim(img(pred, k), img(target, k), size))).mean, 12);
    expect(() => m.update(pred.subarray(0, 5), target.subarray(0, 5))).toThrow('not a multiple of size x size');
  });

  it('AurocMetric gives cross-entropy and accuracy for several classes, and NaN for a NaN score', () => {
    const mc = new AurocMetric({ classes: 3 });
    mc.update([0.8, 0.1, 0.1, 0.2, 0.3, 0.5], [0, 1]);
    const r = mc.compute();
    expect(r.accuracy).toBe(0.5);
    expect(r.crossEntropy).toBeCloseTo(-(Math.log(0.8) + Math.log(0.3)) / 2, 12);
    const m = new AurocMetric();
    m.update([0.1, NaN, 0.7], [0, 1, 1]);
    expect(m.compute().auroc).toBeNaN();
  });
});
