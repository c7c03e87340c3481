/**
 * Plain float64 references shared by the convolution kernels' tests (winograd*.test.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { mulberry32, uniformArray } from '../../../src/core/ml/layers';

/** A tensor of `shape` with values uniform in [-1, 1) from `seed`. */
export function rand(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(uniformArray(shape.reduce((a, b) => a * b, 1), 1, mulberry32(seed)), shape);
}

/** 3x3 stride-1 pad-1 convolution: y[n,i,j,o] = sum_{a,b,c} xpad[n,i+a,j+b,c] w[a,b,c,o] in float64. */
export function directConv(x: Float32Array, w: Float32Array, n: number, h: number, wd: number, ci: number, co: number): Float64Array {
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

/** The largest absolute difference over the largest absolute reference value (lengths must agree). */
export function maxRelErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) throw new Error(`maxRelErr: ${got.length} values against ${want.length}`);
  let err = 0, scale = 0;
  for (let i = 0; i < got.length; i++) {
    err = Math.max(err, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return err / scale;
}
