import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { classifierForward } from '../../../src/core/ml/classifier';
import { type Cnn, createCnn, cnnForward } from '../../../src/core/ml/cnn';
import {
  type DownstreamModel, type SegBatch, bceWithLogits, createDownstreamModel, disposeDownstreamModel, downstreamForward,
  finetuneGradients, segmentationLoss,
} from '../../../src/core/ml/downstream';
import { mulberry32, uniformArray } from '../../../src/core/ml/layers';
import { type Unet, createUnet, unetForward } from '../../../src/core/ml/unet';
import { disposeContext, trainingContext } from '../../../src/core/ml/vqvae';
import { type ParamStore, disposeStore } from '../../../src/core/ml/weights';

// Gradients of the new layers against tf's own ops and their built-in gradients, on the cpu
// backend (tf.conv2d / tf.conv2dTranspose with Conv2DBackpropInput/Filter, tf.moments,
// tf.leakyRelu, tf.concat, tf.sigmoid, tf.log), plus finite differences on a few coordinates.
beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

const EPS = 1e-5;
const pads = (p: number): tf.backend_util.ExplicitPadding => [[0, 0], [p, p], [p, p], [0, 0]];

function rand(shape: number[], seed: number, bound = 1): tf.Tensor {
  return tf.tensor(uniformArray(shape.reduce((a, b) => a * b, 1), bound, mulberry32(seed)), shape);
}

/** Reference layers from tf's own ops, reading the same variables by name. */
function refLayers(store: ParamStore, useRunning: (name: string) => boolean) {
  const v = (name: string) => {
    const t = store.params.get(name) ?? store.buffers.get(name);
    if (t == null) throw new Error(`no tensor ${name}`);
    return t as tf.Tensor;
  };
  const conv = (name: string, x: tf.Tensor4D, stride: number, pad: number): tf.Tensor4D => {
    const y = tf.conv2d(x, v(`${name}.weight`) as tf.Tensor4D, stride, pads(pad));
    return store.params.has(`${name}.bias`) ? tf.add(y, v(`${name}.bias`)) : y;
  };
  const convT = (name: string, x: tf.Tensor4D): tf.Tensor4D => {
    const w = v(`${name}.weight`) as tf.Tensor4D;
    const [n, h, wd] = x.shape;
    return tf.conv2dTranspose(x, w, [n, 2 * h, 2 * wd, w.shape[2]], 2, 1);
  };
  const bn = (name: string, x: tf.Tensor4D): tf.Tensor4D => {
    let mean: tf.Tensor;
    let variance: tf.Tensor;
    if (useRunning(name)) {
      mean = v(`${name}.running_mean`);
      variance = v(`${name}.running_var`);
    } else {
      ({ mean, variance } = tf.moments(x, [0, 1, 2]));
    }
    return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, EPS))), v(`${name}.weight`)), v(`${name}.bias`));
  };
  const lr = (x: tf.Tensor4D) => tf.leakyRelu(x, 0.01);
  const down = (x: tf.Tensor4D, resBlocks: number) => {
    const e1 = lr(bn('encoder.e1.bn', conv('encoder.e1.conv', x, 2, 1)));
    let h = lr(bn('encoder.e2.bn', conv('encoder.e2.conv', e1, 2, 1)));
    h = lr(bn('encoder.e3.bn', conv('encoder.e3.conv', h, 1, 1)));
    for (let i = 0; i < resBlocks; i++) {
      const a = tf.relu(bn(`encoder.res.${i}.bn`, conv(`encoder.res.${i}.conv1`, h, 1, 1)));
      h = tf.add(h, conv(`encoder.res.${i}.conv2`, a, 1, 0));
    }
    return { e1, bottom: lr(h) };
  };
  const denseRef = (name: string, x: tf.Tensor2D) => tf.add(tf.matMul(x, v(`${name}.weight`) as tf.Tensor2D), v(`${name}.bias`)) as tf.Tensor2D;
  return { v, conv, convT, bn, lr, down, denseRef };
}

