import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { classifierPreset, classifierParamCount, createClassifier } from '../../../src/core/ml/classifier';
import { createOptimizer } from '../../../src/core/ml/optim';
import { type ReconBatch, trainStepClassifier, trainStepRecon } from '../../../src/core/ml/train-step';
import { createVqvae, inferenceContext, initCodebookFromData, trainingContext, disposeContext, vqvaeForward, vqvaeParamCount, vqvaePreset } from '../../../src/core/ml/vqvae';
import { disposeStore, exportWeights, importWeights } from '../../../src/core/ml/weights';
import { initBackend } from '../../../src/trainer/backend';

// Training runs on the wasm backend (the one used on CPUs without libtensorflow); the gradient
// building blocks are checked against tf's own on the cpu backend in layers.test.ts.
beforeAll(async () => {
  await initBackend({ force: 'wasm' });
});

/** Parameter count of the reference VQ-VAE, written out layer by layer from reference-model.md. */
function handCount(ch: number, w1: number, w2: number, blocks: number, latent: number, codes: number): number {
  const conv = (k: number, i: number, o: number, bias: boolean) => k * k * i * o + (bias ? o : 0);
  const bn = (c: number) => 2 * c; // gamma, beta (running stats are buffers)
  const res = conv(3, w2, w2, false) + bn(w2) + conv(1, w2, w2, false);
  const e1 = conv(4, ch, w1, true) + bn(w1);
  const e2 = conv(4, w1, w2, true) + bn(w2);
  const e3 = conv(3, w2, w2, true) + bn(w2);
  const e4 = blocks * res;
  const e5 = conv(1, w2, latent, true) + bn(latent);
  const vq = codes * latent;
  const d1 = conv(3, latent, w2, true) + bn(w2);
  const d2 = blocks * res;
  const d3 = conv(4, w2, w1, true) + bn(w1); // transposed conv: same count
  const d4 = conv(4, w1, ch, true) + bn(ch);
  return e1 + e2 + e3 + e4 + e5 + vq + d1 + d2 + d3 + d4;
}

describe('presets', () => {
  it('paper preset has ~101.35M parameters at 3 channels', () => {
    const n = vqvaeParamCount(vqvaePreset('paper', { channels: 3 }));
    expect(n).toBe(handCount(3, 256, 512, 18, 64, 512));
    expect(n).toBe(101_353_673);
    expect(Math.round(n / 1e4) / 100).toBe(101.35);
  });
  it('standard preset has ~9.7M parameters at 3 channels', () => {
    const n = vqvaeParamCount(vqvaePreset('standard', { channels: 3 }));
    expect(n).toBe(handCount(3, 128, 256, 6, 64, 512));
    expect(Math.round(n / 1e5) / 10).toBe(9.7);
  });
  it('small preset matches the PyTorch reference module (bench/train_torch.py) count', () => {
    expect(vqvaeParamCount(vqvaePreset('small'))).toBe(342_467);
  });
  it('rejects bad configurations with the argument name', () => {
    expect(() => vqvaeParamCount(vqvaePreset('tiny', { size: 30 }))).toThrow(/size/);
    expect(() => vqvaePreset('huge' as 'tiny')).toThrow(/preset/);
  });
});

function syntheticBatch(n: number, s: number, seed: number): ReconBatch {
  const target = new Float32Array(n * s * s);
  let a = seed;
  const rnd = () => ((a = (a * 1103515245 + 12345) >>> 0) / 4294967296);
  for (let b = 0; b < n; b++) {
    const cx = s * (0.3 + 0.4 * rnd());
    const cy = s * (0.3 + 0.4 * rnd());
    const r = s * (0.15 + 0.15 * rnd());
    for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) {
      const d = Math.hypot(x - cx, y - cy);
      target[(b * s + y) * s + x] = d < r ? 0.8 : 0.2 + 0.1 * Math.sin(x / 5);
    }
  }
  const mask = new Float32Array(target.length);
  const input = Float32Array.from(target);
  for (let b = 0; b < n; b++) for (let y = s / 4; y < s / 2; y++) for (let x = s / 4; x < s / 2; x++) {
    mask[(b * s + y) * s + x] = 1;
    input[(b * s + y) * s + x] = 0;
  }
  return { shape: [n, s, s, 1], input, target, mask };
}

