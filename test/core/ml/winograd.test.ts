import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { directConv, maxRelErr, rand } from './conv-reference';
import { flipTranspose } from '../../../src/core/ml/layers';
import { conv3x3Winograd, filterGrad3x3Winograd, setWinogradOwnProducts, winogradFilters } from '../../../src/core/ml/winograd';
import { initBackend } from '../../../src/trainer/backend';

beforeAll(async () => {
  await initBackend({ force: 'wasm', wasmThreads: 1 });
});

describe('Winograd F(2x2, 3x3) convolution on the wasm heap', () => {
  // (n, h, w, ci, co)
  for (const [n, h, w, ci, co] of [[2, 8, 6, 32, 32], [1, 4, 10, 32, 40], [3, 6, 6, 36, 64]] as const) {
    it(`${n}x${h}x${w} ${ci}->${co} equals a plain direct convolution (and with the flipped filter, the input gradient's)`, () => {
      tf.tidy(() => {
        const x = rand([n, h, w, ci], 1) as tf.Tensor4D;
        const wt = rand([3, 3, ci, co], 2) as tf.Tensor4D;
        const y = conv3x3Winograd(x, wt);
        expect(y).not.toBeNull();
        expect(y!.shape).toEqual([n, h, w, co]);
        const want = directConv(x.dataSync() as Float32Array, wt.dataSync() as Float32Array, n, h, w, ci, co);
        expect(maxRelErr(y!.dataSync() as Float32Array, want)).toBeLessThan(1e-5);
        // flip: the filter applied is flipTranspose(w2) for w2 [3, 3, co, ci]
        const w2 = rand([3, 3, co, ci], 3) as tf.Tensor4D;
        const yf = conv3x3Winograd(x, w2, true);
        const wantF = directConv(x.dataSync() as Float32Array, flipTranspose(w2).dataSync() as Float32Array, n, h, w, ci, co);
        expect(maxRelErr(yf!.dataSync() as Float32Array, wantF)).toBeLessThan(1e-5);
      });
    });
  }

  // (n, h, w, ci, co): tiles 24 (chunks of 8), 10 (chunks of 2), 27 (one at a time)
  for (const [n, h, w, ci, co] of [[2, 8, 6, 32, 32], [1, 4, 10, 32, 40], [3, 6, 6, 36, 64]] as const) {
    it(`filter gradient ${n}x${h}x${w} ${ci}->${co} equals a plain sum over pixels`, () => {
      tf.tidy(() => {
        const x = rand([n, h, w, ci], 6) as tf.Tensor4D;
        const dy = rand([n, h, w, co], 7) as tf.Tensor4D;
        const g = filterGrad3x3Winograd(x, dy);
        expect(g).not.toBeNull();
        expect(g!.shape).toEqual([3, 3, ci, co]);
        const xv = x.dataSync(), dv = dy.dataSync();
        const want = new Float64Array(9 * ci * co);
        for (let a = 0; a < 3; a++) for (let e = 0; e < 3; e++) for (let b = 0; b < n; b++) for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) {
          const r = i + a - 1, c = j + e - 1;
          if (r < 0 || r >= h || c < 0 || c >= w) continue;
          for (let k = 0; k < ci; k++) {
            const xval = xv[((b * h + r) * w + c) * ci + k];
            for (let o = 0; o < co; o++) want[((a * 3 + e) * ci + k) * co + o] += xval * dv[((b * h + i) * w + j) * co + o];
          }
        }
        expect(maxRelErr(g!.dataSync() as Float32Array, want)).toBeLessThan(1e-5);
      });
    });
  }

  it('the products by tf.matMul give the same convolution', () => {
    tf.tidy(() => {
      const x = rand([2, 8, 8, 32], 8) as tf.Tensor4D;
      const w = rand([3, 3, 32, 32], 9) as tf.Tensor4D;
      const own = conv3x3Winograd(x, w)!;
      setWinogradOwnProducts(false);
      try {
        const xnn = conv3x3Winograd(x, w)!;
        expect(maxRelErr(own.dataSync() as Float32Array, xnn.dataSync())).toBeLessThan(1e-6);
      } finally {
        setWinogradOwnProducts(true);
      }
    });
  });

  it('does not apply where it cannot run or does not pay (odd sizes, channels not a multiple of 4, fewer than 32 channels)', () => {
    tf.tidy(() => {
      expect(conv3x3Winograd(tf.zeros([1, 5, 4, 32]) as tf.Tensor4D, tf.zeros([3, 3, 32, 32]) as tf.Tensor4D)).toBeNull();
      expect(conv3x3Winograd(tf.zeros([1, 4, 4, 34]) as tf.Tensor4D, tf.zeros([3, 3, 34, 32]) as tf.Tensor4D)).toBeNull();
      expect(conv3x3Winograd(tf.zeros([1, 4, 4, 16]) as tf.Tensor4D, tf.zeros([3, 3, 16, 16]) as tf.Tensor4D)).toBeNull();
    });
  });

  it('filter transform: the centre tap of an identity-like filter passes through', () => {
    // g = delta at the centre: G g G^T = outer((0, .5, -.5, 0), (0, .5, -.5, 0))
    const w = new Float32Array(9);
    w[4] = 1;
    const u = winogradFilters(w, 1, 1, false).map((a) => a[0]);
    const v = [0, 0.5, -0.5, 0];
    expect(u).toEqual(v.flatMap((a) => v.map((b) => a * b)).map((z) => z + 0));
  });

  it('leaves no tensor behind', () => {
    const x = rand([1, 4, 4, 32], 4) as tf.Tensor4D;
    const w = rand([3, 3, 32, 32], 5) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    const y = conv3x3Winograd(x, w)!;
    expect(tf.memory().numTensors).toBe(before + 1);
    tf.dispose([x, w, y]);
  });
});
