/**
 * Patient-level statistics (src/core/metrics/cluster.ts) by hand and by their properties on
 * seeded simulated data: the resampler, the AUROC and Dice intervals, the paired test and how it
 * behaves with few patients (where slice-level DeLong is far too sure), Holm, the warnings, and
 * the accumulators that keep each slice's patient. The comparison with an independent numpy/scipy
 * implementation is metrics-cluster-reference.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  aurocBootstrapCi,
  aurocClusterCi,
  aurocDiffClusterTest,
  AurocMetric,
  ClusterResampler,
  clusterDiffTest,
  clusterIndex,
  delongTest,
  DiceMetric,
  diceClusterCi,
  heldOutWarnings,
  holmAdjust,
  weightedPooledDice,
} from '../../../src/core/metrics';
import { Rng } from '../../../src/core/random';

/** K patients x n slices; a patient effect on the score; patient-level prevalence; two null models. */
function nullData(rng: Rng, K: number, n: number): { a: number[]; b: number[]; y: number[]; p: number[] } {
  const a: number[] = [];
  const b: number[] = [];
  const y: number[] = [];
  const p: number[] = [];
  for (let k = 0; k < K; k++) {
    const u = rng.normal();
    const ua = 1.0 * rng.normal();
    const ub = 1.0 * rng.normal();
    const prev = 0.2 + 0.6 * rng.next();
    for (let i = 0; i < n; i++) {
      const label = rng.next() < prev ? 1 : 0;
      const latent = 0.7 * label + u + 0.5 * rng.normal();
      y.push(label);
      p.push(k);
      // Each model: the shared latent, its own patient effect and slice noise (same distribution).
      a.push(latent + ua + 0.4 * rng.normal());
      b.push(latent + ub + 0.4 * rng.normal());
    }
  }
  return { a, b, y, p };
}

describe('resampling patients', () => {
  it('indexes clusters in first-seen order and weighs each slice by its patient’s draws', () => {
    expect(Array.from(clusterIndex(['b', 'a', 'b', 'c']).index)).toEqual([0, 1, 0, 2]);
    expect(clusterIndex([7, 7, 3]).count).toBe(2);
    const r = new ClusterResampler([5, 5, 9, 9, 9, 2], { nResamples: 50, seed: 3 });
    expect(r.clusters).toBe(3);
    const w = new Float64Array(6);
    for (let b = 0; b < 50; b++) {
      r.weights(b, w);
      // 3 patients drawn per resample; slices of a patient share its count
      expect(w[0] + w[2] + w[5]).toBe(3);
      expect(w[1]).toBe(w[0]);
      expect(w[3]).toBe(w[2]);
      expect(w[4]).toBe(w[2]);
    }
    // the same seed draws the same resamples
    const again = new ClusterResampler([5, 5, 9, 9, 9, 2], { nResamples: 50, seed: 3 });
    expect(Array.from(again.replicate((x) => x[0] * 10 + x[2]))).toEqual(Array.from(r.replicate((x) => x[0] * 10 + x[2])));
    expect(() => new ClusterResampler([], {})).toThrow(/no examples/);
    expect(() => aurocClusterCi([0.1, 0.2], [0, 1], [1, 2, 3])).toThrow(/3 cluster entries for 2 examples/);
  });

  it('with one slice per patient, the cluster bootstrap is the ordinary (unstratified) bootstrap', () => {
    const rng = new Rng(11);
    const y = Array.from({ length: 300 }, () => (rng.next() < 0.4 ? 1 : 0));
    const s = y.map((v) => v + rng.normal());
    const c = aurocClusterCi(s, y, y.map((_, i) => i), { nResamples: 4000, seed: 1 });
    const d = aurocBootstrapCi(s, y, { nResamples: 4000, seed: 2, stratified: false });
    expect(c.estimate).toBe(d.estimate);
    expect(Math.abs(c.lower - d.lower)).toBeLessThan(0.01);
    expect(Math.abs(c.upper - d.upper)).toBeLessThan(0.01);
    expect(c.clusters).toBe(300);
  });

  it('duplicated slices: the patient interval is wider than the slice interval by about sqrt(slices per patient)', () => {
    // 60 patients, each one score and one label, repeated on 16 identical slices.
    const rng = new Rng(5);
    const m = 16;
    const s: number[] = [];
    const y: number[] = [];
    const p: number[] = [];
    for (let k = 0; k < 60; k++) {
      const label = k % 3 === 0 ? 1 : 0;
      const score = label + rng.normal();
      for (let i = 0; i < m; i++) (s.push(score), y.push(label), p.push(k));
    }
    const slice = aurocBootstrapCi(s, y, { nResamples: 4000, seed: 1, stratified: false });
    const patient = aurocClusterCi(s, y, p, { nResamples: 4000, seed: 1 });
    const ratio = (patient.upper - patient.lower) / (slice.upper - slice.lower);
    expect(ratio).toBeGreaterThan(Math.sqrt(m) * 0.8);
    expect(ratio).toBeLessThan(Math.sqrt(m) * 1.25);
    expect(patient.se / slice.se).toBeGreaterThan(Math.sqrt(m) * 0.8);
  });

  it('pooled Dice of the drawn patients', () => {
    const counts = [
      { tp: 8, fp: 2, fn: 0 },
      { tp: 0, fp: 0, fn: 0 },
      { tp: 1, fp: 4, fn: 5 },
    ];
    expect(weightedPooledDice(counts)).toBeCloseTo(18 / (18 + 11), 15);
    expect(weightedPooledDice(counts, [2, 5, 0])).toBe(32 / 36);
    expect(weightedPooledDice([{ tp: 0, fp: 0, fn: 0 }])).toBeNaN();
    const ci = diceClusterCi(counts, ['x', 'x', 'y'], { nResamples: 500, seed: 1 });
    expect(ci.estimate).toBeCloseTo(18 / 29, 15);
    // two patients: Dice of x alone (16/18), of y alone (2/11) or of both
    expect(ci.lower).toBeGreaterThanOrEqual(2 / 11 - 1e-12);
    expect(ci.upper).toBeLessThanOrEqual(16 / 18 + 1e-12);
  });
});

