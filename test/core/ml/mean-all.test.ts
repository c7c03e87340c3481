import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { meanAll, sumAll } from '../../../src/core/ml/losses';
import { mulberry32, uniformArray } from '../../../src/core/ml/layers';
import { initBackend } from '../../../src/trainer/backend';

afterAll(async () => {
  await tf.setBackend('cpu');
});

describe('meanAll and sumAll: tf.mean and tf.sum with the gradient filled in the backend', () => {
  for (const backend of ['cpu', 'wasm'] as const) {
    it(`on ${backend}: the same values and the same gradient bits as tf.mean / tf.sum`, async () => {
      if (backend === 'wasm') await initBackend({ force: 'wasm', wasmThreads: 1 });
      else await tf.setBackend('cpu');
      for (const shape of [[3, 5, 7, 1], [1000], [8, 33]]) {
        const n = shape.reduce((a, b) => a * b, 1);
        const x = tf.tensor(uniformArray(n, 3, mulberry32(n)), shape);
        const w = tf.tensor(uniformArray(n, 1, mulberry32(n + 1)), shape);
        // a non-trivial dy: the loss is 0.37 * reduce(x * w)
        const ours = (f: (t: tf.Tensor) => tf.Scalar) => tf.grad((t: tf.Tensor) => tf.mul(f(tf.mul(t, w)), 0.37))(x).dataSync();
        expect(Array.from(ours(meanAll))).toEqual(Array.from(ours((t) => tf.mean(t) as tf.Scalar)));
        expect(Array.from(ours(sumAll))).toEqual(Array.from(ours((t) => tf.sum(t) as tf.Scalar)));
        expect(meanAll(x).dataSync()[0]).toBe(tf.mean(x).dataSync()[0]);
        expect(sumAll(x).dataSync()[0]).toBe(tf.sum(x).dataSync()[0]);
        // and it is not a constant
        expect(new Set(Array.from(ours(meanAll))).size).toBeGreaterThan(1);
      }
    });
  }
});
