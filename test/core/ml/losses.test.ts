import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { compositeLoss, crossEntropy, gaussianWindow, maskedMse, mse, ssim } from '../../../src/core/ml/losses';
import { vectorQuantize } from '../../../src/core/ml/vqvae';
import reference from './reference_numbers.json';

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

const num = (t: tf.Tensor) => t.dataSync()[0];

describe('hand-computed losses', () => {
  it('mse and masked mse', () => {
    tf.tidy(() => {
      const a = tf.tensor4d([1, 2, 0, 4], [1, 2, 2, 1]);
      const b = tf.tensor4d([3, 5, 0, 1], [1, 2, 2, 1]);
      expect(num(mse(a, b))).toBeCloseTo((4 + 9 + 0 + 9) / 4, 6);
      const mask = tf.tensor4d([1, 0, 1, 0], [1, 2, 2, 1]);
      expect(num(maskedMse(a, b, mask))).toBeCloseTo((4 + 0) / 2, 6);
      expect(num(maskedMse(a, b, tf.zerosLike(mask)))).toBe(0);
    });
  });
  it('cross-entropy', () => {
    tf.tidy(() => {
      expect(num(crossEntropy(tf.tensor2d([[0, 0]]), [0]))).toBeCloseTo(Math.log(2), 6);
      // logits [ln1, ln2, ln3] label 2: -ln(3/6)
      expect(num(crossEntropy(tf.tensor2d([[0, Math.log(2), Math.log(3)], [5, 0, 0]]), new Int32Array([2, 0])))).toBeCloseTo(
        (Math.log(2) + Math.log(1 + 2 * Math.exp(-5))) / 2, 6);
    });
  });
  it('gaussian window is normalised and symmetric', () => {
    const g = gaussianWindow(11, 1.5);
    expect(g.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 6);
    expect(g[0]).toBeCloseTo(g[10], 7);
    expect(g[5] / g[4]).toBeCloseTo(Math.exp(1 / (2 * 1.5 * 1.5)), 5);
  });
  it('vector quantiser: nearest code, loss, straight-through and codebook gradients', () => {
    tf.tidy(() => {
      const z = tf.tensor4d([0.1, 0.2, 0.9, 1.2], [1, 1, 2, 2]);
      const e = tf.tensor2d([[0, 0], [1, 1], [-1, 0]]);
      const r = vectorQuantize(z, e, 0.25);
      expect(Array.from(r.indices.dataSync())).toEqual([0, 1]);
      expect(Array.from(r.q.dataSync())).toEqual([0, 0, 1, 1]);
      const sq = (0.01 + 0.04 + 0.01 + 0.04) / 4;
      expect(num(r.loss)).toBeCloseTo(sq * 1.25, 6);
      const [dz, de] = tf.grads((zz: tf.Tensor, ee: tf.Tensor) => {
        const o = vectorQuantize(zz as tf.Tensor4D, ee as tf.Tensor2D, 0.25);
        return tf.add(o.loss, tf.sum(o.q));
      })([z, e]);
      // d/dz: 0.25 * 2 (z - q) / 4 + 1 (straight-through of sum(q))
      const dzExp = [0.1, 0.2, -0.1, 0.2].map((d) => 1 + (0.25 * 2 * d) / 4);
      Array.from(dz.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(dzExp[i], 6));
      // d/de: 2 (q - z) / 4 summed per code, 0 for unused codes
      const deExp = [-0.1 / 2, -0.2 / 2, 0.1 / 2, -0.2 / 2, 0, 0];
      Array.from(de.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(deExp[i], 6));
    });
  });
  it('composite loss weights', () => {
    tf.tidy(() => {
      const out = tf.tensor4d(Array.from({ length: 2 * 12 * 12 }, (_, i) => (i % 7) / 7), [2, 12, 12, 1]);
      const tgt = tf.tensor4d(Array.from({ length: 2 * 12 * 12 }, (_, i) => (i % 5) / 5), [2, 12, 12, 1]);
      const mask = tf.tensor4d(Array.from({ length: 2 * 12 * 12 }, (_, i) => (i % 3 === 0 ? 1 : 0)), [2, 12, 12, 1]);
      const vq = tf.scalar(0.3);
      const t = compositeLoss(out, tgt, vq, mask);
      const expected = 0.2 * num(t.mse) + 0.2 * num(t.maskedMse) + 0.8 * 0.3 - 0.1 * num(t.ssim);
      expect(num(t.total)).toBeCloseTo(expected, 6);
      const t2 = compositeLoss(out, tgt, vq, null, { mse: 1, vq: 0, ssim: 0 });
      expect(num(t2.total)).toBeCloseTo(num(t.mse), 6);
      expect(num(t2.maskedMse)).toBe(0);
    });
  });
});

describe('SSIM against an independent numpy/scipy computation (reference_numbers.py)', () => {
  for (const c of reference.ssim) {
    it(`shape [${c.shape}]`, () => {
      tf.tidy(() => {
        const shape = c.shape as [number, number, number, number];
        const a = tf.tensor4d(c.a, shape);
        const b = tf.tensor4d(c.b, shape);
        expect(Math.abs(num(ssim(a, b)) - c.ssim)).toBeLessThan(1e-5);
        expect(Math.abs(num(ssim(a, a)) - c.ssim_self)).toBeLessThan(1e-5);
        // symmetric and differentiable
        expect(Math.abs(num(ssim(b, a)) - c.ssim)).toBeLessThan(1e-5);
        const g = tf.grad((x: tf.Tensor) => ssim(x as tf.Tensor4D, b))(a);
        expect(Number.isFinite(tf.sum(tf.abs(g)).dataSync()[0])).toBe(true);
      });
    });
  }
  it('gradient matches a finite difference', () => {
    tf.tidy(() => {
      const c = reference.ssim[0];
      const shape = c.shape as [number, number, number, number];
      const a = tf.tensor4d(c.a, shape);
      const b = tf.tensor4d(c.b, shape);
      const g = tf.grad((x: tf.Tensor) => ssim(x as tf.Tensor4D, b))(a).dataSync();
      const idx = 5 * 16 + 7;
      const h = 1e-2;
      const bump = (d: number) => {
        const v = Float32Array.from(c.a);
        v[idx] += d;
        return num(ssim(tf.tensor4d(v, shape), b));
      };
      const fd = (bump(h) - bump(-h)) / (2 * h);
      expect(Math.abs(g[idx] - fd)).toBeLessThan(2e-4 + 0.02 * Math.abs(fd));
    });
  });
});