describe('paired comparison of two models on the same patients', () => {
  it('identical models: difference 0, p 1; one patient: no test', () => {
    const rng = new Rng(2);
    const { a, y, p } = nullData(rng, 8, 10);
    const t = aurocDiffClusterTest([{ a, b: a }], y, p, { nResamples: 200 });
    expect(t).toMatchObject({ estimate: 0, pValue: 1, lower: 0, upper: 0, clusters: 8, df: 7 });
    const one = clusterDiffTest(0.1, [0.1, 0.12, 0.08], 1);
    expect(one.pValue).toBeNaN();
    // no variation across resamples but a difference: untestable, not p = 0
    expect(clusterDiffTest(0.1, [0.1, 0.1, 0.1], 2).pValue).toBeNaN();
  });

  it('a real difference on 40 patients is found; pooling seeds averages the differences', () => {
    const rng = new Rng(9);
    const { b, y, p } = nullData(rng, 40, 12);
    const good = b.map((v, i) => v + 1.5 * y[i] + 0.2 * rng.normal());
    const t = aurocDiffClusterTest([{ a: good, b }], y, p, { nResamples: 1000, seed: 1 });
    expect(t.estimate).toBeGreaterThan(0.1);
    expect(t.pValue).toBeLessThan(0.001);
    expect(t.lower).toBeGreaterThan(0);
    expect(t.percentile.pValue).toBeLessThan(0.01);
    const pooled = aurocDiffClusterTest([{ a: good, b }, { a: b, b }], y, p, { nResamples: 1000, seed: 1 });
    expect(pooled.estimate).toBeCloseTo(t.estimate / 2, 12);
    expect(pooled.aurocB).toBeCloseTo(t.aurocB, 12);
  });

  it('null data from 2 test patients: slice-level DeLong rejects often, the patient-level test at most at its level', () => {
    const rng = new Rng(2024);
    let delong = 0;
    let patient = 0;
    let percentile = 0;
    let sims = 0;
    let smallestPatientP = 1;
    while (sims < 200) {
      const { a, b, y, p } = nullData(rng, 2, 16);
      const pos = y.reduce((s, v) => s + v, 0);
      if (pos < 2 || y.length - pos < 2) continue;
      sims++;
      if (delongTest(a, b, y).pValue < 0.05) delong++;
      const t = aurocDiffClusterTest([{ a, b }], y, p, { nResamples: 300, seed: sims });
      if (t.pValue < 0.05) patient++;
      if (t.percentile.pValue < 0.05) percentile++;
      if (Number.isFinite(t.pValue)) smallestPatientP = Math.min(smallestPatientP, t.pValue);
    }
    console.log(`[null, 2 patients x 16 slices, ${sims} datasets] rejections at 0.05: slice-level DeLong ${delong}, patient-level ${patient}, percentile bootstrap p ${percentile}; smallest patient-level p ${smallestPatientP.toFixed(3)}`);
    // DeLong treats 32 slices as independent: it finds a "difference" in about a fifth of null datasets.
    expect(delong / sims).toBeGreaterThan(0.12);
    // The patient-level test with 1 degree of freedom does not; the plain percentile p would.
    expect(patient / sims).toBeLessThanOrEqual(0.05);
    expect(percentile / sims).toBeGreaterThan(0.15);
    expect(smallestPatientP).toBeGreaterThan(0.02);
  });

  it('null data from 30 patients: the patient-level test rejects near its level', () => {
    const rng = new Rng(77);
    let rejections = 0;
    const sims = 120;
    for (let s = 0; s < sims; s++) {
      const { a, b, y, p } = nullData(rng, 30, 8);
      if (aurocDiffClusterTest([{ a, b }], y, p, { nResamples: 200, seed: s }).pValue < 0.05) rejections++;
    }
    expect(rejections / sims).toBeLessThan(0.1);
  });
});

