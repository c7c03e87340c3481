/**
 * Data-parallel training on the wasm backend (src/trainer/data-parallel.ts): a real helper thread
 * with its own wasm backend computes the second shard of each batch; the run must equal the
 * sequential reference (both shards in this thread) bit for bit, losses and weights, for both
 * model kinds; one shard must equal the unsharded step; BatchNorm statistics merge to the whole
 * batch's.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifierPreset, createClassifier, type Classifier } from '../../src/core/ml/classifier';
import { createOptimizer } from '../../src/core/ml/optim';
import { trainStepRecon, type ClassBatch, type ReconBatch } from '../../src/core/ml/train-step';
import { createVqvae, vqvaePreset, type Vqvae } from '../../src/core/ml/vqvae';
import { exportWeights } from '../../src/core/ml/weights';
import { Rng } from '../../src/core/random';
import { initBackend } from '../../src/trainer/backend';
import { DEFAULT_WASM_DATA_PARALLEL, WHOLE_BATCH_PRESETS, GradientHelper, ShardedStep, mergeStats, splitCounts, wasmDataParallel, type ShardBatch, type ShardModelSpec } from '../../src/trainer/data-parallel';

function reconBatch(n: number, s: number, seed: number): ReconBatch {
  const rng = new Rng(seed);
  const target = Float32Array.from({ length: n * s * s }, () => rng.next());
  const mask = new Float32Array(target.length);
  const input = Float32Array.from(target);
  for (let b = 0; b < n; b++) for (let y = s / 4; y < s / 2; y++) for (let x = s / 4; x < s / 2; x++) {
    mask[(b * s + y) * s + x] = 1;
    input[(b * s + y) * s + x] = 0;
  }
  return { shape: [n, s, s, 1], input, target, mask };
}

function classBatch(n: number, s: number, seed: number): ClassBatch {
  const rng = new Rng(seed);
  return { shape: [n, s, s, 1], input: Float32Array.from({ length: n * s * s }, () => rng.next()), labels: Int32Array.from({ length: n }, (_, i) => i % 4) };
}

const bits = (entries: { name: string; data: Float32Array }[]) => entries.map((e) => [e.name, Array.from(new Uint32Array(e.data.buffer, e.data.byteOffset, e.data.length))]);

/**
 * Three Adam steps on 2 shards, sequential then with a helper thread (handed over `started`, or
 * started `at-first-step`); asserts both runs train the same losses and weights, bit for bit, and
 * returns the sequential run's.
 */
async function parallelEqualsSequential(spec: ShardModelSpec, create: () => Vqvae | Classifier, batch: (i: number) => ShardBatch, helper: 'started' | 'at-first-step') {
  const run = async (parallel: boolean) => {
    const model = create();
    const opt = createOptimizer('adam', { lr: 1e-3 });
    const start = () => GradientHelper.start({ model: spec });
    const step = new ShardedStep(2, !parallel ? null : helper === 'started' ? await start() : start);
    if (helper === 'started') expect(step.parallel).toBe(parallel);
    const losses: Record<string, number>[] = [];
    for (let i = 0; i < 3; i++) losses.push(await step.step(model, opt, batch(i + 1)));
    expect(step.parallel).toBe(parallel);
    expect(step.fallback).toBeNull();
    await step.close();
    return { losses, weights: bits(exportWeights(model)) };
  };
  const seq = await run(false);
  const par = await run(true);
  expect(par.losses).toEqual(seq.losses);
  expect(par.weights).toEqual(seq.weights);
  return seq;
}

