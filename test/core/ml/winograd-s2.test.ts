import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { maxRelErr, rand } from './conv-reference';
import { conv2d, conv2dTranspose } from '../../../src/core/ml/layers';
import { conv4x4s2Winograd, convTranspose4x4s2Winograd, filterGrad4x4s2Winograd } from '../../../src/core/ml/winograd-s2';
import { setWinogradEnabled } from '../../../src/core/ml/winograd';
import { initBackend } from '../../../src/trainer/backend';

/**
 * Every (output pixel, filter tap) pair of a 4x4 stride-2 pad-1 convolution of x [n, h, wd, ci]
 * that reads inside x: `visit(xo, wo, yo)` with the offsets of x's pixel, w's tap [4, 4, ci, co]
 * and y's pixel [n, h/2, wd/2, co].
 */
function forEachS2Tap(n: number, h: number, wd: number, ci: number, co: number, visit: (xo: number, wo: number, yo: number) => void): void {
  const oh = h / 2, ow = wd / 2;
  for (let b = 0; b < n; b++) for (let i = 0; i < oh; i++) for (let j = 0; j < ow; j++) for (let a = 0; a < 4; a++) for (let e = 0; e < 4; e++) {
    const r = 2 * i + a - 1, c = 2 * j + e - 1;
    if (r < 0 || r >= h || c < 0 || c >= wd) continue;
    visit(((b * h + r) * wd + c) * ci, (a * 4 + e) * ci * co, ((b * oh + i) * ow + j) * co);
  }
}

/** y[n,i,j,o] = sum_{a,b,c} xpad[n,2i+a,2j+b,c] w[a,b,c,o] (4x4, stride 2, pad 1) in float64. */
function directConvS2(x: Float32Array, w: Float32Array, n: number, h: number, wd: number, ci: number, co: number): Float64Array {
  const y = new Float64Array(n * (h / 2) * (wd / 2) * co);
  forEachS2Tap(n, h, wd, ci, co, (xo, wo, yo) => {
    for (let k = 0; k < ci; k++) {
      const xv = x[xo + k];
      for (let o = 0; o < co; o++) y[yo + o] += xv * w[wo + k * co + o];
    }
  });
  return y;
}

/** The transposed convolution (the input gradient of the above): dx[n,r,c,k] += dy[n,i,j,o] w[a,b,k,o], float64. */
function directTransposeS2(dy: Float32Array, w: Float32Array, n: number, oh: number, ow: number, ci: number, co: number): Float64Array {
  const dx = new Float64Array(n * 2 * oh * 2 * ow * ci);
  forEachS2Tap(n, 2 * oh, 2 * ow, ci, co, (xo, wo, yo) => {
    for (let k = 0; k < ci; k++) {
      let sum = 0;
      for (let o = 0; o < co; o++) sum += dy[yo + o] * w[wo + k * co + o];
      dx[xo + k] += sum;
    }
  });
  return dx;
}

/** dW[a,b,c,o] = sum xpad[n,2i+a,2j+b,c] dy[n,i,j,o] (4x4, stride 2, pad 1) in float64. */
function directFilterGradS2(x: Float32Array, dy: Float32Array, n: number, h: number, wd: number, ci: number, co: number): Float64Array {
  const dw = new Float64Array(16 * ci * co);
  forEachS2Tap(n, h, wd, ci, co, (xo, wo, yo) => {
    for (let k = 0; k < ci; k++) {
      const xv = x[xo + k];
      for (let o = 0; o < co; o++) dw[wo + k * co + o] += xv * dy[yo + o];
    }
  });
  return dw;
}

beforeAll(async () => {
  await initBackend({ force: 'wasm', wasmThreads: 1 });
});

// (n, output h, output w, ci, co): outputs 8, 32 and 6 (a multiple of 3), non-square, batch 1 and 3
const CASES: [number, number, number, number, number][] = [
  [1, 8, 8, 32, 64],
  [3, 8, 8, 64, 32],
  [1, 32, 32, 32, 64],
  [3, 6, 9, 32, 32],
  [2, 5, 4, 64, 64],
  [3, 3, 3, 32, 40],
];

