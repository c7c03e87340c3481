/**
 * Supervised CNN baseline trained from scratch for slice classification: a small SE-ResNet (the
 * paper compares with the RSNA PE winner's SE-ResNeXt; this is the same family at CPU scale).
 * NHWC, hand-written convolution gradients from layers.ts.
 *
 *   stem      conv 4x4 s2 -> stem width, BN, ReLU                                 S/2
 *   stage i   blocks[i] basic residual blocks of width widths[i]; the first block of each stage
 *             halves the resolution (conv 4x4 s2) and projects the shortcut (conv 1x1 s2, BN)
 *   block     conv (4x4 s2 | 3x3) -> BN -> ReLU -> conv 3x3 -> BN -> squeeze-excitation
 *             (global mean, dense -> r, ReLU, dense -> w, sigmoid, channel scale)
 *             -> + shortcut -> ReLU
 *   head      global average pool, dense -> classes (logits)
 *
 * Tensor names:
 *   cnn.stem.conv.weight [4,4,C,s]                   cnn.stem.bn.*
 *   cnn.s{i}.b{j}.conv1.weight [k,k,in,w]            cnn.s{i}.b{j}.bn1.*
 *   cnn.s{i}.b{j}.conv2.weight [3,3,w,w]             cnn.s{i}.b{j}.bn2.*
 *   cnn.s{i}.b{j}.se.fc1.{weight [w,r], bias}        cnn.s{i}.b{j}.se.fc2.{weight [r,w], bias}
 *   cnn.s{i}.b0.down.conv.weight [1,1,in,w]          cnn.s{i}.b0.down.bn.*
 *   cnn.fc.{weight [w_last, classes], bias}
 */
import * as tf from '@tensorflow/tfjs';
import { applyActivation } from './bn-act';
import { dense, relu } from './layers';
import { type ForwardContext, type VqvaePresetName, bn, bnAct, convLayer } from './vqvae';
import { type ParamSpec, type ParamStore, bnSpecs, convSpecs, countParams, createStore, denseSpecs } from './weights';

export interface CnnConfig {
  /** Input height = width (multiple of 2^(stages + 1)). */
  size: number;
  channels: number;
  classes: number;
  /** Stem width. */
  stem: number;
  /** Width of each stage. */
  widths: number[];
  /** Residual blocks per stage (same length as widths). */
  blocks: number[];
  /** Squeeze-excitation reduction: bottleneck width max(4, floor(w / seReduction)). */
  seReduction: number;
}

/**
 * Presets named like the VQ-VAE's (same input sizes): `tiny` 3 stages 8/16/32 x1 (tests),
 * `small` 4 stages 16-128 x1, `standard` 4 stages 32-256 x2 (SE-ResNet-18 layout at half width),
 * `paper` 4 stages 64-512 x (3, 4, 6, 3) (SE-ResNet-34 layout, GPU).
 */
export const CNN_PRESETS: Record<VqvaePresetName, Omit<CnnConfig, 'classes'>> = {
  tiny: { size: 64, channels: 1, stem: 8, widths: [8, 16, 32], blocks: [1, 1, 1], seReduction: 4 },
  small: { size: 128, channels: 1, stem: 16, widths: [16, 32, 64, 128], blocks: [1, 1, 1, 1], seReduction: 8 },
  standard: { size: 256, channels: 1, stem: 32, widths: [32, 64, 128, 256], blocks: [2, 2, 2, 2], seReduction: 16 },
  paper: { size: 512, channels: 1, stem: 64, widths: [64, 128, 256, 512], blocks: [3, 4, 6, 3], seReduction: 16 },
};

export function cnnPreset(name: VqvaePresetName, classes: number, overrides: Partial<CnnConfig> = {}): CnnConfig {
  const base = CNN_PRESETS[name];
  if (base == null) throw new Error(`cnnPreset: unknown preset '${name}' (expected ${Object.keys(CNN_PRESETS).join(', ')})`);
  return { ...base, widths: [...base.widths], blocks: [...base.blocks], classes, ...overrides };
}

function validate(c: CnnConfig): void {
  const posInt = (v: number, what: string) => {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`CnnConfig.${what} must be a positive integer (got ${v})`);
  };
  posInt(c.size, 'size');
  posInt(c.channels, 'channels');
  posInt(c.stem, 'stem');
  posInt(c.seReduction, 'seReduction');
  if (!Number.isInteger(c.classes) || c.classes < 2) throw new Error(`CnnConfig.classes must be an integer >= 2 (got ${c.classes})`);
  if (c.widths.length === 0 || c.widths.length !== c.blocks.length) {
    throw new Error(`CnnConfig.widths and CnnConfig.blocks must be non-empty and of equal length (got ${c.widths.length} and ${c.blocks.length})`);
  }
  c.widths.forEach((w, i) => posInt(w, `widths[${i}]`));
  c.blocks.forEach((b, i) => posInt(b, `blocks[${i}]`));
  const f = 2 ** (c.widths.length + 1);
  if (c.size % f !== 0) throw new Error(`CnnConfig.size must be a multiple of ${f} for ${c.widths.length} stages (got ${c.size})`);
}

