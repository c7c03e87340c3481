import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { createClassifier, classifierPreset } from '../../../src/core/ml/classifier';
import {
  type DownstreamConfig, type DownstreamModel, type SegBatch, bceWithLogits, createDownstreamModel, disposeDownstreamModel,
  downstreamForward, downstreamParamCount, embedding, exportDownstreamWeights, finetuneStep, importDownstreamWeights,
  loadPretrainedEncoder, predict, recalibrateBatchNorm, segmentationLoss, softDiceLoss, weightedCrossEntropy,
} from '../../../src/core/ml/downstream';
import { mulberry32 } from '../../../src/core/ml/layers';
import { createOptimizer } from '../../../src/core/ml/optim';
import { type ClassBatch, trainStepRecon } from '../../../src/core/ml/train-step';
import { unetEncoderSpecs } from '../../../src/core/ml/unet';
import { createVqvae, disposeContext, encode, inferenceContext, trainingContext, vqvaePreset } from '../../../src/core/ml/vqvae';
import { type WeightEntry, disposeStore, exportWeights } from '../../../src/core/ml/weights';
import { initBackend } from '../../../src/trainer/backend';

// Training runs on the wasm backend; gradients are checked against tf's own ops on the cpu
// backend in downstream-grad.test.ts.
beforeAll(async () => {
  await initBackend({ force: 'wasm' });
});

const S = 32;

/**
 * Toy data: noisy images, even-indexed ones hold a bright disk (label 1, mask = the disk), odd
 * ones are noise only (label 0, empty mask).
 */
function disks(n: number, seed: number): SegBatch & { labels: Int32Array } {
  const r = mulberry32(seed);
  const input = new Float32Array(n * S * S);
  const mask = new Float32Array(n * S * S);
  const labels = new Int32Array(n);
  for (let b = 0; b < n; b++) {
    labels[b] = b % 2 === 0 ? 1 : 0;
    const cx = 6 + r() * (S - 12);
    const cy = 6 + r() * (S - 12);
    const rad = 3 + r() * 4;
    for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) {
      const i = (b * S + y) * S + x;
      const inside = labels[b] === 1 && Math.hypot(x - cx, y - cy) < rad;
      mask[i] = inside ? 1 : 0;
      input[i] = (inside ? 0.65 : 0.3) + (r() - 0.5) * 0.4;
    }
  }
  return { shape: [n, S, S, 1], input, mask, labels };
}

const classBatch = (b: ReturnType<typeof disks>): ClassBatch => ({ shape: b.shape, input: b.input, labels: b.labels });

function hardDice(p: Float32Array, g: Float32Array): number {
  let inter = 0;
  let a = 0;
  let b = 0;
  for (let k = 0; k < p.length; k++) {
    const h = p[k] > 0.5 ? 1 : 0;
    inter += h * g[k];
    a += h;
    b += g[k];
  }
  return a + b > 0 ? (2 * inter) / (a + b) : 1;
}

function accuracy(p: Float32Array, labels: Int32Array): number {
  let c = 0;
  for (let i = 0; i < labels.length; i++) c += (p[2 * i + 1] > p[2 * i] ? 1 : 0) === labels[i] ? 1 : 0;
  return c / labels.length;
}

function snapshot(model: DownstreamModel, filter: (name: string) => boolean): Map<string, Float32Array> {
  const m = new Map<string, Float32Array>();
  for (const e of exportWeights(model)) if (filter(e.name)) m.set(e.name, e.data);
  return m;
}

function sameData(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
}

const tinyUnet: DownstreamConfig = { kind: 'unet', preset: 'tiny', size: S };

