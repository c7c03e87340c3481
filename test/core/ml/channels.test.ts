/**
 * 1 or 3 input channels (issue 11): every preset builds with either, the counts `ctssl doctor`
 * lists (the paper's 101,353,673 at 3 channels, 101,337,283 at 1), a grey input repeated into a
 * 3-channel model, and the folding of a 3-channel E1 filter for grey inputs.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { classifierParamCount, classifierPreset, createClassifier, classifierForward } from '../../../src/core/ml/classifier';
import { createOptimizer } from '../../../src/core/ml/optim';
import { trainStepRecon } from '../../../src/core/ml/train-step';
import {
  createVqvae,
  encode,
  expandChannels,
  foldToGreyInput,
  inferenceContext,
  presetParamCounts,
  VQVAE_PRESETS,
  vqvaeForward,
  vqvaeParamCount,
  vqvaePreset,
  vqvaeSpecs,
  type VqvaePresetName,
} from '../../../src/core/ml/vqvae';
import { createStore, disposeStore, exportWeights } from '../../../src/core/ml/weights';
import { encoderSpecs } from '../../../src/core/ml/specs/vqvae';
import { pretrainArchitecture } from '../../../src/core/ml/specs/pretrain';
import { initBackend } from '../../../src/trainer/backend';
import { doctor } from '../../../src/trainer/doctor';

beforeAll(async () => {
  await initBackend({ force: 'wasm' });
});

describe('channels', () => {
  it('every preset builds with 1 and 3 channels; only E1 and D4 change', () => {
    for (const name of Object.keys(VQVAE_PRESETS) as VqvaePresetName[]) {
      const one = vqvaeSpecs(vqvaePreset(name, { channels: 1 }));
      const three = vqvaeSpecs(vqvaePreset(name, { channels: 3 }));
      expect(three.map((s) => s.name)).toEqual(one.map((s) => s.name));
      const differ = three.filter((s, i) => s.shape.join() !== one[i].shape.join()).map((s) => s.name);
      expect(differ).toEqual(['encoder.e1.conv.weight', 'decoder.d4.convt.weight', 'decoder.d4.convt.bias', 'decoder.d4.bn.weight', 'decoder.d4.bn.bias', 'decoder.d4.bn.running_mean', 'decoder.d4.bn.running_var']);
      const w1 = VQVAE_PRESETS[name].widths[0];
      // E1 conv +2*16*w1, D4 transposed conv +2*16*w1, its bias +2, its BatchNorm +4
      expect(vqvaeParamCount(vqvaePreset(name, { channels: 3 })) - vqvaeParamCount(vqvaePreset(name, { channels: 1 }))).toBe(64 * w1 + 6);
      expect(classifierParamCount(classifierPreset(name, 4, { channels: 3 })) - classifierParamCount(classifierPreset(name, 4, { channels: 1 }))).toBe(32 * w1);
    }
  });

  it("the paper preset: 101,337,283 parameters at 1 channel, 101,353,673 at 3 (the reference's)", () => {
    const paper = presetParamCounts().find((p) => p.preset === 'paper')!;
    expect(paper).toEqual({ preset: 'paper', channels1: 101_337_283, channels3: 101_353_673 });
  });

  it('ctssl doctor lists every preset at 1 and 3 channels', async () => {
    const d = await doctor();
    expect(d.presets.map((p) => p.preset)).toEqual(Object.keys(VQVAE_PRESETS));
    for (const p of d.presets) {
      const counts = presetParamCounts().find((c) => c.preset === p.preset)!;
      expect(p.paramsByChannels).toEqual({ '1': counts.channels1, '3': counts.channels3 });
      expect(p.params).toBe(counts.channels1);
    }
    expect(d.presets.find((p) => p.preset === 'paper')!.paramsByChannels).toEqual({ '1': 101_337_283, '3': 101_353_673 });
  });

  it("a run's architecture carries its channels (absent = 1)", () => {
    expect(pretrainArchitecture({ preset: 'tiny', task: 'masked' }).channels).toBe(1);
    expect(pretrainArchitecture({ preset: 'tiny', task: 'masked', channels: 3 }).channels).toBe(3);
    expect(pretrainArchitecture({ preset: 'tiny', task: 'rotation', channels: 3 }).channels).toBe(3);
  });

  it('a 3-channel model takes a grey batch as the grey slice repeated into 3 channels', () => {
    const model = createVqvae(vqvaePreset('tiny', { channels: 3 }), 7);
    try {
      const [grey, rep, diff, shape] = tf.tidy(() => {
        const x = tf.randomUniform([2, 64, 64, 1], 0, 1, 'float32', 3) as tf.Tensor4D;
        const a = vqvaeForward(model, x, inferenceContext());
        const b = vqvaeForward(model, tf.concat([x, x, x], 3) as tf.Tensor4D, inferenceContext());
        return [a.recon.dataSync(), b.recon.dataSync(), tf.max(tf.abs(tf.sub(a.z, b.z))).dataSync()[0], a.recon.shape];
      });
      expect(shape).toEqual([2, 64, 64, 3]);
      expect(Array.from(grey)).toEqual(Array.from(rep));
      expect(diff).toBe(0);
      expect(() => tf.tidy(() => void vqvaeForward(model, tf.zeros([1, 64, 64, 2]) as tf.Tensor4D, inferenceContext()))).toThrow(/64, 64, 3\] or a grey/);
      expect(() => tf.tidy(() => expandChannels(tf.zeros([1, 4, 4, 2]) as tf.Tensor4D, 3))).toThrow('input has 2 channels, the model takes 3');
    } finally {
      disposeStore(model);
    }
  });

  it('a 3-channel VQ-VAE and classifier train on grey batches', () => {
    const model = createVqvae(vqvaePreset('tiny', { channels: 3 }), 1);
    const opt = createOptimizer('radam', { lr: 1e-3 });
    const n = 2 * 64 * 64;
    const input = Float32Array.from({ length: n }, (_, i) => (i % 97) / 97);
    const mask = Float32Array.from({ length: n }, (_, i) => (i % 64 < 16 ? 1 : 0));
    const before = tf.memory().numTensors;
    const l1 = trainStepRecon(model, opt, { shape: [2, 64, 64, 1], input, target: input, mask });
    const l2 = trainStepRecon(model, opt, { shape: [2, 64, 64, 1], input, target: input, mask });
    expect(Number.isFinite(l1.loss) && Number.isFinite(l2.loss)).toBe(true);
    expect(Number.isFinite(l2.maskedMse)).toBe(true);
    opt.dispose();
    disposeStore(model);
    expect(tf.memory().numTensors).toBeLessThanOrEqual(before);
    const cls = createClassifier(classifierPreset('tiny', 4, { channels: 3 }), 2);
    const logits = tf.tidy(() => classifierForward(cls, tf.zeros([2, 64, 64, 1]) as tf.Tensor4D, inferenceContext()).shape);
    expect(logits).toEqual([2, 4]);
    disposeStore(cls);
  });

  it('folding a 3-channel E1 filter gives a 1-channel encoder with the same output on grey slices', () => {
    const model = createVqvae(vqvaePreset('tiny', { channels: 3 }), 5);
    const cfg1 = vqvaePreset('tiny', { channels: 1 });
    const store = createStore(encoderSpecs(cfg1), 0);
    try {
      const folded = foldToGreyInput(exportWeights(model));
      expect(folded.find((e) => e.name === 'encoder.e1.conv.weight')!.shape).toEqual([4, 4, 1, 8]);
      const by = new Map(folded.map((e) => [e.name, e]));
      for (const [name, v] of [...store.params, ...store.buffers]) v.assign(tf.tensor(by.get(name)!.data, by.get(name)!.shape));
      const d = tf.tidy(() => {
        const x = tf.randomUniform([2, 64, 64, 1], 0, 1, 'float32', 9) as tf.Tensor4D;
        const a = encode(model, model.config, x, inferenceContext());
        const b = encode(store, cfg1, x, inferenceContext());
        return tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
      });
      expect(d).toBeLessThan(1e-4);
      // 1-channel weights are returned as they are
      const one = exportWeights(store);
      expect(foldToGreyInput(one)).toEqual(one);
    } finally {
      disposeStore(model);
      disposeStore(store);
    }
  });
});
