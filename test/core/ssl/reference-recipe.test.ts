/**
 * The reference recipe's components (src/shared/recipes.ts), each against an independent
 * computation: the config the recipe makes (and its refusals), the masked term summed over the
 * batch, SSIM on the min-max-scaled output, per-slice min-max scaling to 8 bits, the side mask's
 * geometry. RAdam is compared with PyTorch's torch.optim.RAdam in test/core/ml/optim.test.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { root } from '../../helpers';
import { compositeLoss, maskedMse, maskedMseBatchSum, minMaxScalePerImage, ssim } from '../../../src/core/ml/losses';
import { preprocessSlice, quantizeUnit, windowUnit } from '../../../src/core/ssl/preprocess';
import { makeExample } from '../../../src/core/ssl/tasks';
import { Rng } from '../../../src/core/random';
import { parsePretrainConfig } from '../../../src/shared/run-config';
import { taskOptionsOf } from '../../../src/shared/pretext-tasks';
import { inputBits, RECIPE_DIFFERENCES, RECIPE_FIELDS, ssimOnMinMaxOutput, sumsMaskedMseOverBatch } from '../../../src/shared/recipes';

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

describe('the recipe in a run config', () => {
  it("is 'ours' when absent, with this app's values and no channels field", () => {
    const c = parsePretrainConfig({ task: 'masked', steps: 1 });
    expect('recipe' in c).toBe(false); // a new run records 'ours' (src/host/runs/create-run.ts)
    expect([c.batchSize, c.maskDefinition, c.codebookInit, c.scaling, c.optimizer, c.lr]).toEqual([8, 'area', 'data', 'fixed', 'radam', 1e-3]);
    expect('channels' in c).toBe(false);
    expect([sumsMaskedMseOverBatch(c), ssimOnMinMaxOutput(c), inputBits(c)]).toEqual([false, false, null]);
    expect(parsePretrainConfig({ task: 'masked', steps: 1, recipe: 'ours' }).recipe).toBe('ours');
  });

  it('reads configs written before recipes back exactly (same JSON, so the same hash: their checkpoints still resume)', () => {
    // config.json as the code before recipes wrote it (b8e94b9's parsePretrainConfig of two inputs)
    const before = [
      '{"kind":"pretrain","name":"","task":"masked","maskPercent":20,"maskDefinition":"area","gap":1,"noiseFraction":0.5,"preset":"tiny","batchSize":8,"steps":2,"optimizer":"radam","lr":0.001,"lossWeights":{},"codebookInit":"data","seed":1,"windowLevel":50,"windowWidth":350,"scaling":"fixed","filter":{"modality":"CT"},"fractions":{"train":0.8,"val":0.1,"test":0.1},"sliceStride":1,"checkpointEvery":50,"evalEvery":50,"evalBatches":4,"useCache":true}',
      '{"kind":"pretrain","name":"","task":"rotation","maskPercent":20,"maskDefinition":"area","gap":1,"noiseFraction":0.5,"preset":"small","batchSize":4,"epochs":1,"optimizer":"radam","lr":0.001,"lossWeights":{"ssim":0.2},"codebookInit":"data","seed":1,"windowLevel":50,"windowWidth":350,"scaling":"fixed","seriesIds":[1,2],"fractions":{"train":0.8,"val":0.1,"test":0.1},"sliceStride":1,"init":"/x/run","checkpointEvery":50,"evalEvery":50,"evalBatches":4,"useCache":true}',
    ];
    for (const j of before) expect(JSON.stringify(parsePretrainConfig(JSON.parse(j)))).toBe(j);
    // and the same inputs parse today to those configs
    expect(JSON.stringify(parsePretrainConfig({ task: 'masked', steps: 2, filter: { modality: 'CT' } }))).toBe(before[0]);
    // A filled config keeps its key order when read back (fields the recipe filled are not moved to the end).
    const ref = parsePretrainConfig({ task: 'masked', steps: 1, recipe: 'reference' });
    expect(JSON.stringify(parsePretrainConfig(JSON.parse(JSON.stringify(ref))))).toBe(JSON.stringify(ref));
  });

  it("'reference' fills every field it fixes with the public code's values, and says so in the config", () => {
    const c = parsePretrainConfig({ task: 'masked', maskPercent: 20, steps: 1, recipe: 'reference' });
    expect(c).toMatchObject({ recipe: 'reference', batchSize: 16, maskDefinition: 'side', codebookInit: 'uniform', scaling: 'minmax', optimizer: 'radam', lr: 1e-3, channels: 3 });
    expect([sumsMaskedMseOverBatch(c), ssimOnMinMaxOutput(c), inputBits(c)]).toEqual([true, true, 8]);
    // A saved config parses to itself (resume, export, a curriculum stage).
    expect(parsePretrainConfig(JSON.parse(JSON.stringify(c)))).toEqual(c);
    // The same value given explicitly is accepted.
    expect(parsePretrainConfig({ task: 'masked', steps: 1, recipe: 'reference', batchSize: 16, channels: 3 }).batchSize).toBe(16);
  });

  it("refuses a given value that contradicts 'reference', naming the field", () => {
    expect(() => parsePretrainConfig({ task: 'masked', steps: 1, recipe: 'reference', batchSize: 8 })).toThrow(/run config: batchSize: the reference recipe uses batchSize 16 \(got 8\)/);
    expect(() => parsePretrainConfig({ task: 'masked', steps: 1, recipe: 'reference', codebookInit: 'data' })).toThrow(/codebookInit: the reference recipe uses codebookInit uniform/);
    expect(() => parsePretrainConfig({ task: 'masked', steps: 1, recipe: 'reference', channels: 1 })).toThrow(/channels: the reference recipe uses channels 3/);
    expect(() => parsePretrainConfig({ task: 'masked', steps: 1, recipe: 'reference', maskDefinition: 'area' })).toThrow(/maskDefinition/);
    expect(() => parsePretrainConfig({ task: 'masked', steps: 1, recipe: 'paper' })).toThrow(/run config: recipe:/);
    // ours takes any of them
    expect(parsePretrainConfig({ task: 'masked', steps: 1, recipe: 'ours', batchSize: 16, codebookInit: 'uniform', channels: 3 })).toMatchObject({ recipe: 'ours', batchSize: 16, codebookInit: 'uniform', channels: 3 });
  });

  it('has a README row for every field it fixes, with a reason for ours', () => {
    expect(RECIPE_DIFFERENCES.map((d) => d.what)).toEqual(['batch', 'masked region', 'masked-region term', 'codebook start', 'input scaling', 'SSIM term', 'input channels', 'optimizer']);
    for (const d of RECIPE_DIFFERENCES) expect(d.why.length).toBeGreaterThan(0);
    // The README's table has the same rows.
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    for (const d of RECIPE_DIFFERENCES) expect(readme).toContain(`| ${d.what} | `);
    expect(Object.keys(RECIPE_FIELDS.reference).sort()).toEqual(['batchSize', 'channels', 'codebookInit', 'lr', 'maskDefinition', 'optimizer', 'scaling']);
  });
});

describe("the public code's masked term: each image's masked MSE summed over the batch", () => {
  it('equals N x the mean per-image masked MSE (by hand), weighs images alike whatever their mask area, and is differentiable', () => {
    const r = new Rng(5);
    const n = 3;
    const s = 6;
    const a = Float32Array.from({ length: n * s * s }, () => r.next());
    const b = Float32Array.from({ length: n * s * s }, () => r.next());
    const m = new Float32Array(n * s * s);
    const areas = [4, 9, 1];
    areas.forEach((k, i) => {
      for (let j = 0; j < k; j++) m[i * s * s + j * 2] = 1;
    });
    // by hand: per image, sum of squared differences over its masked pixels / its mask area
    const per = [0, 1, 2].map((i) => {
      let q = 0;
      for (let j = i * s * s; j < (i + 1) * s * s; j++) if (m[j]) q += (a[j] - b[j]) ** 2;
      return q / areas[i];
    });
    const shape: [number, number, number, number] = [n, s, s, 1];
    const [ta, tb, tm] = [tf.tensor4d(a, shape), tf.tensor4d(b, shape), tf.tensor4d(m, shape)];
    expect(maskedMseBatchSum(ta, tb, tm).dataSync()[0]).toBeCloseTo(per[0] + per[1] + per[2], 5);
    // ours pools the masked pixels of the batch: (sum of all masked squared differences) / 14
    const pooled = per.reduce((acc, p, i) => acc + p * areas[i], 0) / 14;
    expect(maskedMse(ta, tb, tm).dataSync()[0]).toBeCloseTo(pooled, 5);
    // an image with no mask adds 0
    const m0 = m.slice();
    m0.fill(0, 2 * s * s);
    expect(maskedMseBatchSum(ta, tb, tf.tensor4d(m0, shape)).dataSync()[0]).toBeCloseTo(per[0] + per[1], 5);
    const g = tf.grad((x: tf.Tensor) => maskedMseBatchSum(x as tf.Tensor4D, tb, tm))(ta);
    expect(Number.isFinite(g.sum().dataSync()[0])).toBe(true);
    // In the composite loss: the masked term is the batch sum (weight 0.2 each image: 3.2 at batch 16).
    const vq = tf.scalar(0);
    const t = compositeLoss(ta, tb, vq, tm, { mse: 0, vq: 0, ssim: 0, maskedMse: 0.2 }, { maskedMse: 'batch-sum' });
    expect(t.total.dataSync()[0]).toBeCloseTo(0.2 * (per[0] + per[1] + per[2]), 5);
    const ours = compositeLoss(ta, tb, vq, tm, { mse: 0, vq: 0, ssim: 0, maskedMse: 0.2 });
    expect(ours.total.dataSync()[0]).toBeCloseTo(0.2 * pooled, 5);
  });
});

describe('SSIM on the min-max-scaled output', () => {
  it('scales each image of the batch to [0, 1] on its own before SSIM', () => {
    const s = 16;
    const img = Float32Array.from({ length: s * s }, (_, i) => 0.5 + 0.4 * Math.sin(i * 0.37));
    // a batch of two: the image as tanh might give it (shifted and scaled into [-1, 1]) and itself
    const out = new Float32Array(2 * s * s);
    img.forEach((v, i) => ((out[i] = 2 * v - 1), (out[s * s + i] = v)));
    const target = new Float32Array(2 * s * s);
    const lo = Math.min(...img);
    const hi = Math.max(...img);
    img.forEach((v, i) => ((target[i] = (v - lo) / (hi - lo)), (target[s * s + i] = (v - lo) / (hi - lo))));
    const shape: [number, number, number, number] = [2, s, s, 1];
    const scaled = minMaxScalePerImage(tf.tensor4d(out, shape));
    const v = scaled.dataSync();
    // each image on its own: 0 and 1 reached in both
    for (const k of [0, 1]) {
      const part = Array.from(v.subarray(k * s * s, (k + 1) * s * s));
      expect(Math.min(...part)).toBeCloseTo(0, 6);
      expect(Math.max(...part)).toBeCloseTo(1, 6);
    }
    // the scaled output equals the min-max-scaled image: SSIM 1, whatever affine map the output had
    expect(ssim(scaled, tf.tensor4d(target, shape)).dataSync()[0]).toBeCloseTo(1, 4);
    expect(ssim(tf.tensor4d(out, shape), tf.tensor4d(target, shape)).dataSync()[0]).toBeLessThan(0.99);
    const t = compositeLoss(tf.tensor4d(out, shape), tf.tensor4d(target, shape), tf.scalar(0), null, { mse: 0, vq: 0, ssim: 0.1 }, { ssimOutput: 'minmax' });
    expect(t.ssim.dataSync()[0]).toBeCloseTo(1, 4);
  });
});

describe('per-slice min-max scaling to 8 bits', () => {
  it('maps each slice (after the window) to [0, 1] by its own min and max, then to the 256 levels k/255', () => {
    const hu = [-1000, -125, 0, 50, 100, 225, 400, NaN];
    const u = windowUnit(hu, { level: 50, width: 350, scaling: 'minmax' });
    // clipped to [-125, 225] (padding NaN is air: -1024 -> -125), then (v + 125) / 350
    const expected = [-125, -125, 0, 50, 100, 225, 225, -125].map((v) => (v + 125) / 350);
    u.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 6));
    // a slice whose soft tissue spans less than the window is stretched to [0, 1]
    const narrow = windowUnit([0, 10, 20], { level: 50, width: 350, scaling: 'minmax' });
    expect(Array.from(narrow)).toEqual([0, 0.5, 1]);
    const q = quantizeUnit(Float32Array.from([0, 0.1, 0.5, 0.50196, 1, 1.2, -0.1]), 8);
    expect(Array.from(q)).toEqual([0, 26 / 255, 128 / 255, 128 / 255, 1, 1, 0].map((v) => Math.fround(v)));
    // The whole path: every value is one of k/255.
    const img = Float32Array.from({ length: 64 * 64 }, (_, i) => -200 + (i % 97) * 5.3);
    const x = preprocessSlice(img, 64, 64, { level: 50, width: 350, size: 32, scaling: 'minmax', bits: 8 });
    for (const v of x) expect(Math.abs(v * 255 - Math.round(v * 255))).toBeLessThan(1e-4);
    expect(new Set(Array.from(x, (v) => Math.round(v * 255))).size).toBeGreaterThan(50);
  });
});

describe('the side mask of the reference recipe', () => {
  it("a reference config's masked example is one square of side p% of the side, off the bottom and right 100 px of 512", () => {
    const c = parsePretrainConfig({ task: 'masked', maskPercent: 20, steps: 1, recipe: 'reference' });
    const o = taskOptionsOf(c);
    const rng = new Rng(3);
    const img = new Float32Array(512 * 512).fill(0.5);
    for (let t = 0; t < 20; t++) {
      const e = makeExample(o, img, 512, rng) as { mask: Float32Array };
      let n = 0;
      let maxX = 0;
      let maxY = 0;
      e.mask.forEach((v, i) => {
        if (v) (n++, (maxX = Math.max(maxX, i % 512)), (maxY = Math.max(maxY, Math.floor(i / 512))));
      });
      expect(n).toBe(102 * 102); // round(0.2 x 512) = 102: 3.97 % of the area
      expect(maxX).toBeLessThan(412);
      expect(maxY).toBeLessThan(412);
    }
  });
});