describe('configurations and parameter counts', () => {
  it('counts per kind and preset (U-Net up branch and CNN counted by hand for tiny)', () => {
    const conv = (k: number, i: number, o: number, bias: boolean) => k * k * i * o + (bias ? o : 0);
    const bn = (c: number) => 2 * c;
    // tiny: w1 8, w2 16, up widths m 8, t 8, one input channel concatenated before the last conv
    const up = conv(4, 16, 8, false) + bn(8) + conv(3, 16, 8, false) + bn(8) + conv(3, 8, 8, false) + bn(8)
      + conv(4, 8, 8, false) + bn(8) + conv(3, 9, 8, false) + bn(8) + conv(1, 8, 1, true);
    const down = conv(4, 1, 8, true) + bn(8) + conv(4, 8, 16, true) + bn(16) + conv(3, 16, 16, true) + bn(16)
      + conv(3, 16, 16, false) + bn(16) + conv(1, 16, 16, false);
    expect(downstreamParamCount(tinyUnet)).toEqual({ total: down + up, encoder: down, rest: up });
    const se = (w: number, r: number) => w * r + r + r * w + w;
    // SE bottleneck max(4, w / 4)
    const block0 = (i: number, w: number) => conv(4, i, w, false) + bn(w) + conv(3, w, w, false) + bn(w) + se(w, Math.max(4, w / 4)) + conv(1, i, w, false) + bn(w);
    const cnnTiny = conv(4, 1, 8, false) + bn(8) + block0(8, 8) + block0(8, 16) + block0(16, 32) + 32 * 2 + 2;
    expect(downstreamParamCount({ kind: 'cnn', preset: 'tiny' }).total).toBe(cnnTiny);
    const counts: Record<string, number[]> = {};
    for (const kind of ['encoder-classifier', 'cnn', 'unet'] as const) {
      counts[kind] = (['tiny', 'small', 'standard', 'paper'] as const).map((preset) => downstreamParamCount({ kind, preset }).total);
    }
    expect(counts).toEqual({
      'encoder-classifier': [9_458, 288_674, 5_201_474, 51_833_282],
      cnn: [25_386, 390_738, 3_127_554, 22_675_630],
      unet: [12_729, 224_129, 6_189_569, 56_210_433],
    });
  });

  it("the encoder-classifier's head pools by mean (default) or by mean and max (2 x head width into the dense layer)", () => {
    const base = downstreamParamCount({ kind: 'encoder-classifier', preset: 'tiny', size: S });
    const mm = downstreamParamCount({ kind: 'encoder-classifier', preset: 'tiny', size: S, pool: 'mean-max' });
    // head.fc: [8, 2] -> [16, 2]
    expect(mm.total - base.total).toBe(8 * 2);
    expect(mm.encoder).toBe(base.encoder);
    const wide = downstreamParamCount({ kind: 'encoder-classifier', preset: 'tiny', size: S, headWidth: 16 });
    expect(wide.encoder).toBe(base.encoder);
    const m = createDownstreamModel({ kind: 'encoder-classifier', preset: 'tiny', size: S, pool: 'mean-max' }, 1);
    expect(m.params.get('head.fc.weight')!.shape).toEqual([16, 2]);
    const x = disks(3, 4);
    const out = tf.tidy(() => downstreamForward(m, tf.tensor4d(x.input, x.shape), inferenceContext()).arraySync() as number[][]);
    expect(out).toHaveLength(3);
    expect(out.flat().every(Number.isFinite)).toBe(true);
    disposeDownstreamModel(m);
    expect(() => createDownstreamModel({ kind: 'unet', preset: 'tiny', size: S, pool: 'mean-max' })).toThrow(/encoder-classifier only/);
    expect(() => createDownstreamModel({ kind: 'encoder-classifier', preset: 'tiny', size: S, pool: 'max' as never })).toThrow(/pool must be/);
  });

  it('rejects bad configurations naming the argument', () => {
    expect(() => createDownstreamModel({ kind: 'resnet' as 'cnn', preset: 'tiny' })).toThrow(/config\.kind/);
    expect(() => createDownstreamModel({ kind: 'cnn', preset: 'huge' as 'tiny' })).toThrow(/config\.preset/);
    expect(() => createDownstreamModel({ kind: 'cnn', preset: 'tiny', classes: 1 })).toThrow(/classes/);
    expect(() => createDownstreamModel({ kind: 'unet', preset: 'tiny', size: 30 })).toThrow(/size/);
    expect(() => createDownstreamModel({ kind: 'cnn', preset: 'tiny', size: 40 })).toThrow(/size must be a multiple of 16/);
  });
});

