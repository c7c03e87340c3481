import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nearestCodeHeap } from '../../../src/core/ml/vq-kernel';
import { mulberry32 } from '../../../src/core/ml/layers';
import { initBackend } from '../../../src/trainer/backend';

/** The plain loop's choice: the first j minimising norms[j] - dot[r, j] * 2 (float32). */
function reference(dot: Float32Array, norms: Float32Array, m: number, k: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < m; r++) {
    let best = 0;
    let bv = Math.fround(norms[0] - Math.fround(dot[r * k] * 2));
    for (let j = 1; j < k; j++) {
      const v = Math.fround(norms[j] - Math.fround(dot[r * k + j] * 2));
      if (v < bv) {
        bv = v;
        best = j;
      }
    }
    out.push(best);
  }
  return out;
}

beforeAll(async () => {
  await initBackend({ force: 'wasm', wasmThreads: 1 });
});
afterAll(async () => {
  await tf.setBackend('cpu');
});

describe('the VQ arg-min as one SIMD pass (vq-kernel.ts)', () => {
  for (const [m, k] of [[37, 512], [5, 4], [9, 8], [64, 36]] as const) {
    it(`${m} rows, ${k} codes: the first minimum, as the plain loop`, () => {
      const rng = mulberry32(m * 1000 + k);
      // few distinct values, so ties within a lane and across lanes are common
      const dot = Float32Array.from({ length: m * k }, () => Math.round(rng() * 6) / 4);
      const norms = Float32Array.from({ length: k }, () => Math.round(rng() * 4) / 4);
      const idx = nearestCodeHeap(tf.tensor2d(dot, [m, k]), tf.tensor1d(norms));
      expect(idx).not.toBeNull();
      expect(idx!.dtype).toBe('int32');
      expect(Array.from(idx!.dataSync())).toEqual(reference(dot, norms, m, k));
    });
  }
  it('ties: a smaller index wins within a lane and across lanes; a later strictly smaller value wins', () => {
    const k = 8;
    const rows = [
      [5, 1, 5, 5, 5, 1, 5, 5], // lane 1: indices 1 and 5 -> 1
      [5, 5, 1, 5, 5, 1, 5, 5], // lanes 2 and 1: indices 2 and 5 -> 2
      [5, 5, 5, 5, 5, 5, 5, 0], // last index
      [3, 3, 3, 3, 3, 3, 3, 3], // all equal -> 0
    ];
    const dot = Float32Array.from(rows.flat(), (v) => -v / 2); // d = 0 - 2 * dot = v
    const idx = nearestCodeHeap(tf.tensor2d(dot, [rows.length, k]), tf.zeros([k]) as tf.Tensor1D)!;
    expect(Array.from(idx.dataSync())).toEqual([1, 2, 7, 0]);
  });
  it('codes not a multiple of 4: null (the caller keeps its loop)', () => {
    expect(nearestCodeHeap(tf.zeros([3, 6]) as tf.Tensor2D, tf.zeros([6]) as tf.Tensor1D)).toBeNull();
  });
});