describe('Holm and the warnings', () => {
  it('Holm step-down by hand, NaN kept out of the family', () => {
    // sorted 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1, raised to 0.06)
    const adj = holmAdjust([0.01, 0.04, 0.03, 0.005]);
    [0.03, 0.06, 0.06, 0.02].forEach((v, i) => expect(adj[i]).toBeCloseTo(v, 15));
    const withNaN = holmAdjust([0.02, NaN, 0.5]);
    expect(withNaN[0]).toBeCloseTo(0.04, 15);
    expect(withNaN[1]).toBeNaN();
    expect(withNaN[2]).toBe(0.5);
    expect(holmAdjust([0.6, 0.7])).toEqual([1, 1]);
    expect(holmAdjust([])).toEqual([]);
  });

  it('warns below 10 patients or 20 positives, and says how many', () => {
    expect(heldOutWarnings({ what: 'test split', patients: 10, positives: 20 })).toEqual([]);
    const w = heldOutWarnings({ what: 'test split', patients: 2, positives: 7, positivePatients: 1 });
    expect(w).toHaveLength(2);
    expect(w[0]).toMatch(/^the test split has 2 patients \(fewer than 10\)/);
    expect(w[1]).toMatch(/^the test split has 7 positive slices from 1 patient \(fewer than 20\)/);
    expect(heldOutWarnings({ what: 'evaluated test split', patients: 1 })[0]).toMatch(/has 1 patient \(/);
    expect(heldOutWarnings({ what: 'test split', patients: 12, positives: 3, positivesName: 'slices with a nodule mask' })).toEqual([
      'the test split has 3 slices with a nodule mask (fewer than 20): the estimates are imprecise',
    ]);
  });
});

describe('accumulators keep each slice’s patient', () => {
  it('AurocMetric gives the patient-level interval when every batch says whose slices they are', () => {
    const rng = new Rng(4);
    const { a, y, p } = nullData(rng, 12, 10);
    const m = new AurocMetric({ clusterBootstrap: { nResamples: 300, seed: 5 } });
    for (let i = 0; i < a.length; i += 7) m.update(a.slice(i, i + 7), y.slice(i, i + 7), p.slice(i, i + 7));
    const r = m.compute();
    expect(r.clusters).toBe(12);
    expect(r.clusterCi).toEqual(aurocClusterCi(a, y, p, { nResamples: 300, seed: 5 }));
    expect(Array.from(m.values().clusters!)).toEqual(p);
    // a batch without patients: no patient-level interval
    m.update([0.5], [1]);
    expect(m.compute().clusterCi).toBeUndefined();
    expect(m.values().clusters).toBeUndefined();
    m.reset();
    m.update([0.2, 0.8], [0, 1], [3, 4]);
    expect(m.compute().clusters).toBe(2);
    expect(() => m.update([0.1], [0], [1, 2])).toThrow(/clusters and target differ in length/);
  });

  it('DiceMetric keeps per-slice counts with the patients', () => {
    const d = new DiceMetric({ imageSize: 4 });
    d.update([1, 1, 0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0], [0, 1]);
    const v = d.values();
    expect(v.counts).toEqual([
      { tp: 1, fp: 1, fn: 0 },
      { tp: 0, fp: 0, fn: 0 },
    ]);
    expect(Array.from(v.clusters!)).toEqual([0, 1]);
    expect(() => d.update([1, 0, 0, 0], [1, 0, 0, 0], [0, 1])).toThrow(/2 clusters for 1 images/);
  });
});