describe('Winograd F(3x3, 2x2): 4x4 stride-2 pad-1 convolutions on the wasm heap', () => {
  for (const [n, oh, ow, ci, co] of CASES) {
    it(`forward ${n}x${2 * oh}x${2 * ow} ${ci}->${co} equals a float64 direct convolution`, () => {
      tf.tidy(() => {
        const x = rand([n, 2 * oh, 2 * ow, ci], 1) as tf.Tensor4D;
        const w = rand([4, 4, ci, co], 2) as tf.Tensor4D;
        const y = conv4x4s2Winograd(x, w);
        expect(y).not.toBeNull();
        expect(y!.shape).toEqual([n, oh, ow, co]);
        const want = directConvS2(x.dataSync() as Float32Array, w.dataSync() as Float32Array, n, 2 * oh, 2 * ow, ci, co);
        expect(maxRelErr(y!.dataSync(), want)).toBeLessThan(1e-5);
      });
    });

    it(`transposed (input gradient) ${n}x${oh}x${ow} ${co}->${ci} equals a float64 direct sum`, () => {
      if (ci % 8 !== 0) return;
      tf.tidy(() => {
        const dy = rand([n, oh, ow, co], 3) as tf.Tensor4D;
        const w = rand([4, 4, ci, co], 4) as tf.Tensor4D;
        const dx = convTranspose4x4s2Winograd(dy, w);
        expect(dx).not.toBeNull();
        expect(dx!.shape).toEqual([n, 2 * oh, 2 * ow, ci]);
        const want = directTransposeS2(dy.dataSync() as Float32Array, w.dataSync() as Float32Array, n, oh, ow, ci, co);
        expect(maxRelErr(dx!.dataSync(), want)).toBeLessThan(1e-5);
      });
    });
  }

  for (const [n, oh, ow, ci, co] of CASES) {
    it(`filter gradient ${n}x${2 * oh}x${2 * ow} ${ci}->${co} equals a float64 direct sum`, () => {
      if (co % 8 !== 0) return;
      tf.tidy(() => {
        const x = rand([n, 2 * oh, 2 * ow, ci], 10) as tf.Tensor4D;
        const dy = rand([n, oh, ow, co], 11) as tf.Tensor4D;
        const dw = filterGrad4x4s2Winograd(x, dy);
        expect(dw).not.toBeNull();
        expect(dw!.shape).toEqual([4, 4, ci, co]);
        const want = directFilterGradS2(x.dataSync() as Float32Array, dy.dataSync() as Float32Array, n, 2 * oh, 2 * ow, ci, co);
        expect(maxRelErr(dw!.dataSync(), want)).toBeLessThan(1e-5);
      });
    });
  }

  it('the layers (conv2d stride 2 and conv2dTranspose, values and gradients) give what XNNPACK gives', () => {
    tf.tidy(() => {
      const x = rand([2, 16, 16, 32], 5) as tf.Tensor4D;
      const w = rand([4, 4, 32, 64], 6) as tf.Tensor4D;
      const up = rand([2, 8, 8, 64], 7) as tf.Tensor4D;
      const run = () => {
        const f = (xx: tf.Tensor, ww: tf.Tensor, uu: tf.Tensor) => tf.add(
          tf.sum(tf.mul(conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, null, { stride: 2, pad: 1 }), uu)),
          tf.sum(tf.square(conv2dTranspose(uu as tf.Tensor4D, ww as tf.Tensor4D, null, { stride: 2, pad: 1 }))));
        const { value, grads } = tf.valueAndGrads(f)([x, w, up]);
        return [value, ...grads];
      };
      const ours = run();
      setWinogradEnabled(false);
      let ref: tf.Tensor[];
      try {
        expect(conv4x4s2Winograd(x, w)).toBeNull();
        expect(filterGrad4x4s2Winograd(x, up)).toBeNull();
        ref = run();
      } finally {
        setWinogradEnabled(true);
      }
      for (let i = 0; i < ours.length; i++) expect(maxRelErr(ours[i].dataSync(), ref[i].dataSync())).toBeLessThan(1e-5);
    });
  });

  it('does not apply where it cannot run or does not pay (fewer than 32 channels, channels not a multiple of 4 or 8, odd or small sizes)', () => {
    tf.tidy(() => {
      expect(conv4x4s2Winograd(tf.zeros([1, 8, 8, 16]) as tf.Tensor4D, tf.zeros([4, 4, 16, 32]) as tf.Tensor4D)).toBeNull();
      expect(conv4x4s2Winograd(tf.zeros([1, 8, 8, 32]) as tf.Tensor4D, tf.zeros([4, 4, 32, 36]) as tf.Tensor4D)).toBeNull();
      expect(conv4x4s2Winograd(tf.zeros([1, 9, 8, 32]) as tf.Tensor4D, tf.zeros([4, 4, 32, 32]) as tf.Tensor4D)).toBeNull();
      expect(conv4x4s2Winograd(tf.zeros([1, 4, 8, 32]) as tf.Tensor4D, tf.zeros([4, 4, 32, 32]) as tf.Tensor4D)).toBeNull();
      expect(conv4x4s2Winograd(tf.zeros([1, 8, 8, 32]) as tf.Tensor4D, tf.zeros([3, 3, 32, 32]) as tf.Tensor4D)).toBeNull();
      expect(convTranspose4x4s2Winograd(tf.zeros([1, 4, 4, 64]) as tf.Tensor4D, tf.zeros([4, 4, 4, 64]) as tf.Tensor4D)).toBeNull();
      expect(convTranspose4x4s2Winograd(tf.zeros([1, 2, 4, 64]) as tf.Tensor4D, tf.zeros([4, 4, 32, 64]) as tf.Tensor4D)).toBeNull();
      expect(filterGrad4x4s2Winograd(tf.zeros([1, 8, 8, 32]) as tf.Tensor4D, tf.zeros([1, 4, 4, 4]) as tf.Tensor4D)).toBeNull();
      expect(filterGrad4x4s2Winograd(tf.zeros([1, 8, 8, 32]) as tf.Tensor4D, tf.zeros([1, 5, 4, 32]) as tf.Tensor4D)).toBeNull();
    });
  });

  it('leaves no tensor behind', () => {
    const x = rand([1, 8, 8, 32], 8) as tf.Tensor4D;
    const w = rand([4, 4, 32, 32], 9) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    const y = conv4x4s2Winograd(x, w)!;
    const dx = convTranspose4x4s2Winograd(y, w)!;
    expect(tf.memory().numTensors).toBe(before + 2);
    tf.dispose([x, w, y, dx]);
  });
});
