import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type BnActivation, activationFused, applyActivation, batchNormAct, bnActFused, setBnActEnabled } from '../../../src/core/ml/bn-act';
import { mulberry32, uniformArray } from '../../../src/core/ml/layers';
import { initBackend } from '../../../src/trainer/backend';

/** Values uniform in [offset - spread, offset + spread) per channel-independent seed. */
function rand(shape: number[], seed: number, spread = 1, offset = 0): tf.Tensor {
  const v = uniformArray(shape.reduce((a, b) => a * b, 1), spread, mulberry32(seed));
  for (let i = 0; i < v.length; i++) v[i] += offset;
  return tf.tensor(v, shape);
}

function maxRelErr(got: tf.Tensor, want: tf.Tensor): number {
  const a = got.dataSync(), b = want.dataSync();
  expect(a.length).toBe(b.length);
  let err = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return err / scale;
}

interface Result { y: tf.Tensor; mean: tf.Tensor; variance: tf.Tensor; count: number; dx: tf.Tensor; dg: tf.Tensor; db: tf.Tensor }

/** Forward, statistics and the three gradients of sum(y * w) for a fixed weighting w. */
function run(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, w: tf.Tensor, act: BnActivation, fused: boolean): Result {
  setBnActEnabled(fused);
  let out: { y: tf.Tensor; mean: tf.Tensor; variance: tf.Tensor; count: number } | null = null;
  const grads = tf.grads((xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
    const { y, stats } = batchNormAct(xx, g as tf.Tensor1D, b as tf.Tensor1D, act);
    out = { y: tf.keep(y.clone()), mean: stats.mean, variance: stats.variance, count: stats.count };
    return tf.sum(tf.mul(y, w));
  });
  const [dx, dg, db] = grads([x, gamma, beta]);
  return { ...out!, dx, dg, db };
}

beforeAll(async () => {
  await initBackend({ force: 'wasm', wasmThreads: 1 });
});
afterEach(() => setBnActEnabled(true));

const ACTS: [string, BnActivation][] = [['LeakyReLU 0.2', { leakyRelu: 0.2 }], ['ReLU', 'relu'], ['none', 'none']];