function refUnet(model: Unet, x: tf.Tensor4D, frozen: boolean): tf.Tensor4D {
  const L = refLayers(model, (name) => frozen && name.startsWith('encoder.'));
  const { e1, bottom } = L.down(x, model.config.resBlocks);
  let u = L.lr(L.bn('up.t1.bn', L.convT('up.t1.convt', bottom)));
  u = tf.concat([u, e1], 3);
  u = L.lr(L.bn('up.c1a.bn', L.conv('up.c1a.conv', u, 1, 1)));
  u = L.lr(L.bn('up.c1b.bn', L.conv('up.c1b.conv', u, 1, 1)));
  u = L.lr(L.bn('up.t2.bn', L.convT('up.t2.convt', u)));
  if (model.config.inputSkip) u = tf.concat([u, x], 3);
  u = L.lr(L.bn('up.c2.bn', L.conv('up.c2.conv', u, 1, 1)));
  return L.conv('up.out.conv', u, 1, 0);
}

function refCnn(model: Cnn, x: tf.Tensor4D): tf.Tensor2D {
  const L = refLayers(model, () => false);
  const c = model.config;
  let h = tf.relu(L.bn('cnn.stem.bn', L.conv('cnn.stem.conv', x, 2, 1)));
  c.widths.forEach((_, i) => {
    for (let j = 0; j < c.blocks[i]; j++) {
      const p = `cnn.s${i}.b${j}`;
      let r = tf.relu(L.bn(`${p}.bn1`, L.conv(`${p}.conv1`, h, j === 0 ? 2 : 1, 1)));
      r = L.bn(`${p}.bn2`, L.conv(`${p}.conv2`, r, 1, 1));
      const s = tf.sigmoid(L.denseRef(`${p}.se.fc2`, tf.relu(L.denseRef(`${p}.se.fc1`, tf.mean(r, [1, 2]) as tf.Tensor2D))));
      r = tf.mul(r, s.reshape([s.shape[0], 1, 1, s.shape[1]]));
      const sc = j === 0 ? L.bn(`${p}.down.bn`, L.conv(`${p}.down.conv`, h, 2, 0)) : h;
      h = tf.relu(tf.add(r, sc));
    }
  });
  return L.denseRef('cnn.fc', tf.mean(h, [1, 2]) as tf.Tensor2D);
}

function refSegLoss(z: tf.Tensor, y: tf.Tensor, wDice: number, wBce: number): tf.Scalar {
  const p = tf.sigmoid(z);
  const bce = tf.neg(tf.mean(tf.add(tf.mul(y, tf.log(p)), tf.mul(tf.sub(1, y), tf.log(tf.sub(1, p))))));
  const dice = tf.sub(1, tf.div(tf.add(tf.mul(tf.sum(tf.mul(p, y)), 2), 1), tf.add(tf.add(tf.sum(p), tf.sum(y)), 1)));
  return tf.add(tf.mul(dice, wDice), tf.mul(bce, wBce)) as tf.Scalar;
}

/**
 * max |a - b| <= tol * max |b| + 1e-5, per named gradient (the absolute floor covers biases of
 * convolutions followed by BatchNorm, whose true gradient is 0 and whose computed one is noise).
 */
function expectGradsClose(mine: Map<string, tf.Tensor> | tf.NamedTensorMap, ref: tf.NamedTensorMap, names: Map<string, string>, tol = 2e-4): number {
  const m = mine instanceof Map ? mine : new Map(Object.entries(mine));
  let checked = 0;
  for (const [varName, g] of Object.entries(ref)) {
    const name = names.get(varName) ?? varName;
    const a = m.get(name) ?? m.get(varName);
    expect(a, `gradient of ${name}`).toBeDefined();
    const [diff, scale] = tf.tidy(() => [tf.max(tf.abs(tf.sub(a!, g))).dataSync()[0], tf.max(tf.abs(g)).dataSync()[0]]);
    expect(diff, `${name}: max diff ${diff} at scale ${scale}`).toBeLessThanOrEqual(tol * scale + 1e-5);
    checked++;
  }
  return checked;
}