describe('U-Net', () => {
  it('has the right shapes and loads a VQ-VAE encoder exactly, leaving the up branch untouched', () => {
    const vq = createVqvae(vqvaePreset('tiny'), 5);
    // one step so that the running statistics differ from their initial values too
    const opt = createOptimizer('adam');
    const d = disks(2, 11);
    const big = new Float32Array(2 * 64 * 64).map((_, i) => d.input[i % d.input.length]);
    trainStepRecon(vq, opt, { shape: [2, 64, 64, 1], input: big, target: big });
    opt.dispose();
    const source = exportWeights(vq);
    const model = createDownstreamModel(tinyUnet, 1);
    const upBefore = snapshot(model, (n) => n.startsWith('up.'));
    const report = loadPretrainedEncoder(model, source);
    const encoderNames = unetEncoderSpecs({ channels: 1, widths: [8, 16], resBlocks: 1 }).map((s) => s.name);
    expect(report.loaded.sort()).toEqual([...encoderNames].sort());
    expect(report.missing).toEqual([]);
    expect(report.ignored).toContain('vq.codebook');
    expect(report.ignored).toContain('encoder.e5.conv.weight');
    expect(report.ignored).toContain('decoder.d4.convt.weight');
    const after = snapshot(model, () => true);
    const bySource = new Map(source.map((e) => [e.name, e.data]));
    for (const name of encoderNames) expect(sameData(after.get(name)!, bySource.get(name)!), name).toBe(true);
    expect(sameData(after.get('encoder.e2.bn.running_mean')!, new Float32Array(16))).toBe(false);
    for (const [name, data] of upBefore) expect(sameData(after.get(name)!, data), name).toBe(true);
    // shapes: logits [N, S, S, 1]; probabilities in [0, 1]
    const x = tf.tensor4d(disks(3, 1).input, [3, S, S, 1]);
    const shape = tf.tidy(() => downstreamForward(model, x, inferenceContext()).shape);
    expect(shape).toEqual([3, S, S, 1]);
    const p = predict(model, x, { batchSize: 2 });
    expect(p.length).toBe(3 * S * S);
    expect(p.every((v) => v >= 0 && v <= 1)).toBe(true);
    expect(Array.from(predict(model, x))).toEqual(Array.from(p));
    x.dispose();
    disposeStore(vq);
    disposeDownstreamModel(model);
  });

  it('refuses encoders that do not fit, with a clear message, before changing anything', () => {
    const model = createDownstreamModel(tinyUnet, 1);
    const before = snapshot(model, () => true);
    const small = createVqvae(vqvaePreset('small'), 1);
    expect(() => loadPretrainedEncoder(model, exportWeights(small))).toThrow(/different preset.*encoder\.e1\.conv\.weight/);
    disposeStore(small);
    const cnn = createDownstreamModel({ kind: 'cnn', preset: 'tiny' }, 1);
    expect(() => loadPretrainedEncoder(model, exportWeights(cnn))).toThrow(/none of the .* entries is an encoder tensor/);
    expect(() => loadPretrainedEncoder(cnn, exportWeights(model))).toThrow(/'cnn' model has no encoder/);
    const after = snapshot(model, () => true);
    for (const [name, data] of before) expect(sameData(after.get(name)!, data)).toBe(true);
    disposeDownstreamModel(cnn);
    disposeDownstreamModel(model);
  });
});

describe('encoder classifier', () => {
  it('loads the encoder of a VQ-VAE and of a rotation classifier; reports missing tensors', () => {
    const model = createDownstreamModel({ kind: 'encoder-classifier', preset: 'tiny', size: S }, 2);
    const vq = createVqvae(vqvaePreset('tiny'), 9);
    const r = loadPretrainedEncoder(model, exportWeights(vq));
    expect(r.loaded.length).toBe([...model.params.keys(), ...model.buffers.keys()].filter((n) => n.startsWith('encoder.')).length);
    expect(r.missing).toEqual([]);
    const rot = createClassifier(classifierPreset('tiny', 4), 3);
    const partial: WeightEntry[] = exportWeights(rot).filter((e) => !e.name.startsWith('encoder.res.0.'));
    const r2 = loadPretrainedEncoder(model, partial);
    expect(r2.missing.sort()).toEqual(['encoder.res.0.bn.running_mean', 'encoder.res.0.bn.running_var', 'encoder.res.0.bn.bias',
      'encoder.res.0.bn.weight', 'encoder.res.0.conv1.weight', 'encoder.res.0.conv2.weight'].sort());
    expect(r2.ignored).toContain('head.fc.weight'); // the 4-class head is not loaded
    disposeStore(vq);
    disposeStore(rot);
    disposeDownstreamModel(model);
  });
});

