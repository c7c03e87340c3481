import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { batchNormTrain, conv2d, conv2dTranspose, convFilterGrad, leakyRelu, mulberry32, relu, tanh, uniformArray } from '../../../src/core/ml/layers';
import { registerTrainingKernels, stopGradient } from '../../../src/core/ml/backend';
import { convFilterGradSimd, setWasmKernelEnabled, wasmKernelAvailable } from '../../../src/core/ml/wasm-kernels';

function rand(shape: number[], seed: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(uniformArray(n, 1, mulberry32(seed)), shape);
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  expect(a.shape).toEqual(b.shape);
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

/** Relative tolerance check: max |a-b| <= tol * max(1, max|b|). */
function expectClose(a: tf.Tensor, b: tf.Tensor, tol = 1e-4): void {
  const scale = Math.max(1, tf.tidy(() => tf.max(tf.abs(b)).dataSync()[0]));
  expect(maxAbsDiff(a, b)).toBeLessThanOrEqual(tol * scale);
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

// (kernel, stride, pad, H, inC, outC)
const CONV_CASES: [number, number, number, number, number, number][] = [
  [3, 1, 1, 9, 3, 5],
  [1, 1, 0, 6, 4, 3],
  [4, 2, 1, 8, 3, 4],
  [4, 2, 1, 8, 10, 3], // > 8 input channels: four-phase input-gradient path
  [4, 2, 1, 7, 2, 3], // odd size: general (dilated) input-gradient path
  [3, 2, 1, 9, 2, 3],
  [3, 1, 0, 7, 2, 2],
  [11, 1, 0, 16, 1, 1],
  [4, 2, 1, 16, 1, 5], // few input channels: im2col path
  [3, 1, 1, 8, 3, 2],
  [1, 1, 0, 5, 40, 3],
];

describe('conv2d custom gradients match tf.conv2d on the cpu backend', () => {
  for (const [k, s, p, h, ci, co] of CONV_CASES) {
    it(`k${k} s${s} p${p} ${h}x${h} ${ci}->${co}`, () => {
      tf.tidy(() => {
        const x = rand([2, h, h + 1, ci], 1) as tf.Tensor4D;
        const w = rand([k, k, ci, co], 2) as tf.Tensor4D;
        const b = rand([co], 3) as tf.Tensor1D;
        const pads: tf.backend_util.ExplicitPadding = [[0, 0], [p, p], [p, p], [0, 0]];
        const ref = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
          tf.add(tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, s, pads), bb);
        const mine = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
          conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, bb as tf.Tensor1D, { stride: s, pad: p });
        const yRef = ref(x, w, b);
        const dy = rand(yRef.shape, 4);
        expectClose(mine(x, w, b), yRef, 1e-5);
        const gRef = tf.grads((a, bw, c) => tf.sum(tf.mul(ref(a, bw, c), dy)))([x, w, b]);
        const gMine = tf.grads((a, bw, c) => tf.sum(tf.mul(mine(a, bw, c), dy)))([x, w, b]);
        for (let i = 0; i < 3; i++) expectClose(gMine[i], gRef[i]);
      });
    });
  }
});

describe('conv2dTranspose matches tf.conv2dTranspose and its gradients', () => {
  for (const [k, s, p, h, ci, co] of [[4, 2, 1, 5, 3, 2], [4, 2, 1, 4, 3, 10], [4, 2, 1, 4, 4, 1], [3, 1, 1, 6, 2, 3], [3, 2, 1, 5, 2, 2]] as const) {
    it(`k${k} s${s} p${p} ${h}x${h} ${ci}->${co}`, () => {
      tf.tidy(() => {
        const x = rand([2, h, h, ci], 5) as tf.Tensor4D;
        const w = rand([k, k, co, ci], 6) as tf.Tensor4D;
        const b = rand([co], 7) as tf.Tensor1D;
        const oh = (h - 1) * s - 2 * p + k;
        const pads: tf.backend_util.ExplicitPadding = [[0, 0], [p, p], [p, p], [0, 0]];
        // tf.conv2dTranspose only takes 'same'/'valid'/number padding; express it through the
        // gradient of tf.conv2d, which tf computes with its own Conv2DBackpropInput kernel.
        const ref = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => {
          const z = tf.zeros([2, oh, oh, co]);
          const gx = tf.grad((zz: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(zz as tf.Tensor4D, ww as tf.Tensor4D, s, pads), xx)))(z);
          return tf.add(gx, bb);
        };
        const mine = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
          conv2dTranspose(xx as tf.Tensor4D, ww as tf.Tensor4D, bb as tf.Tensor1D, { stride: s, pad: p });
        const yRef = ref(x, w, b);
        expect(yRef.shape).toEqual([2, oh, oh, co]);
        expectClose(mine(x, w, b), yRef, 1e-5);
        if (p === 1 && s === 1) {
          expectClose(mine(x, w, b), tf.add(tf.conv2dTranspose(x, w, [2, oh, oh, co], s, 'same'), b), 1e-5);
        }
        const dy = rand(yRef.shape, 8);
        // reference gradients by finite structure: x-grad of a transposed conv is the forward conv
        const dxRef = tf.conv2d(dy as tf.Tensor4D, w, s, pads);
        const dwRef = tf.grad((ww: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(dy as tf.Tensor4D, ww as tf.Tensor4D, s, pads), x)))(w);
        const gMine = tf.grads((a, bw, c) => tf.sum(tf.mul(mine(a, bw, c), dy)))([x, w, b]);
        expectClose(gMine[0], dxRef);
        expectClose(gMine[1], dwRef);
        expectClose(gMine[2], tf.sum(dy, [0, 1, 2]));
      });
    });
  }
});