function varNames(store: ParamStore): Map<string, string> {
  return new Map([...store.params].map(([name, v]) => [v.name, name]));
}

describe('U-Net gradients', () => {
  for (const inputSkip of [true, false]) {
    it(`match tf's own ops (all parameters, inputSkip ${inputSkip})`, () => {
      const model = createUnet({ size: 16, channels: 1, widths: [4, 8], resBlocks: 1, leak: 0.01, upWidths: [4, 4], inputSkip }, 3);
      tf.tidy(() => {
        const x = rand([2, 16, 16, 1], 1) as tf.Tensor4D;
        const dy = rand([2, 16, 16, 1], 2);
        const ctx = trainingContext();
        const yMine = unetForward(model, x, ctx);
        disposeContext(ctx);
        const yRef = refUnet(model, x, false);
        expect(yMine.shape).toEqual([2, 16, 16, 1]);
        expect(tf.max(tf.abs(tf.sub(yMine, yRef))).dataSync()[0]).toBeLessThan(1e-4);
        const vars = [...model.params.values()];
        const mine = tf.variableGrads(() => {
          const c = trainingContext();
          const y = tf.sum(tf.mul(unetForward(model, x, c), dy)) as tf.Scalar;
          disposeContext(c);
          return y;
        }, vars);
        const ref = tf.variableGrads(() => tf.sum(tf.mul(refUnet(model, x, false), dy)) as tf.Scalar, vars);
        // E1's filter, all encoder and up-branch tensors
        expect(expectGradsClose(mine.grads, ref.grads, varNames(model))).toBe(model.params.size);
      });
      disposeStore(model);
    });
  }

  function segModel(): { model: DownstreamModel; batch: SegBatch } {
    const model = createDownstreamModel({ kind: 'unet', preset: 'tiny', size: 16 }, 5);
    // non-trivial running statistics for the frozen (inference-mode) encoder
    for (const [name, b] of model.buffers) {
      tf.tidy(() => b.assign(name.endsWith('running_var') ? tf.add(rand(b.shape, 40, 0.5), 1) : rand(b.shape, 41, 0.2)));
    }
    const r = mulberry32(9);
    const input = Float32Array.from({ length: 2 * 16 * 16 }, () => r());
    const mask = Float32Array.from(input, (v) => (v > 0.7 ? 1 : 0));
    return { model, batch: { shape: [2, 16, 16, 1], input, mask } };
  }

  for (const freezeEncoder of [false, true]) {
    it(`finetuneGradients (Dice + BCE, freezeEncoder ${freezeEncoder}) match a reference built from tf's ops`, () => {
      const { model, batch } = segModel();
      const net = model.net as Unet;
      const r = finetuneGradients(model, batch, { freezeEncoder, lossWeights: { dice: 0.7, bce: 1.3 } });
      const trained = [...model.params].filter(([n]) => !(freezeEncoder && n.startsWith('encoder.')));
      expect([...r.grads.keys()].sort()).toEqual(trained.map(([n]) => n).sort());
      expect([...r.stats.keys()].some((n) => n.startsWith('encoder.'))).toBe(!freezeEncoder);
      tf.tidy(() => {
        const x = tf.tensor4d(batch.input, batch.shape);
        const y = tf.tensor4d(batch.mask, [2, 16, 16, 1]);
        const ref = tf.variableGrads(() => refSegLoss(refUnet(net, x, freezeEncoder), y, 0.7, 1.3), trained.map(([, v]) => v));
        expect(r.losses.loss).toBeCloseTo(ref.value.dataSync()[0], 4);
        expectGradsClose(r.grads, ref.grads, varNames(model), 5e-4);
      });
      for (const g of r.grads.values()) g.dispose();
      for (const s of r.stats.values()) tf.dispose([s.mean, s.variance]);
      disposeDownstreamModel(model);
    });
  }

  it('finite differences agree on up-branch and encoder coordinates', () => {
    const { model, batch } = segModel();
    const lossAt = () => tf.tidy(() => {
      const ctx = trainingContext();
      const z = downstreamForward(model, tf.tensor4d(batch.input, batch.shape), ctx) as tf.Tensor4D;
      disposeContext(ctx);
      return segmentationLoss(z, tf.tensor4d(batch.mask, [2, 16, 16, 1])).total.dataSync()[0];
    });
    const r = finetuneGradients(model, batch);
    const coords: [string, number][] = [
      ['up.out.conv.bias', 0], ['up.out.conv.weight', 3], ['up.c2.conv.weight', 17], ['up.c2.bn.weight', 2],
      ['up.t2.convt.weight', 40], ['up.c1a.conv.weight', 100], ['up.t1.convt.weight', 7], ['encoder.e2.conv.weight', 5],
    ];
    const h = 1e-2;
    for (const [name, i] of coords) {
      const v = model.params.get(name)!;
      const base = v.dataSync().slice();
      const set = (delta: number) => tf.tidy(() => {
        const d = base.slice();
        d[i] += delta;
        v.assign(tf.tensor(d, v.shape));
      });
      set(h);
      const lp = lossAt();
      set(-h);
      const lm = lossAt();
      set(0);
      const fd = (lp - lm) / (2 * h);
      const an = r.grads.get(name)!.dataSync()[i];
      expect(Math.abs(fd - an), `${name}[${i}]: finite difference ${fd}, analytic ${an}`).toBeLessThanOrEqual(2e-3 + 0.03 * Math.abs(an));
    }
    for (const g of r.grads.values()) g.dispose();
    for (const s of r.stats.values()) tf.dispose([s.mean, s.variance]);
    disposeDownstreamModel(model);
  });

  it('BCE with logits: gradient is (sigmoid(z) - y) / n', () => {
    tf.tidy(() => {
      const z = tf.tensor1d([-3, -0.5, 0, 0.7, 4]);
      const y = tf.tensor1d([0, 1, 1, 0, 1]);
      const g = tf.grad((zz: tf.Tensor) => bceWithLogits(zz, y))(z);
      const ref = tf.grad((zz: tf.Tensor) => refSegLoss(zz, y, 0, 1))(z);
      expect(tf.max(tf.abs(tf.sub(g, ref))).dataSync()[0]).toBeLessThan(1e-6);
    });
  });
});