describe('data-parallel training (wasm)', () => {
  beforeAll(async () => {
    await initBackend({ force: 'wasm', wasmThreads: 1 });
  }, 60_000);
  afterAll(() => tf.disposeVariables());

  it('a helper thread computing the second shard trains the same losses and weights as both shards here, bit for bit (VQ-VAE)', async () => {
    const cfg = vqvaePreset('tiny');
    const seq = await parallelEqualsSequential({ kind: 'vqvae', config: cfg }, () => createVqvae(cfg, 7), (i) => reconBatch(6, cfg.size, i), 'started');
    expect(seq.losses[2].loss).not.toBe(seq.losses[0].loss);
  }, 120_000);

  it('the same for the encoder-classifier, with an odd batch (shards of 3 and 2)', async () => {
    const cfg = classifierPreset('tiny', 4, { size: 32 });
    await parallelEqualsSequential({ kind: 'classifier', config: cfg }, () => createClassifier(cfg, 3), (i) => classBatch(5, 32, i), 'at-first-step');
  }, 120_000);

  it('one shard is the unsharded step, bit for bit; two shards normalise each half by its own statistics', async () => {
    const cfg = vqvaePreset('tiny');
    const batch = reconBatch(4, cfg.size, 9);
    const a = createVqvae(cfg, 5);
    const b = createVqvae(cfg, 5);
    const c = createVqvae(cfg, 5);
    const whole = trainStepRecon(a, createOptimizer('adam'), batch);
    const one = await new ShardedStep(1, null).step(b, createOptimizer('adam'), batch);
    expect(one).toEqual({ ...whole });
    expect(bits(exportWeights(b))).toEqual(bits(exportWeights(a)));
    const two = await new ShardedStep(2, null).step(c, createOptimizer('adam'), batch);
    expect(two.loss).not.toBe(whole.loss);
    expect(two.loss).toBeCloseTo(whole.loss, 1);
  }, 60_000);

  it('merges shard statistics into the whole batch mean and biased variance; splits batches evenly', () => {
    const xs = [1, 2, 3, 4, 10, 20];
    const stat = (v: number[]) => {
      const m = v.reduce((s, x) => s + x, 0) / v.length;
      return { name: 'bn', mean: Float32Array.of(m), variance: Float32Array.of(v.reduce((s, x) => s + (x - m) ** 2, 0) / v.length), count: v.length };
    };
    const [merged] = mergeStats([[stat(xs.slice(0, 4))], [stat(xs.slice(4))]]);
    const want = stat(xs);
    expect(merged.count).toBe(6);
    expect(merged.mean[0]).toBeCloseTo(want.mean[0], 5);
    expect(merged.variance[0]).toBeCloseTo(want.variance[0], 4);
    expect(splitCounts(8, 2)).toEqual([4, 4]);
    expect(splitCounts(5, 2)).toEqual([3, 2]);
    expect(splitCounts(1, 2)).toEqual([1]);
    expect(() => new ShardedStep(3, () => Promise.reject(new Error('x')))).toThrow('a helper thread computes the second of 2 shards (got 3 shards)');
  });

  it('pretraining on wasm shards by default (a helper thread with 2 cores or more) except the presets whose steps are too short; CTSSL_WASM_THREADS and other backends train the whole batch', () => {
    // DEFAULT_WASM_DATA_PARALLEL false (the whole batch by default) turns the first three off
    expect(wasmDataParallel({ name: 'wasm' }, 'small', undefined, 2)).toBe(DEFAULT_WASM_DATA_PARALLEL ? 'parallel' : undefined);
    expect(wasmDataParallel({ name: 'wasm' }, 'standard', '', 8)).toBe(DEFAULT_WASM_DATA_PARALLEL ? 'parallel' : undefined);
    expect(wasmDataParallel({ name: 'wasm' }, 'small', undefined, 1)).toBe(DEFAULT_WASM_DATA_PARALLEL ? 'sequential' : undefined);
    expect(wasmDataParallel({ name: 'wasm' }, 'small', '1', 2)).toBeUndefined();
    expect(wasmDataParallel({ name: 'wasm' }, 'small', '2', 2)).toBeUndefined();
    expect(wasmDataParallel({ name: 'tensorflow' }, 'small', undefined, 2)).toBeUndefined();
    expect(wasmDataParallel({ name: 'cpu' }, 'small', undefined, 2)).toBeUndefined();
    // tiny: one thread measured faster than data-parallel (343 against 286 images/s, quiet machine)
    expect(WHOLE_BATCH_PRESETS).toEqual(['tiny']);
    expect(wasmDataParallel({ name: 'wasm' }, 'tiny', undefined, 2)).toBeUndefined();
    expect(wasmDataParallel({ name: 'wasm' }, 'tiny', undefined, 1)).toBeUndefined();
  });

  it('when the helper cannot start, both shards run here with the reason, and the numbers are the same', async () => {
    const cfg = vqvaePreset('tiny');
    const model = createVqvae(cfg, 7);
    const ref = createVqvae(cfg, 7);
    const step = new ShardedStep(2, () => GradientHelper.start({ model: { kind: 'vqvae', config: cfg } }, new URL('./no-such-worker.ts', import.meta.url)));
    const got = await step.step(model, createOptimizer('adam'), reconBatch(4, cfg.size, 1));
    const want = await new ShardedStep(2, null).step(ref, createOptimizer('adam'), reconBatch(4, cfg.size, 1));
    expect(step.parallel).toBe(false);
    expect(step.fallback).toMatch(/^the data-parallel helper thread did not start, both shards run in one thread: /);
    expect(got).toEqual(want);
  }, 60_000);
});
