import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blurAxis } from '../../../src/core/ml/blur';
import { gaussianWindow, ssim } from '../../../src/core/ml/losses';
import { mulberry32, uniformArray } from '../../../src/core/ml/layers';
import { initBackend } from '../../../src/trainer/backend';
import reference from './reference_numbers.json';

/** float64 'valid' filtering of [k, h, w] along axis 1 or 2. */
function direct(x: Float32Array, k: number, h: number, w: number, axis: 1 | 2, g: ArrayLike<number>): Float64Array {
  const T = g.length;
  const oh = axis === 1 ? h - T + 1 : h, ow = axis === 2 ? w - T + 1 : w;
  const y = new Float64Array(k * oh * ow);
  for (let b = 0; b < k; b++) for (let i = 0; i < oh; i++) for (let j = 0; j < ow; j++) {
    let s = 0;
    for (let t = 0; t < T; t++) s += g[t] * (axis === 2 ? x[(b * h + i) * w + j + t] : x[(b * h + i + t) * w + j]);
    y[(b * oh + i) * ow + j] = s;
  }
  return y;
}

function maxErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let e = 0;
  for (let i = 0; i < want.length; i++) e = Math.max(e, Math.abs(got[i] - want[i]));
  return e;
}

beforeAll(async () => {
  await initBackend({ force: 'wasm', wasmThreads: 1 });
});
afterAll(async () => {
  await tf.setBackend('cpu');
});

describe('SIMD window filtering on the wasm heap (blur.ts)', () => {
  const g = gaussianWindow(11, 1.5);
  // (k, h, w): outputs a row a multiple of 4, not one (tails of 1-3), a single output
  for (const [k, h, w] of [[2, 16, 15], [3, 13, 20], [1, 11, 11], [2, 24, 17]] as const) {
    for (const axis of [1, 2] as const) {
      it(`[${k}, ${h}, ${w}] along ${axis === 1 ? 'h' : 'w'}: values and gradient equal float64 sums`, () => {
        const xv = uniformArray(k * h * w, 1, mulberry32(k * 100 + h + axis));
        const x = tf.tensor3d(xv, [k, h, w]);
        const y = blurAxis(x, axis, g);
        expect(y).not.toBeNull();
        const want = direct(xv, k, h, w, axis, g);
        expect(y!.shape).toEqual(axis === 1 ? [k, h - 10, w] : [k, h, w - 10]);
        expect(maxErr(y!.dataSync(), want)).toBeLessThan(1e-6);
        // gradient of sum(y * r): dx[p] = sum over outputs reading p of r * g[t]
        const rv = uniformArray(want.length, 1, mulberry32(7 + axis));
        const r = tf.tensor3d(rv, y!.shape as [number, number, number]);
        const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(blurAxis(t as tf.Tensor3D, axis, g)!, r)))(x).dataSync();
        const oh = y!.shape[1], ow = y!.shape[2];
        const wantDx = new Float64Array(k * h * w);
        for (let b = 0; b < k; b++) for (let i = 0; i < oh; i++) for (let j = 0; j < ow; j++) for (let t = 0; t < 11; t++) {
          const p = axis === 2 ? (b * h + i) * w + j + t : (b * h + i + t) * w + j;
          wantDx[p] += rv[(b * oh + i) * ow + j] * g[t];
        }
        expect(maxErr(dx, wantDx)).toBeLessThan(1e-6);
        tf.dispose([x, y!, r]);
      });
    }
  }

  it('an asymmetric window is not reversed in the values, and is in the gradient', () => {
    const taps = Float32Array.of(1, 2, 3);
    const x = tf.tensor3d([0, 0, 1, 0, 0], [1, 1, 5]);
    expect(Array.from(blurAxis(x, 2, taps)!.dataSync())).toEqual([3, 2, 1]);
    const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(blurAxis(t as tf.Tensor3D, 2, taps)!, tf.tensor3d([1, 0, 0], [1, 1, 3]))))(x);
    expect(Array.from(dx.dataSync())).toEqual([1, 2, 3, 0, 0]);
  });

  it('SSIM on wasm (this filtering) equals the numpy/scipy reference and the cpu backend\'s gradient', async () => {
    for (const c of reference.ssim) {
      const shape = c.shape as [number, number, number, number];
      const a = tf.tensor4d(c.a, shape);
      const b = tf.tensor4d(c.b, shape);
      expect(Math.abs(ssim(a, b).dataSync()[0] - c.ssim)).toBeLessThan(1e-5);
      const gw = tf.grad((x: tf.Tensor) => ssim(x as tf.Tensor4D, b))(a).dataSync();
      await tf.setBackend('cpu');
      const gc = tf.grad((x: tf.Tensor) => ssim(x as tf.Tensor4D, tf.tensor4d(c.b, shape)))(tf.tensor4d(c.a, shape)).dataSync();
      await tf.setBackend('wasm');
      let scale = 0;
      for (const v of gc) scale = Math.max(scale, Math.abs(v));
      expect(maxErr(gw, gc)).toBeLessThan(1e-5 * scale + 1e-9);
    }
  });
});