describe('CNN baseline gradients', () => {
  it('match tf own ops (stride-2 blocks with projections, identity block, squeeze-excitation)', () => {
    const model = createCnn({ size: 16, channels: 1, classes: 3, stem: 4, widths: [4, 8], blocks: [2, 1], seReduction: 2 }, 4);
    tf.tidy(() => {
      const x = rand([3, 16, 16, 1], 11) as tf.Tensor4D;
      const dy = rand([3, 3], 12);
      const vars = [...model.params.values()];
      const ctx = trainingContext();
      const yMine = cnnForward(model, x, ctx);
      disposeContext(ctx);
      expect(tf.max(tf.abs(tf.sub(yMine, refCnn(model, x)))).dataSync()[0]).toBeLessThan(1e-4);
      const mine = tf.variableGrads(() => {
        const c = trainingContext();
        const y = tf.sum(tf.mul(cnnForward(model, x, c), dy)) as tf.Scalar;
        disposeContext(c);
        return y;
      }, vars);
      const ref = tf.variableGrads(() => tf.sum(tf.mul(refCnn(model, x), dy)) as tf.Scalar, vars);
      expect(expectGradsClose(mine.grads, ref.grads, varNames(model))).toBe(model.params.size);
    });
    disposeStore(model);
  });
});

describe('encoder classifier', () => {
  it('its forward equals classifier.ts on the same tensors', () => {
    const model = createDownstreamModel({ kind: 'encoder-classifier', preset: 'tiny', size: 32, classes: 2 }, 8);
    tf.tidy(() => {
      const x = rand([2, 32, 32, 1], 13) as tf.Tensor4D;
      const c1 = trainingContext();
      const c2 = trainingContext();
      const a = downstreamForward(model, x, c1);
      const b = classifierForward(model.net as never, x, c2);
      disposeContext(c1);
      disposeContext(c2);
      expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    });
    disposeDownstreamModel(model);
  });
});
