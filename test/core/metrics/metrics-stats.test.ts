/**
 * Statistics helpers by hand (src/core/metrics/stats.ts), and the coverage of the AUROC intervals
 * on simulated data with a known AUROC (seeded, so the counts below are exact and stable).
 */
import { describe, expect, it } from 'vitest';
import {
  aurocBootstrapCi,
  aurocDelongCi,
  mannWhitneyU,
  meanCi,
  normalCdf,
  normalQuantile,
  pairedTTest,
  quantile,
  studentTQuantile,
  wilcoxonSignedRank,
  wilsonInterval,
} from '../../../src/core/metrics';
import { Rng } from '../../../src/core/random';

describe('intervals', () => {
  it('mean and t interval over seeds', () => {
    // 1..5: mean 3, sd sqrt(2.5), se sqrt(.5), t(.975, 4) = 2.7764451051977987 -> 3 -+ 1.96324
    const m = meanCi([1, 2, 3, 4, 5]);
    expect(m.mean).toBe(3);
    expect(m.sd).toBeCloseTo(Math.sqrt(2.5), 15);
    expect(m.halfWidth).toBeCloseTo(2.7764451051977987 * Math.sqrt(0.5), 12);
    expect(m.lower).toBeCloseTo(1.036757, 6);
    expect(m.upper).toBeCloseTo(4.963243, 6);
    // NaN runs are dropped; one value has no interval.
    expect(meanCi([2, NaN]).n).toBe(1);
    expect(meanCi([2]).lower).toBeNaN();
    expect(studentTQuantile(0.975, 1)).toBeCloseTo(12.706204736174707, 9);
    expect(normalQuantile(0.975)).toBeCloseTo(1.959963984540054, 14);
    expect(normalCdf(0)).toBe(0.5);
  });

  it('Wilson interval', () => {
    // 8/10, z = 1.959964, z^2 = 3.841459: centre (.8 + .192073) / 1.384146 = .716740,
    // half 1.959964 sqrt(.016 + .009604) / 1.384146 = .226578 -> [.490162, .943318]
    const w = wilsonInterval(8, 10);
    expect(w.p).toBe(0.8);
    expect(w.lower).toBeCloseTo(0.490162, 6);
    expect(w.upper).toBeCloseTo(0.943318, 6);
    // 0/10: [0, z^2/n / (1 + z^2/n)] = [0, .384146 / 1.384146] = [0, .277533]
    const z = wilsonInterval(0, 10);
    expect(z.lower).toBe(0);
    expect(z.upper).toBeCloseTo(0.3841459 / 1.3841459, 6);
    expect(() => wilsonInterval(11, 10)).toThrow('wilsonInterval: successes must be in [0, n = 10], got 11');
  });

  it('quantiles interpolate like numpy', () => {
    // [1, 2, 3, 4]: q .25 -> position .75 -> 1.75; q .5 -> 2.5
    expect(quantile([4, 1, 3, 2], 0.25)).toBe(1.75);
    expect(quantile([4, 1, 3, 2], 0.5)).toBe(2.5);
  });
});

describe('tests', () => {
  it('Mann-Whitney exact: x below all of y', () => {
    // U1 = 0, U2 = 9; P(U >= 9) = 1 / C(6, 3) = 1/20, two-sided 0.1
    const r = mannWhitneyU([1, 2, 3], [4, 5, 6]);
    expect(r.statistic).toBe(0);
    expect(r.method).toBe('exact');
    expect(r.pValue).toBeCloseTo(0.1, 15);
  });

  it('Wilcoxon exact: all five differences positive', () => {
    // ranks 1..5 all positive: R+ = 15, R- = 0, T = 0; P(R+ = 15) = 1/32, two-sided 1/16
    const r = wilcoxonSignedRank([2, 4, 6, 8, 10], [1, 2, 3, 4, 5]);
    expect(r.statistic).toBe(0);
    expect(r.pValue).toBe(0.0625);
  });

  it('paired t: differences 1..5', () => {
    // mean 3, se sqrt(.5): t = 3 / sqrt(.5) = 4.242641, df 4
    const r = pairedTTest([2, 4, 6, 8, 10], [1, 2, 3, 4, 5]);
    expect(r.statistic).toBeCloseTo(3 / Math.sqrt(0.5), 14);
    expect(r.df).toBe(4);
    expect(r.pValue).toBeCloseTo(0.013236, 5); // scipy.stats.ttest_rel
    expect(() => pairedTTest([1, 2], [1])).toThrow('pairedTTest: x and y differ in length (2 vs 1)');
  });
});

describe('AUROC interval coverage (binormal data, true AUROC = Phi(d / sqrt 2))', () => {
  function gauss(rng: Rng): number {
    const u = 1 - rng.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
  }
  it('stratified percentile bootstrap and DeLong cover about 95% of 200 simulated studies', () => {
    const d = 1;
    const truth = normalCdf(d / Math.SQRT2); // 0.760250
    const rng = new Rng(12345);
    const nPos = 40;
    const nNeg = 60;
    let coverBoot = 0;
    let coverDelong = 0;
    const studies = 200;
    for (let s = 0; s < studies; s++) {
      const scores: number[] = [];
      const labels: number[] = [];
      for (let i = 0; i < nPos; i++) (scores.push(gauss(rng) + d), labels.push(1));
      for (let i = 0; i < nNeg; i++) (scores.push(gauss(rng)), labels.push(0));
      const b = aurocBootstrapCi(scores, labels, { nResamples: 400, rng });
      if (b.lower <= truth && truth <= b.upper) coverBoot++;
      const dl = aurocDelongCi(scores, labels);
      if (dl.lower <= truth && truth <= dl.upper) coverDelong++;
    }
    console.log(`[metrics-stats.test] coverage of 95% intervals over ${studies} studies: bootstrap ${coverBoot / studies}, DeLong ${coverDelong / studies}`);
    // Binomial sd of a 95% coverage estimate over 200 studies is 1.5%: accept 89-99%.
    expect(coverBoot / studies).toBeGreaterThan(0.89);
    expect(coverBoot / studies).toBeLessThan(0.99);
    expect(coverDelong / studies).toBeGreaterThan(0.89);
    expect(coverDelong / studies).toBeLessThan(0.99);
  });
});
