import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { conv2d, conv2dTranspose, mulberry32, uniformArray } from '../../../src/core/ml/layers';
import { initBackend, wasmDistDir } from '../../../src/trainer/backend';

/** Runs f on the cpu backend and on wasm with the same inputs; returns both outputs as arrays. */
async function both(f: () => tf.Tensor | tf.Tensor[]): Promise<[Float32Array[], Float32Array[]]> {
  const run = () => tf.tidy(() => {
    const r = f();
    return (Array.isArray(r) ? r : [r]).map((t) => Float32Array.from(t.dataSync()));
  });
  await tf.setBackend('cpu');
  const a = run();
  await tf.setBackend('wasm');
  const b = run();
  return [a, b];
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const r = (shape: number[], seed: number) => tf.tensor(uniformArray(shape.reduce((x, y) => x * y), 1, mulberry32(seed)), shape);

describe('node backend selection', () => {
  beforeAll(async () => {
    const info = await initBackend({ force: 'wasm' });
    expect(info.name).toBe('wasm');
  });

  it('reports wasm with SIMD and the kernels it added for training', async () => {
    const info = await initBackend({ force: 'wasm' });
    expect(info).toMatchObject({ name: 'wasm', version: '4.22.0', simd: true, threads: false });
    expect(wasmDistDir()).toMatch(/tfjs-backend-wasm\/dist\/$/);
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeDefined();
  });

  it('without a native package it falls through to wasm and says why', async () => {
    const info = await initBackend();
    expect(['tensorflow', 'wasm']).toContain(info.name);
    if (info.name === 'wasm') expect(info.skipped.map((s) => s.package)).toEqual(['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']);
  });

  it('rejects an unknown CTSSL_BACKEND and a forced native backend that is absent', async () => {
    const old = process.env.CTSSL_BACKEND;
    process.env.CTSSL_BACKEND = 'metal';
    await expect(initBackend()).rejects.toThrow(/CTSSL_BACKEND/);
    process.env.CTSSL_BACKEND = old ?? '';
    if (old == null) delete process.env.CTSSL_BACKEND;
    const info = await initBackend({ force: 'cpu' });
    expect(info.name).toBe('cpu');
    await initBackend({ force: 'wasm' });
  });

  it("tf's own conv2d filter gradient and gather gradient work on wasm (fallback kernels)", async () => {
    const [cpu, wasm] = await both(() => {
      const x = r([2, 9, 9, 3], 1) as tf.Tensor4D;
      const w = r([4, 4, 3, 5], 2) as tf.Tensor4D;
      const gw = tf.grad((ww: tf.Tensor) => tf.sum(tf.square(tf.conv2d(x, ww as tf.Tensor4D, 2, 'same'))))(w);
      const gp = tf.grad((p: tf.Tensor) => tf.sum(tf.gather(p, tf.tensor1d([0, 2, 2], 'int32'))))(tf.tensor1d([1, 2, 3]));
      return [gw, gp];
    });
    expect(maxDiff(cpu[0], wasm[0])).toBeLessThan(1e-3);
    expect(Array.from(wasm[1])).toEqual([1, 0, 2]);
  });

  it('custom conv and transposed-conv gradients agree between wasm and cpu', async () => {
    const [cpu, wasm] = await both(() => {
      const x = r([2, 8, 8, 6], 3) as tf.Tensor4D;
      const w = r([4, 4, 6, 7], 4) as tf.Tensor4D;
      const wt = r([4, 4, 5, 6], 5) as tf.Tensor4D;
      const w3 = r([3, 3, 6, 6], 6) as tf.Tensor4D;
      const f = (xx: tf.Tensor, a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.add(
        tf.sum(tf.square(conv2d(xx as tf.Tensor4D, a as tf.Tensor4D, null, { stride: 2, pad: 1 }))),
        tf.add(tf.sum(tf.square(conv2dTranspose(xx as tf.Tensor4D, b as tf.Tensor4D, null, { stride: 2, pad: 1 }))),
          tf.sum(tf.square(conv2d(xx as tf.Tensor4D, c as tf.Tensor4D, null, { stride: 1, pad: 1 })))));
      return tf.grads(f)([x, w, wt, w3]);
    });
    cpu.forEach((g, i) => {
      const scale = Math.max(1, ...Array.from(g, Math.abs));
      expect(maxDiff(g, wasm[i]) / scale).toBeLessThan(1e-4);
    });
  });
});