function seWidth(c: CnnConfig, w: number): number {
  return Math.max(4, Math.floor(w / c.seReduction));
}

export function cnnSpecs(c: CnnConfig): ParamSpec[] {
  validate(c);
  const s: ParamSpec[] = [...convSpecs('cnn.stem.conv', 4, c.channels, c.stem, false), ...bnSpecs('cnn.stem.bn', c.stem)];
  let cin = c.stem;
  c.widths.forEach((w, i) => {
    for (let j = 0; j < c.blocks[i]; j++) {
      const p = `cnn.s${i}.b${j}`;
      const r = seWidth(c, w);
      s.push(
        ...convSpecs(`${p}.conv1`, j === 0 ? 4 : 3, j === 0 ? cin : w, w, false), ...bnSpecs(`${p}.bn1`, w),
        ...convSpecs(`${p}.conv2`, 3, w, w, false), ...bnSpecs(`${p}.bn2`, w),
        ...denseSpecs(`${p}.se.fc1`, w, r), ...denseSpecs(`${p}.se.fc2`, r, w),
      );
      if (j === 0) s.push(...convSpecs(`${p}.down.conv`, 1, cin, w, false), ...bnSpecs(`${p}.down.bn`, w));
    }
    cin = w;
  });
  s.push(...denseSpecs('cnn.fc', cin, c.classes));
  return s;
}

export function cnnParamCount(c: CnnConfig): number {
  return countParams(cnnSpecs(c));
}

export interface Cnn extends ParamStore {
  kind: 'cnn';
  config: CnnConfig;
}

export function createCnn(config: CnnConfig, seed = 0): Cnn {
  return { kind: 'cnn', config, ...createStore(cnnSpecs(config), seed) };
}

function denseLayer(store: ParamStore, name: string, x: tf.Tensor2D): tf.Tensor2D {
  const w = store.params.get(`${name}.weight`);
  const b = store.params.get(`${name}.bias`);
  if (w == null || b == null) throw new Error(`missing parameter ${name}.weight/bias`);
  return dense(x, w as unknown as tf.Tensor2D, b as unknown as tf.Tensor1D);
}

function seBlock(store: ParamStore, prefix: string, x: tf.Tensor4D): tf.Tensor4D {
  const [n, , , c] = x.shape;
  const s = tf.mean(x, [1, 2]) as tf.Tensor2D;
  const z = relu(denseLayer(store, `${prefix}.fc1`, s));
  const g = tf.sigmoid(denseLayer(store, `${prefix}.fc2`, z));
  return tf.mul(x, g.reshape([n, 1, 1, c]));
}

/** Pooled features [N, widths[-1]] before the dense layer. */
export function cnnFeatures(model: Cnn, x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor2D {
  const c = model.config;
  if (x.rank !== 4 || x.shape[1] !== c.size || x.shape[2] !== c.size || x.shape[3] !== c.channels) {
    throw new Error(`cnnForward: x must be [N, ${c.size}, ${c.size}, ${c.channels}] (got [${x.shape}])`);
  }
  let h = bnAct(model, 'cnn.stem.bn', convLayer(model, 'cnn.stem.conv', x, 2, 1, false), ctx, 'relu');
  c.widths.forEach((_, i) => {
    for (let j = 0; j < c.blocks[i]; j++) {
      const p = `cnn.s${i}.b${j}`;
      const a = j === 0 ? convLayer(model, `${p}.conv1`, h, 2, 1) : convLayer(model, `${p}.conv1`, h, 1, 1);
      let r = bnAct(model, `${p}.bn1`, a, ctx, 'relu');
      r = bn(model, `${p}.bn2`, convLayer(model, `${p}.conv2`, r, 1, 1), ctx);
      r = seBlock(model, `${p}.se`, r);
      const sc = j === 0 ? bn(model, `${p}.down.bn`, convLayer(model, `${p}.down.conv`, h, 2, 0), ctx) : h;
      h = applyActivation(tf.add(r, sc), 'relu');
    }
  });
  return tf.mean(h, [1, 2]) as tf.Tensor2D;
}

/** Logits [N, classes]. */
export function cnnForward(model: Cnn, x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor2D {
  return denseLayer(model, 'cnn.fc', cnnFeatures(model, x, ctx));
}