describe('fused BatchNorm + activation on the wasm heap', () => {
  // shapes: rank 4 as in the models (rows not a multiple of the 64-row chunk: 2*5*7 = 70), a large
  // one (8x32x32x64: 8192 rows per channel), rank 2;
  // one offset mean (x around 30, spread 2); 1 and 2 channels (4 lanes: 4 or 2 pixels a vector)
  const cases: [number[], number, number][] = [
    [[2, 5, 7, 8], 1, 0], [[8, 32, 32, 64], 1, 0], [[33, 12], 1, 0], [[4, 6, 6, 16], 2, 30],
    [[8, 16, 16, 1], 1, 0], [[3, 5, 4, 2], 2, 30], [[10, 2], 1, 0],
  ];
  for (const [shape, spread, offset] of cases) {
    for (const [name, act] of ACTS) {
      it(`${name}, [${shape}]${offset ? ` around ${offset}` : ''}: output, batch statistics and the gradients to x, gamma, beta equal the tensor path`, () => {
        tf.tidy(() => {
          const c = shape[shape.length - 1];
          const x = rand(shape, 1, spread, offset);
          const gamma = rand([c], 2, 0.5, 1) as tf.Tensor1D;
          const beta = rand([c], 3, 0.5) as tf.Tensor1D;
          const w = rand(shape, 4);
          expect(bnActFused(x)).toBe(true);
          const f = run(x, gamma, beta, w, act, true);
          const t = run(x, gamma, beta, w, act, false);
          expect(f.count).toBe(t.count);
          for (const k of ['y', 'mean', 'variance', 'dx', 'dg', 'db'] as const) {
            expect(maxRelErr(f[k], t[k]), k).toBeLessThan(1e-5);
          }
          tf.dispose([f.mean, f.variance, t.mean, t.variance]);
        });
      });
    }
  }

  it('channels not a multiple of 4 (but 1 or 2 in a size that is) take the tensor path (same values as batchNormTrain + activation)', () => {
    tf.tidy(() => {
      expect(bnActFused(rand([3, 3, 2], 1))).toBe(false);
      expect(bnActFused(rand([3, 3, 1], 1))).toBe(false);
      expect(bnActFused(rand([2, 2, 3], 1))).toBe(false);
      const x = rand([2, 4, 4, 6], 5);
      expect(bnActFused(x)).toBe(false);
      const gamma = rand([6], 6, 0.5, 1) as tf.Tensor1D;
      const beta = rand([6], 7, 0.5) as tf.Tensor1D;
      const w = rand([2, 4, 4, 6], 8);
      const a = run(x, gamma, beta, w, { leakyRelu: 0.01 }, true);
      const b = run(x, gamma, beta, w, { leakyRelu: 0.01 }, false);
      for (const k of ['y', 'mean', 'variance', 'dx', 'dg', 'db'] as const) expect(maxRelErr(a[k], b[k]), k).toBe(0);
      tf.dispose([a.mean, a.variance, b.mean, b.variance]);
    });
  });

  it('a wrong activation mask or slope would show: the three activations differ where z < 0', () => {
    tf.tidy(() => {
      const x = rand([2, 4, 4, 8], 9);
      const gamma = tf.ones([8]) as tf.Tensor1D;
      const beta = tf.zeros([8]) as tf.Tensor1D;
      const w = rand([2, 4, 4, 8], 10);
      const leaky = run(x, gamma, beta, w, { leakyRelu: 0.2 }, true);
      const rl = run(x, gamma, beta, w, 'relu', true);
      const none = run(x, gamma, beta, w, 'none', true);
      // with gamma 1 and beta 0, y is xhat; about half the values are negative
      const xhat = none.y.dataSync();
      const yl = leaky.y.dataSync(), yr = rl.y.dataSync();
      let negatives = 0;
      for (let i = 0; i < xhat.length; i++) {
        if (xhat[i] < 0) {
          negatives++;
          expect(yl[i]).toBeCloseTo(0.2 * xhat[i], 6);
          expect(yr[i]).toBeCloseTo(0, 6);
        } else {
          expect(yl[i]).toBe(xhat[i]);
          expect(yr[i]).toBe(xhat[i]);
        }
      }
      expect(negatives).toBeGreaterThan(xhat.length / 4);
      // dbeta is the sum of dz: with the mask, the negative positions count alpha times
      const wv = w.dataSync();
      let want = 0;
      for (let i = 0; i < 8 * 4; i++) for (let k = 0; k < 8; k++) {
        const j = i * 8 + k;
        if (k === 3) want += xhat[j] > 0 ? wv[j] : 0.2 * wv[j];
      }
      expect(leaky.db.dataSync()[3]).toBeCloseTo(want, 4);
      tf.dispose([leaky.mean, leaky.variance, rl.mean, rl.variance, none.mean, none.variance]);
    });
  });

  for (const [name, act] of ACTS.slice(0, 2)) {
    for (const shape of [[2, 6, 6, 8], [3, 5]]) {
      it(`the activation alone (${name}, [${shape}]): the same output and gradient as the tensor path, bit for bit`, () => {
        tf.tidy(() => {
          const x = rand(shape, 11);
          const w = rand(shape, 12);
          const once = (fused: boolean) => {
            setBnActEnabled(fused);
            expect(activationFused(x)).toBe(fused && x.size % 4 === 0);
            const y = applyActivation(x, act);
            const dx = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(applyActivation(xx, act), w)))(x);
            return { y, dx };
          };
          const a = once(true), b = once(false);
          expect(maxRelErr(a.y, b.y)).toBe(0);
          expect(maxRelErr(a.dx, b.dx)).toBe(0);
          // the negative side has the slope
          const xv = x.dataSync(), yv = a.y.dataSync(), gv = a.dx.dataSync(), wv = w.dataSync();
          const slope = act === 'relu' ? 0 : (act as { leakyRelu: number }).leakyRelu;
          for (let i = 0; i < xv.length; i++) {
            expect(yv[i]).toBeCloseTo(xv[i] > 0 ? xv[i] : slope * xv[i], 6);
            expect(gv[i]).toBeCloseTo(xv[i] > 0 ? wv[i] : slope * wv[i], 6);
          }
        });
      });
    }
  }
});
