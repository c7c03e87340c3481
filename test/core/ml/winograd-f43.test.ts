import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { flipTranspose, mulberry32, uniformArray } from '../../../src/core/ml/layers';
import { conv3x3WinogradF43, setWinogradF43Enabled } from '../../../src/core/ml/winograd-f43';
import { initBackend } from '../../../src/trainer/backend';

function rand(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(uniformArray(shape.reduce((a, b) => a * b, 1), 1, mulberry32(seed)), shape);
}

/** Plain reference: y[n,i,j,o] = sum_{a,b,c} xpad[n,i+a,j+b,c] w[a,b,c,o] in float64. */
function directConv(x: Float32Array, w: Float32Array, n: number, h: number, wd: number, ci: number, co: number): Float64Array {
  const y = new Float64Array(n * h * wd * co);
  for (let b = 0; b < n; b++) for (let i = 0; i < h; i++) for (let j = 0; j < wd; j++) for (let o = 0; o < co; o++) {
    let s = 0;
    for (let a = 0; a < 3; a++) for (let e = 0; e < 3; e++) {
      const r = i + a - 1, c = j + e - 1;
      if (r < 0 || r >= h || c < 0 || c >= wd) continue;
      for (let k = 0; k < ci; k++) s += x[((b * h + r) * wd + c) * ci + k] * w[((a * 3 + e) * ci + k) * co + o];
    }
    y[((b * h + i) * wd + j) * co + o] = s;
  }
  return y;
}

function maxRelErr(got: Float32Array, want: ArrayLike<number>): number {
  let err = 0, scale = 0;
  for (let i = 0; i < got.length; i++) {
    err = Math.max(err, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return err / scale;
}

beforeAll(async () => {
  await initBackend({ force: 'wasm', wasmThreads: 1 });
});

describe('Winograd F(4x4, 3x3) convolution on the wasm heap', () => {
  // (n, h, w, ci, co): sizes 8 and 32 (and 8 x 32), batch 1 and 3, 32 and 64 channels
  for (const [n, h, w, ci, co] of [[1, 8, 8, 32, 64], [3, 8, 8, 64, 32], [1, 32, 32, 64, 64], [3, 32, 32, 32, 32], [1, 8, 32, 64, 64]] as const) {
    it(`${n}x${h}x${w} ${ci}->${co} within 1e-5 of a float64 direct convolution (and with the flipped filter)`, () => {
      tf.tidy(() => {
        const x = rand([n, h, w, ci], 11 + h) as tf.Tensor4D;
        const wt = rand([3, 3, ci, co], 12 + ci) as tf.Tensor4D;
        const y = conv3x3WinogradF43(x, wt);
        expect(y).not.toBeNull();
        expect(y!.shape).toEqual([n, h, w, co]);
        const xv = x.dataSync() as Float32Array;
        const want = directConv(xv, wt.dataSync() as Float32Array, n, h, w, ci, co);
        expect(maxRelErr(y!.dataSync() as Float32Array, want)).toBeLessThan(1e-5);
        // flip: the filter applied is flipTranspose(w2) for w2 [3, 3, co, ci]
        const w2 = rand([3, 3, co, ci], 13 + co) as tf.Tensor4D;
        const yf = conv3x3WinogradF43(x, w2, true);
        expect(yf).not.toBeNull();
        const wantF = directConv(xv, flipTranspose(w2).dataSync() as Float32Array, n, h, w, ci, co);
        expect(maxRelErr(yf!.dataSync() as Float32Array, wantF)).toBeLessThan(1e-5);
      });
    });
  }

  it('returns null where it does not apply (sizes not multiples of 4, few channels, turned off)', () => {
    tf.tidy(() => {
      const w = rand([3, 3, 32, 32], 5) as tf.Tensor4D;
      expect(conv3x3WinogradF43(rand([1, 6, 6, 32], 6) as tf.Tensor4D, w)).toBeNull();
      expect(conv3x3WinogradF43(rand([1, 30, 30, 32], 7) as tf.Tensor4D, w)).toBeNull();
      expect(conv3x3WinogradF43(rand([1, 8, 6, 32], 8) as tf.Tensor4D, w)).toBeNull();
      expect(conv3x3WinogradF43(rand([1, 8, 8, 16], 9) as tf.Tensor4D, rand([3, 3, 16, 32], 10) as tf.Tensor4D)).toBeNull();
      setWinogradF43Enabled(false);
      try {
        expect(conv3x3WinogradF43(rand([1, 8, 8, 32], 9) as tf.Tensor4D, w)).toBeNull();
      } finally {
        setWinogradF43Enabled(true);
      }
    });
  });
});