describe('SIMD filter-gradient kernel matches the forward-convolution formulation', () => {
  for (const [k, s, p, h, ci, co] of [[3, 1, 1, 9, 4, 8], [4, 2, 1, 8, 8, 16], [3, 2, 1, 9, 4, 8], [1, 1, 0, 5, 8, 8], [3, 1, 0, 7, 12, 24]] as const) {
    it(`k${k} s${s} p${p} ${h}x${h} ${ci}->${co}`, () => {
      tf.tidy(() => {
        expect(wasmKernelAvailable()).toBe(true);
        const x = rand([3, h, h, ci], 21) as tf.Tensor4D;
        const oh = Math.floor((h + 2 * p - k) / s) + 1;
        const dy = rand([3, oh, oh, co], 22) as tf.Tensor4D;
        const simd = convFilterGradSimd(x, dy, s, p, k, k);
        expect(simd).not.toBeNull();
        setWasmKernelEnabled(false);
        try {
          expectClose(simd!, convFilterGrad(x, dy, s, p, k, k), 1e-5);
        } finally {
          setWasmKernelEnabled(true);
        }
        // and against tf's own filter gradient
        const ref = tf.grad((w: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(x, w as tf.Tensor4D, s, [[0, 0], [p, p], [p, p], [0, 0]]), dy)))(tf.zeros([k, k, ci, co]));
        expectClose(simd!, ref, 1e-5);
      });
    });
  }
  it('declines shapes it does not handle', () => {
    tf.tidy(() => {
      expect(convFilterGradSimd(tf.zeros([1, 4, 4, 3]) as tf.Tensor4D, tf.zeros([1, 4, 4, 8]) as tf.Tensor4D, 1, 1, 3, 3)).toBeNull();
      expect(convFilterGradSimd(tf.zeros([1, 4, 4, 4]) as tf.Tensor4D, tf.zeros([1, 4, 4, 6]) as tf.Tensor4D, 1, 1, 3, 3)).toBeNull();
    });
  });
});

describe('element-wise layers', () => {
  it('leakyRelu and its gradient', () => {
    tf.tidy(() => {
      const x = tf.tensor1d([-2, -0.5, 0.5, 3]);
      expectClose(leakyRelu(x, 0.01), tf.leakyRelu(x, 0.01), 1e-7);
      expectClose(tf.grad((a: tf.Tensor) => tf.sum(tf.mul(leakyRelu(a, 0.01), tf.tensor1d([1, 2, 3, 4]))))(x), tf.tensor1d([0.01, 0.02, 3, 4]), 1e-7);
    });
  });
  it('relu and its gradient', () => {
    tf.tidy(() => {
      const x = tf.tensor1d([-2, -0.5, 0.5, 3]);
      expectClose(relu(x), tf.relu(x), 0);
      expectClose(tf.grad((a: tf.Tensor) => tf.sum(tf.mul(relu(a), tf.tensor1d([1, 2, 3, 4]))))(x), tf.tensor1d([0, 0, 3, 4]), 0);
    });
  });
  it('tanh and its gradient', () => {
    tf.tidy(() => {
      const x = tf.linspace(-4, 4, 17);
      expectClose(tanh(x), tf.tanh(x), 1e-6);
      expectClose(tf.grad((a: tf.Tensor) => tf.sum(tanh(a)))(x), tf.grad((a: tf.Tensor) => tf.sum(tf.tanh(a)))(x), 1e-6);
    });
  });
  it('batchNormTrain matches tf.moments/batchNorm and its gradient', () => {
    tf.tidy(() => {
      const x = rand([3, 4, 5, 6], 9);
      const g = rand([6], 10) as tf.Tensor1D;
      const b = rand([6], 11) as tf.Tensor1D;
      const dy = rand([3, 4, 5, 6], 12);
      const ref = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => {
        const { mean, variance } = tf.moments(xx, [0, 1, 2]);
        return tf.batchNorm(xx, mean, variance, bb as tf.Tensor1D, gg as tf.Tensor1D, 1e-5);
      };
      const out = batchNormTrain(x, g, b);
      expectClose(out.y, ref(x, g, b), 1e-5);
      expectClose(out.stats.variance, tf.moments(x, [0, 1, 2]).variance, 1e-6);
      tf.dispose([out.stats.mean, out.stats.variance]);
      const gRef = tf.grads((a, c, d) => tf.sum(tf.mul(ref(a, c, d), dy)))([x, g, b]);
      const gMine = tf.grads((a, c, d) => {
        const r = batchNormTrain(a, c as tf.Tensor1D, d as tf.Tensor1D);
        tf.dispose([r.stats.mean, r.stats.variance]);
        return tf.sum(tf.mul(r.y, dy));
      })([x, g, b]);
      for (let i = 0; i < 3; i++) expectClose(gMine[i], gRef[i]);
    });
  });
  it('stopGradient passes values and blocks gradients', () => {
    tf.tidy(() => {
      const x = tf.tensor1d([1, 2]);
      expectClose(stopGradient(x), x, 0);
      expectClose(tf.grad((a: tf.Tensor) => tf.sum(tf.add(tf.mul(stopGradient(a), a), a)))(x), tf.tensor1d([2, 3]), 1e-7);
    });
  });
});

describe('fallback kernels', () => {
  it('registerTrainingKernels is a no-op on cpu, which has them all', () => {
    expect(registerTrainingKernels('cpu')).toEqual([]);
  });
});