describe('training the tiny preset', () => {
  it('no tensor growth across steps and the loss falls', () => {
    const cfg = vqvaePreset('tiny');
    const model = createVqvae(cfg, 7);
    const opt = createOptimizer('adam', { lr: 2e-3 });
    const batch = syntheticBatch(4, cfg.size, 3);
    const losses: number[] = [];
    const counts: number[] = [];
    for (let i = 0; i < 25; i++) {
      const l = trainStepRecon(model, opt, batch);
      for (const v of Object.values(l)) expect(Number.isFinite(v)).toBe(true);
      losses.push(l.loss);
      counts.push(tf.memory().numTensors);
    }
    expect(new Set(counts.slice(1)).size).toBe(1);
    const first = (losses[0] + losses[1]) / 2;
    const last = (losses[23] + losses[24]) / 2;
    expect(last).toBeLessThan(first - 0.05);
    opt.dispose();
    disposeStore(model);
  });

  it('data-dependent codebook start puts codes on the encoder outputs (small VQ loss at step 0)', () => {
    const cfg = vqvaePreset('tiny');
    const batch = syntheticBatch(4, cfg.size, 3);
    const vqLossAfter = (init: boolean) => {
      const model = createVqvae(cfg, 7);
      const x = tf.tensor4d(batch.input, batch.shape);
      if (init) initCodebookFromData(model, x, 3);
      const ctx = trainingContext();
      const loss = tf.tidy(() => vqvaeForward(model, x, ctx).vqLoss.dataSync()[0]);
      disposeContext(ctx);
      const before = tf.memory().numTensors;
      x.dispose();
      disposeStore(model);
      expect(tf.memory().numTensors).toBeLessThan(before);
      return loss;
    };
    const uniform = vqLossAfter(false);
    const data = vqLossAfter(true);
    expect(data).toBeLessThan(uniform / 2);
  });

  it('weights export/import round-trips, names are stable and unique', () => {
    const cfg = vqvaePreset('tiny');
    const a = createVqvae(cfg, 1);
    const b = createVqvae(cfg, 2);
    const opt = createOptimizer('adam');
    trainStepRecon(a, opt, syntheticBatch(2, cfg.size, 1)); // moves running stats too
    const entries = exportWeights(a);
    const names = entries.map((e) => e.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toContain('encoder.e1.conv.weight');
    expect(names).toContain('encoder.res.0.bn.running_var');
    expect(names).toContain('vq.codebook');
    expect(names).toContain('decoder.d4.convt.weight');
    expect(entries.find((e) => e.name === 'decoder.d4.convt.weight')!.shape).toEqual([4, 4, 1, 8]);
    importWeights(b, entries);
    const x = tf.tensor4d(syntheticBatch(2, cfg.size, 5).input, [2, cfg.size, cfg.size, 1]);
    const ya = tf.tidy(() => vqvaeForward(a, x, inferenceContext()).recon.dataSync());
    const yb = tf.tidy(() => vqvaeForward(b, x, inferenceContext()).recon.dataSync());
    expect(Array.from(yb)).toEqual(Array.from(ya));
    expect(() => importWeights(b, entries.slice(1))).toThrow(/missing/);
    const bad = entries.map((e) => (e.name === 'vq.codebook' ? { ...e, shape: [1, e.data.length] } : e));
    expect(() => importWeights(b, bad)).toThrow(/vq.codebook/);
    x.dispose();
    opt.dispose();
    disposeStore(a);
    disposeStore(b);
  });
});

describe('classifier', () => {
  it('shares the encoder names, trains without tensor growth', () => {
    const cfg = classifierPreset('tiny', 4);
    expect(classifierParamCount(cfg)).toBeGreaterThan(0);
    const model = createClassifier(cfg, 3);
    expect([...model.params.keys()]).toContain('encoder.e5.conv.weight');
    const opt = createOptimizer('radam');
    const vb = syntheticBatch(8, cfg.size, 9);
    const batch = { shape: vb.shape, input: vb.target, labels: new Int32Array([0, 1, 2, 3, 0, 1, 2, 3]) };
    const counts: number[] = [];
    let first = 0;
    let last = 0;
    for (let i = 0; i < 12; i++) {
      const l = trainStepClassifier(model, opt, batch);
      if (i === 0) first = l.loss;
      last = l.loss;
      counts.push(tf.memory().numTensors);
    }
    expect(new Set(counts.slice(1)).size).toBe(1);
    expect(last).toBeLessThan(first);
    opt.dispose();
    disposeStore(model);
  });
});
