import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifierPreset } from '../../src/core/ml/classifier';
import { createOptimizer } from '../../src/core/ml/optim';
import { type ReconBatch, trainStepRecon } from '../../src/core/ml/train-step';
import { createVqvae, vqvaePreset } from '../../src/core/ml/vqvae';
import { disposeStore, exportWeights } from '../../src/core/ml/weights';
import { initBackend } from '../../src/trainer/backend';
import { TrainPool, mergeStats, splitCounts } from '../../src/trainer/pool/ml-workers';

const cfg = vqvaePreset('tiny');

function batch(n: number, seed: number): ReconBatch {
  const s = cfg.size;
  const target = new Float32Array(n * s * s);
  for (let i = 0; i < target.length; i++) target[i] = 0.5 + 0.4 * Math.sin(i * 0.013 + seed);
  return { shape: [n, s, s, 1], input: Float32Array.from(target, (v) => v * 0.9), target };
}

beforeAll(async () => {
  await initBackend({ force: 'wasm' });
});

describe('helpers', () => {
  it('splitCounts', () => {
    expect(splitCounts(8, 2)).toEqual([4, 4]);
    expect(splitCounts(5, 2)).toEqual([3, 2]);
    expect(splitCounts(1, 3)).toEqual([1, 0, 0]);
  });
  it('mergeStats gives the whole-batch mean and variance', () => {
    const a = [1, 2, 3];
    const b = [10, 20];
    const m = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
    const va = (v: number[]) => m(v.map((x) => (x - m(v)) ** 2));
    const st = (v: number[]) => [{ name: 'l', mean: Float32Array.of(m(v)), variance: Float32Array.of(va(v)), count: v.length }];
    const r = mergeStats([st(a), st(b)])[0];
    expect(r.count).toBe(5);
    expect(r.mean[0]).toBeCloseTo(m([...a, ...b]), 4);
    expect(r.variance[0]).toBeCloseTo(va([...a, ...b]), 3);
  });
});

describe('TrainPool', () => {
  let pool: TrainPool | null = null;
  afterAll(async () => {
    await pool?.close();
  });

  it('one worker reproduces the in-process step exactly', async () => {
    const one = await TrainPool.create({ workers: 1, backend: 'wasm', model: { kind: 'vqvae', config: cfg, seed: 4 }, optimizer: { kind: 'adam' } });
    const local = createVqvae(cfg, 4);
    const opt = createOptimizer('adam');
    try {
      for (let i = 0; i < 3; i++) {
        const lp = await one.step(batch(4, i));
        const ll = trainStepRecon(local, opt, batch(4, i));
        expect(lp.loss).toBe(ll.loss);
      }
      const wp = await one.getWeights();
      const wl = exportWeights(local);
      expect(wp.map((e) => e.name)).toEqual(wl.map((e) => e.name));
      wp.forEach((e, i) => expect(Array.from(e.data)).toEqual(Array.from(wl[i].data)));
    } finally {
      await one.close();
      opt.dispose();
      disposeStore(local);
    }
  }, 60_000);

  it('trains a classifier over two workers', async () => {
    const ccfg = classifierPreset('tiny', 3);
    const cp = await TrainPool.create({ workers: 2, backend: 'wasm', model: { kind: 'classifier', config: ccfg, seed: 2 }, optimizer: { kind: 'adam' } });
    try {
      const b = batch(5, 3);
      const l = await cp.step({ shape: b.shape, input: b.input, labels: new Int32Array([0, 1, 2, 0, 1]) });
      expect(Number.isFinite(l.loss)).toBe(true);
      expect(l.accuracy).toBeGreaterThanOrEqual(0);
      expect((await cp.getWeights()).some((e) => e.name === 'head.fc.weight')).toBe(true);
    } finally {
      await cp.close();
    }
  }, 60_000);

  it('two workers train, stay identical, leak nothing, and checkpoint state round-trips', async () => {
    pool = await TrainPool.create({ workers: 2, backend: 'wasm', model: { kind: 'vqvae', config: cfg, seed: 1 }, optimizer: { kind: 'radam' } });
    expect(pool.size).toBe(2);
    expect(pool.backend).toBe('wasm');
    const counts: number[][] = [];
    const losses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const l = await pool.step(batch(6, 0));
      losses.push(l.loss);
      counts.push(await pool.numTensors());
    }
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(counts[3]).toEqual(counts[1]);
    // save, take two steps, restore, take the same two steps: same losses
    const weights = await pool.getWeights();
    const state = await pool.getOptimizerState();
    const a = [(await pool.step(batch(6, 1))).loss, (await pool.step(batch(6, 2))).loss];
    await pool.setWeights(weights);
    await pool.setOptimizerState(state);
    const b = [(await pool.step(batch(6, 1))).loss, (await pool.step(batch(6, 2))).loss];
    expect(b).toEqual(a);
    expect(tf.memory().numTensors).toBeGreaterThanOrEqual(0);
  }, 60_000);
});
