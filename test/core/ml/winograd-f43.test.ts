import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { directConv, maxRelErr, rand } from './conv-reference';
import { flipTranspose } from '../../../src/core/ml/layers';
import { conv3x3WinogradF43, setWinogradF43Enabled } from '../../../src/core/ml/winograd-f43';
import { initBackend } from '../../../src/trainer/backend';

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
