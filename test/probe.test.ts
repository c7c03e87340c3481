import { describe, expect, it } from 'vitest';
import { crossValidatedProba, fitLogReg, fitStandardizer, predictProba, standardize, stratifiedFolds } from '../src/core/probe/logreg';
import { aurocOvr, auroc } from '../src/core/metrics/auroc';
import { Rng } from '../src/core/random';

describe('logistic regression probe', () => {
  it('separates a linearly separable problem and gives calibrated-looking probabilities', () => {
    const n = 200;
    const d = 2;
    const rng = new Rng(1);
    const x = new Float64Array(n * d);
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      y[i] = i % 2;
      x[i * 2] = (y[i] ? 1 : -1) + 0.3 * (rng.next() - 0.5);
      x[i * 2 + 1] = rng.next();
    }
    const m = fitLogReg(x, y, n, d, 2, { l2: 1e-3, iterations: 500 });
    const p = predictProba(m, x, n);
    const s = Float64Array.from({ length: n }, (_, i) => p[i * 2 + 1]);
    expect(auroc(s, y)).toBe(1);
    expect(p[1 * 2 + 1]).toBeGreaterThan(0.8); // example 1 is class 1
    expect(p[0]).toBeGreaterThan(0.8); // example 0 is class 0
  });

  it('stratifies folds so every fold has every class', () => {
    const y = Int32Array.from({ length: 30 }, (_, i) => (i < 10 ? 0 : i < 20 ? 1 : 2));
    const folds = stratifiedFolds(y, 5, 3);
    for (let f = 0; f < 5; f++) for (let c = 0; c < 3; c++) expect([...y].filter((v, i) => v === c && folds[i] === f).length).toBe(2);
  });

  it('cross-validated AUROC is near 0.5 on noise and high on signal, deterministically', () => {
    const n = 120;
    const d = 8;
    const rng = new Rng(5);
    const noise = Float64Array.from({ length: n * d }, () => rng.next());
    const y = Int32Array.from({ length: n }, (_, i) => i % 3);
    const pNoise = crossValidatedProba(noise, y, n, d, 3, 5, 1);
    expect(Math.abs(aurocOvr(pNoise, y, 3).macro - 0.5)).toBeLessThan(0.15);
    const signal = noise.slice();
    for (let i = 0; i < n; i++) signal[i * d + y[i]] += 1.5;
    const pSig = crossValidatedProba(signal, y, n, d, 3, 5, 1);
    expect(aurocOvr(pSig, y, 3).macro).toBeGreaterThan(0.9);
    expect([...crossValidatedProba(signal, y, n, d, 3, 5, 1)]).toEqual([...pSig]);
  });

  it('standardises with training statistics', () => {
    const x = Float64Array.from([1, 10, 3, 30]);
    const s = fitStandardizer(x, 2, 2);
    expect([...s.mean]).toEqual([2, 20]);
    expect([...standardize(x, 2, 2, s)]).toEqual([-1, -1, 1, 1]);
  });
});