describe('losses by hand', () => {
  it('class weights in the cross-entropy', () => {
    tf.tidy(() => {
      const logits = tf.tensor2d([[2, 0], [0, 1], [1, 1]]);
      const labels = new Int32Array([0, 1, 1]);
      const nll = [Math.log(1 + Math.exp(-2)), Math.log(1 + Math.exp(-1)), Math.log(2)];
      expect(weightedCrossEntropy(logits, labels).dataSync()[0]).toBeCloseTo((nll[0] + nll[1] + nll[2]) / 3, 6);
      // weights 1 and 3: (1 * nll0 + 3 * nll1 + 3 * nll2) / (1 + 3 + 3)
      expect(weightedCrossEntropy(logits, labels, [1, 3]).dataSync()[0]).toBeCloseTo((nll[0] + 3 * nll[1] + 3 * nll[2]) / 7, 6);
      expect(() => weightedCrossEntropy(logits, labels, [1, 2, 3])).toThrow(/classWeights/);
    });
  });

  it('finetuneStep reports the weighted loss of the batch', () => {
    const model = createDownstreamModel({ kind: 'cnn', preset: 'tiny', size: S }, 4);
    const b = classBatch(disks(4, 21));
    b.labels.set([1, 0, 0, 0]);
    const ctx = trainingContext();
    const z = tf.tidy(() => downstreamForward(model, tf.tensor4d(b.input, b.shape), ctx).dataSync());
    disposeContext(ctx);
    const nll = [0, 1, 2, 3].map((i) => {
      const [a, c] = [z[2 * i], z[2 * i + 1]];
      const lse = Math.max(a, c) + Math.log(Math.exp(a - Math.max(a, c)) + Math.exp(c - Math.max(a, c)));
      return lse - (b.labels[i] === 1 ? c : a);
    });
    const w = [0.25, 3];
    const expected = (w[1] * nll[0] + w[0] * (nll[1] + nll[2] + nll[3])) / (w[1] + 3 * w[0]);
    const opt = createOptimizer('adam', { lr: 1e-3 });
    const l = finetuneStep(model, opt, b, { classWeights: w });
    expect(l.loss).toBeCloseTo(expected, 5);
    expect(Math.abs(expected - (nll[0] + nll[1] + nll[2] + nll[3]) / 4)).toBeGreaterThan(0.01);
    expect(() => finetuneStep(model, opt, b, { classWeights: [1] })).toThrow(/opts\.classWeights/);
    expect(() => finetuneStep(model, opt, b, { freezeEncoder: true })).toThrow(/freezeEncoder/);
    opt.dispose();
    disposeDownstreamModel(model);
  });

  it('soft Dice + BCE on a 2x2 case', () => {
    tf.tidy(() => {
      const z = [0, 2, -1, 3];
      const g = [1, 0, 0, 1];
      const logits = tf.tensor4d(z, [1, 2, 2, 1]);
      const mask = tf.tensor4d(g, [1, 2, 2, 1]);
      const sig = (v: number) => 1 / (1 + Math.exp(-v));
      const p = z.map(sig); // 0.5, 0.8808, 0.2689, 0.9526
      const bce = -z.reduce((s, _, i) => s + (g[i] * Math.log(p[i]) + (1 - g[i]) * Math.log(1 - p[i])), 0) / 4;
      expect(bce).toBeCloseTo(0.7955, 3); // (0.6931 + 2.1269 + 0.3133 + 0.0486) / 4
      const inter = p[0] + p[3];
      const diceLoss = 1 - (2 * inter + 1) / (p.reduce((a, b) => a + b, 0) + 2 + 1);
      expect(diceLoss).toBeCloseTo(0.3029, 3); // 1 - (2 * 1.4526 + 1) / (2.6023 + 3)
      expect(bceWithLogits(logits, mask).dataSync()[0]).toBeCloseTo(bce, 5);
      expect(softDiceLoss(logits, mask).dataSync()[0]).toBeCloseTo(diceLoss, 5);
      const t = segmentationLoss(logits, mask, { dice: 0.5, bce: 2 });
      expect(t.total.dataSync()[0]).toBeCloseTo(0.5 * diceLoss + 2 * bce, 5);
      // per image: the mean of each image's Dice; an empty image predicted empty-ish counts too
      const two = tf.tensor4d([...z, -3, -3, -3, -3], [2, 2, 2, 1]);
      const twoMask = tf.tensor4d([...g, 0, 0, 0, 0], [2, 2, 2, 1]);
      const q = sig(-3);
      const emptyDice = 1 / (4 * q + 1);
      expect(softDiceLoss(two, twoMask, 1, true).dataSync()[0]).toBeCloseTo(1 - ((1 - diceLoss) + emptyDice) / 2, 5);
      // extreme logits stay finite
      expect(Number.isFinite(bceWithLogits(tf.tensor1d([200, -200]), tf.tensor1d([0, 1])).dataSync()[0])).toBe(true);
    });
  });
});

