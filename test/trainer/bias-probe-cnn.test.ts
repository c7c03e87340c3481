/**
 * The bias probe's baseline (src/trainer/bias-probe.ts cnnCrossValidatedProba): a CNN trained from
 * scratch per fold on raw slices, predicting its held-out fold. On images whose class is a visible
 * pattern it must score high out of fold; on labels unrelated to the images, near chance; every
 * example gets a probability row from the fold that held it out.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { auroc } from '../../src/core/metrics/auroc';
import { Rng } from '../../src/core/random';
import { stratifiedFolds } from '../../src/core/probe/logreg';
import { initBackend } from '../../src/trainer/backend';
import { cnnBaselineName, cnnCrossValidatedProba, DEFAULT_CNN_BASELINE } from '../../src/trainer/bias-probe';

beforeAll(async () => {
  await initBackend({ force: 'wasm' });
});

/** n images of size x size: class 1 has a bright square somewhere in its middle, class 0 none; both noisy. */
function images(n: number, size: number, seed: number): { x: Float32Array; y: Int32Array } {
  const r = new Rng(seed);
  const x = new Float32Array(n * size * size);
  const y = Int32Array.from({ length: n }, (_, i) => i % 2);
  for (let i = 0; i < n; i++) {
    const o = i * size * size;
    for (let p = 0; p < size * size; p++) x[o + p] = 0.3 + 0.2 * r.next();
    if (y[i]) {
      const cx = 4 + r.int(size - 16);
      const cy = 4 + r.int(size - 16);
      for (let yy = cy; yy < cy + 8; yy++) for (let xx = cx; xx < cx + 8; xx++) x[o + yy * size + xx] = 0.95;
    }
  }
  return { x, y };
}

describe('the CNN baseline of the bias probe', () => {
  it('learns a visible class from scratch, scored out of fold', () => {
    const n = 24;
    const size = 32;
    const { x, y } = images(n, size, 3);
    const p = cnnCrossValidatedProba(x, size, y, n, 2, 3, 1, { preset: 'tiny', size, steps: 40, batch: 8, lr: 3e-3 });
    // every example has a probability row (each from the fold that held it out)
    for (let i = 0; i < n; i++) expect(p[i * 2] + p[i * 2 + 1]).toBeCloseTo(1, 5);
    expect(auroc(Float64Array.from({ length: n }, (_, i) => p[i * 2 + 1]), y)).toBeGreaterThan(0.9);
    // the same seed, the same folds and probabilities
    expect(Array.from(cnnCrossValidatedProba(x, size, y, n, 2, 3, 1, { preset: 'tiny', size, steps: 40, batch: 8, lr: 3e-3 }))).toEqual(Array.from(p));
  }, 240_000);

  it('is near chance on labels unrelated to the images', () => {
    const n = 24;
    const size = 32;
    const noise = new Rng(9);
    const y = Int32Array.from({ length: n }, (_, i) => (i < n / 2 ? 0 : 1));
    for (let i = n - 1; i > 0; i--) {
      const j = noise.int(i + 1);
      [y[i], y[j]] = [y[j], y[i]];
    }
    // pure noise images, shuffled labels
    const p = cnnCrossValidatedProba(new Float32Array(n * size * size).map(() => 0.3 + 0.2 * noise.next()), size, y, n, 2, 3, 1, { preset: 'tiny', size, steps: 20, batch: 8, lr: 3e-3 });
    expect(Math.abs(auroc(Float64Array.from({ length: n }, (_, i) => p[i * 2 + 1]), y) - 0.5)).toBeLessThan(0.3);
    expect(stratifiedFolds(y, 3, 1).length).toBe(n);
  }, 240_000);

  it('is named for the report with its settings', () => {
    expect(cnnBaselineName(DEFAULT_CNN_BASELINE)).toBe('raw slice: CNN from scratch (encoder-classifier, tiny preset, 64x64 px)');
  });
});