describe('fine-tuning', () => {
  it('a frozen encoder stays bit-identical (parameters and running statistics) while the rest trains', () => {
    for (const kind of ['unet', 'encoder-classifier'] as const) {
      const model = createDownstreamModel({ kind, preset: 'tiny', size: S }, 6);
      const enc0 = snapshot(model, (n) => n.startsWith('encoder.'));
      const rest0 = snapshot(model, (n) => !n.startsWith('encoder.'));
      const opt = createOptimizer('adam', { lr: 1e-2 });
      const counts: number[] = [];
      for (let i = 0; i < 3; i++) {
        const d = disks(4, 30 + i);
        if (kind === 'unet') finetuneStep(model, opt, d, { freezeEncoder: true });
        else finetuneStep(model, opt, classBatch(d), { freezeEncoder: true });
        counts.push(tf.memory().numTensors);
      }
      expect(new Set(counts.slice(1)).size).toBe(1);
      const enc1 = snapshot(model, (n) => n.startsWith('encoder.'));
      for (const [name, data] of enc0) expect(sameData(enc1.get(name)!, data), `${kind} ${name}`).toBe(true);
      const rest1 = snapshot(model, (n) => !n.startsWith('encoder.'));
      let changed = 0;
      for (const [name, data] of rest0) if (!sameData(rest1.get(name)!, data)) changed++;
      expect(changed).toBe(rest0.size); // every head / up-branch tensor moved, running stats included
      // unfreezing trains the encoder too
      const d = disks(4, 40);
      if (kind === 'unet') finetuneStep(model, opt, d);
      else finetuneStep(model, opt, classBatch(d));
      const enc2 = snapshot(model, (n) => n.startsWith('encoder.'));
      expect(sameData(enc2.get('encoder.e1.conv.weight')!, enc0.get('encoder.e1.conv.weight')!)).toBe(false);
      expect(sameData(enc2.get('encoder.e1.bn.running_mean')!, enc0.get('encoder.e1.bn.running_mean')!)).toBe(false);
      opt.dispose();
      disposeDownstreamModel(model);
    }
  });

  it('the U-Net learns bright disks on noise (32x32): held-out Dice rises clearly, no tensor growth', () => {
    const model = createDownstreamModel(tinyUnet, 3);
    const opt = createOptimizer('adam', { lr: 1e-2 });
    const test = disks(16, 999);
    const dice0 = hardDice(predict(model, test), test.mask);
    const counts: number[] = [];
    const losses: number[] = [];
    const steps = 25;
    for (let i = 0; i < steps; i++) {
      const l = finetuneStep(model, opt, disks(8, 100 + i), { lossWeights: { dice: 1, bce: 1 } });
      for (const v of Object.values(l)) expect(Number.isFinite(v)).toBe(true);
      losses.push(l.loss);
      counts.push(tf.memory().numTensors);
    }
    expect(new Set(counts.slice(1)).size).toBe(1);
    const diceRunning = hardDice(predict(model, test), test.mask);
    recalibrateBatchNorm(model, [disks(8, 5000), disks(8, 5001)]);
    const dice = hardDice(predict(model, test), test.mask);
    console.log(`U-Net toy: held-out Dice ${dice0.toFixed(3)} -> ${dice.toFixed(3)} after ${steps} steps (batch 8, Adam 1e-2; ` +
      `${diceRunning.toFixed(3)} before BatchNorm recalibration), loss ${losses[0].toFixed(3)} -> ${losses[steps - 1].toFixed(3)}`);
    expect(dice0).toBeLessThan(0.2);
    expect(dice).toBeGreaterThan(0.85);
    expect(losses[steps - 1]).toBeLessThan(losses[0] * 0.6);
    const n0 = tf.memory().numTensors;
    predict(model, test);
    embedding(model, test);
    expect(tf.memory().numTensors).toBe(n0);
    opt.dispose();
    disposeDownstreamModel(model);
  });

  for (const kind of ['encoder-classifier', 'cnn'] as const) {
    it(`the ${kind} learns disk / no disk: held-out accuracy rises, no tensor growth`, () => {
      const model = createDownstreamModel({ kind, preset: 'tiny', size: S, classes: 2 }, 3);
      const opt = createOptimizer('adam', { lr: 1e-2 });
      const test = disks(16, 999);
      const acc0 = accuracy(predict(model, test), test.labels);
      const counts: number[] = [];
      const losses: number[] = [];
      const steps = 30;
      for (let i = 0; i < steps; i++) {
        const l = finetuneStep(model, opt, classBatch(disks(8, 100 + i)));
        losses.push(l.loss);
        counts.push(tf.memory().numTensors);
      }
      expect(new Set(counts.slice(1)).size).toBe(1);
      const accRunning = accuracy(predict(model, test), test.labels);
      recalibrateBatchNorm(model, [disks(8, 5000), disks(8, 5001)]);
      const acc = accuracy(predict(model, test), test.labels);
      console.log(`${kind} toy: held-out accuracy ${acc0.toFixed(3)} -> ${acc.toFixed(3)} after ${steps} steps (batch 8, Adam 1e-2; ` +
        `${accRunning.toFixed(3)} before BatchNorm recalibration), loss ${losses[0].toFixed(3)} -> ${losses[steps - 1].toFixed(3)}`);
      expect(acc0).toBeLessThanOrEqual(0.625);
      expect(acc).toBeGreaterThanOrEqual(0.9375);
      expect(losses[steps - 1]).toBeLessThan(losses[0] * 0.5);
      opt.dispose();
      disposeDownstreamModel(model);
    });
  }

  it('recalibrateBatchNorm sets running statistics to the averaged batch statistics (not a frozen encoder\'s)', () => {
    const model = createDownstreamModel({ kind: 'encoder-classifier', preset: 'tiny', size: S }, 2);
    const a = disks(4, 70);
    const b = disks(4, 71);
    const stats = (d: SegBatch) => {
      const ctx = trainingContext();
      tf.tidy(() => downstreamForward(model, tf.tensor4d(d.input, d.shape), ctx, { freezeEncoder: true }));
      const s = ctx.stats.get('head.c1.bn')!;
      const r = { mean: s.mean.dataSync().slice(), v: s.variance.dataSync().map((x) => (x * s.count) / (s.count - 1)) };
      disposeContext(ctx);
      return r;
    };
    const [sa, sb] = [stats(a), stats(b)];
    const enc0 = snapshot(model, (n) => n.startsWith('encoder.') && n.includes('running'));
    const n0 = tf.memory().numTensors;
    expect(recalibrateBatchNorm(model, [a, b], { freezeEncoder: true })).toBe(2); // head.c1.bn, head.c2.bn
    expect(tf.memory().numTensors).toBe(n0);
    const rm = model.buffers.get('head.c1.bn.running_mean')!.dataSync();
    const rv = model.buffers.get('head.c1.bn.running_var')!.dataSync();
    for (let i = 0; i < rm.length; i++) {
      expect(rm[i]).toBeCloseTo((sa.mean[i] + sb.mean[i]) / 2, 5);
      expect(rv[i]).toBeCloseTo((sa.v[i] + sb.v[i]) / 2, 5);
    }
    const enc1 = snapshot(model, (n) => n.startsWith('encoder.') && n.includes('running'));
    for (const [name, data] of enc0) expect(sameData(enc1.get(name)!, data), name).toBe(true);
    expect(recalibrateBatchNorm(model, [a])).toBe(7); // E1, E2, E3, res.0, E5, head c1, c2
    disposeDownstreamModel(model);
  });

  it('checks batches and their kind', () => {
    const unet = createDownstreamModel(tinyUnet, 1);
    const opt = createOptimizer('adam');
    const d = disks(2, 1);
    expect(() => finetuneStep(unet, opt, classBatch(d))).toThrow(/SegBatch/);
    expect(() => finetuneStep(unet, opt, { ...d, mask: d.mask.subarray(1) })).toThrow(/batch\.mask/);
    expect(() => finetuneStep(unet, opt, { ...d, shape: [2, 64, 64, 1] })).toThrow(/batch\.shape/);
    expect(() => finetuneStep(unet, opt, d, { lossWeights: { dice: -1 } })).toThrow(/lossWeights\.dice/);
    const cls = createDownstreamModel({ kind: 'encoder-classifier', preset: 'tiny', size: S }, 1);
    expect(() => finetuneStep(cls, opt, { ...classBatch(d), labels: new Int32Array([0, 2]) })).toThrow(/labels\[1\]/);
    opt.dispose();
    disposeDownstreamModel(unet);
    disposeDownstreamModel(cls);
  });
});

describe('weights, predictions, embeddings', () => {
  it('export / import round-trips exactly', () => {
    const a = createDownstreamModel({ kind: 'cnn', preset: 'tiny', size: S }, 1);
    const opt = createOptimizer('adam');
    finetuneStep(a, opt, classBatch(disks(4, 3)));
    const b = createDownstreamModel({ kind: 'cnn', preset: 'tiny', size: S }, 2);
    const test = disks(4, 7);
    expect(Array.from(predict(b, test))).not.toEqual(Array.from(predict(a, test)));
    importDownstreamWeights(b, exportDownstreamWeights(a));
    const pa = predict(a, test);
    expect(Array.from(predict(b, test))).toEqual(Array.from(pa));
    for (let i = 0; i < 4; i++) expect(pa[2 * i] + pa[2 * i + 1]).toBeCloseTo(1, 5);
    const u = createDownstreamModel(tinyUnet, 1);
    expect(() => importDownstreamWeights(u, exportDownstreamWeights(a))).toThrow(/missing/);
    opt.dispose();
    disposeDownstreamModel(a);
    disposeDownstreamModel(b);
    disposeDownstreamModel(u);
  });

  it('embeddings: VQ-VAE store, encoder classifier, U-Net, CNN', () => {
    const test = disks(5, 8);
    const vq = createVqvae(vqvaePreset('tiny'), 2);
    const e = embedding(vq, test, { batchSize: 2 });
    expect(e.shape).toEqual([5, 8]);
    const ref = tf.tidy(() => tf.mean(encode(vq, vq.config, tf.tensor4d(test.input, test.shape), inferenceContext()), [1, 2]).dataSync());
    expect(Array.from(e.data).every((v, i) => Math.abs(v - ref[i]) < 1e-6)).toBe(true);
    const cls = createDownstreamModel({ kind: 'encoder-classifier', preset: 'tiny', size: S }, 1);
    loadPretrainedEncoder(cls, exportWeights(vq));
    expect(Array.from(embedding(cls, test).data)).toEqual(Array.from(e.data));
    const unet = createDownstreamModel(tinyUnet, 1);
    expect(embedding(unet, test).shape).toEqual([5, 16]);
    const cnn = createDownstreamModel({ kind: 'cnn', preset: 'tiny', size: S }, 1);
    expect(embedding(cnn, test).shape).toEqual([5, 32]);
    // 'mean-max': the mean then the maximum over positions of the same latent.
    const mm = embedding(vq, test, { pool: 'mean-max' });
    expect(mm.shape).toEqual([5, 16]);
    const max = tf.tidy(() => tf.max(encode(vq, vq.config, tf.tensor4d(test.input, test.shape), inferenceContext()), [1, 2]).dataSync());
    for (let i = 0; i < 5; i++) {
      for (let k = 0; k < 8; k++) {
        expect(mm.data[i * 16 + k]).toBeCloseTo(ref[i * 8 + k], 5);
        expect(mm.data[i * 16 + 8 + k]).toBeCloseTo(max[i * 8 + k], 5);
      }
    }
    expect(embedding(unet, test, { pool: 'mean-max' }).shape).toEqual([5, 32]);
    expect(() => embedding(cnn, test, { pool: 'mean-max' })).toThrow(/CNN baseline/);
    disposeDownstreamModel(unet);
    disposeDownstreamModel(cnn);
    expect(() => embedding({ params: new Map(), buffers: new Map() }, test)).toThrow(/no encoder/);
    expect(() => embedding(vq, { shape: [1, S, S, 3], input: new Float32Array(S * S * 3) })).toThrow(/channels/);
    disposeStore(vq);
    disposeDownstreamModel(cls);
  });
});
