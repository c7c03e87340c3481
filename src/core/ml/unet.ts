/**
 * U-Net for nodule segmentation (the paper's LIDC experiment), NHWC. The down branch is the
 * pretrained encoder's compression layers, the up branch starts random.
 *
 *   input [N, S, S, C]
 *   E1  conv 4x4 s2 -> w1, BN, LeakyReLU ............................ e1 [N, S/2, S/2, w1]  (skip)
 *   E2  conv 4x4 s2 -> w2, BN, LeakyReLU
 *   E3  conv 3x3 -> w2, BN, LeakyReLU
 *   E4  residual blocks x + conv1x1(ReLU(BN(conv3x3 x))), then LeakyReLU .... [N, S/4, S/4, w2]
 *   U1  transposed conv 4x4 s2 -> m, BN, LeakyReLU ..................... [N, S/2, S/2, m]
 *       concat e1 -> m + w1
 *   U2  conv 3x3 -> m, BN, LeakyReLU; conv 3x3 -> m, BN, LeakyReLU
 *   U3  transposed conv 4x4 s2 -> t, BN, LeakyReLU ..................... [N, S, S, t]
 *       concat the input image (default; `inputSkip: false` leaves it out) -> t + C
 *   U4  conv 3x3 -> t, BN, LeakyReLU; conv 1x1 -> 1 logit (with bias) ... [N, S, S, 1]
 *
 * E5 (the 1x1 projection to the latent code) is not part of the down branch: the U-Net starts
 * its up branch from the w2-channel features of E4 (after the LeakyReLU that E5 starts with).
 * The input skip is on by default: it hands the full-resolution intensities to the last
 * convolution, which the paper's description does not forbid and small nodules benefit from.
 *
 * Tensor names: the encoder's (`encoder.e1.*`, `encoder.e2.*`, `encoder.e3.*`, `encoder.res.{i}.*`,
 * identical names and shapes to vqvae.ts so a VQ-VAE's encoder loads with
 * `importWeights(unet, entries, { strict: false })`), then the up branch (convolutions before a
 * BatchNorm have no bias):
 *   up.t1.convt.weight [4,4,m,w2]   up.t1.bn.*
 *   up.c1a.conv.weight [3,3,m+w1,m] up.c1a.bn.*    up.c1b.conv.weight [3,3,m,m]  up.c1b.bn.*
 *   up.t2.convt.weight [4,4,t,m]    up.t2.bn.*
 *   up.c2.conv.weight [3,3,t(+C),t] up.c2.bn.*     up.out.conv.{weight [1,1,t,1], bias [1]}
 */
import * as tf from '@tensorflow/tfjs';
import { type BnActivation, applyActivation } from './bn-act';
import { conv2d, conv2dTranspose } from './layers';
import { type ForwardContext, type VqvaePresetName, VQVAE_PRESETS, bnAct, convLayer, encoderSpecs } from './vqvae';
import { type ParamSpec, type ParamStore, bnSpecs, convSpecs, convTransposeSpecs, countParams, createStore } from './weights';

export interface UnetConfig {
  /** Input height = width in pixels (multiple of 4). */
  size: number;
  /** Input channels. */
  channels: number;
  /** Encoder widths of E1 and E2-E4 (must match the pretrained encoder). */
  widths: [number, number];
  /** Residual blocks in E4 (must match the pretrained encoder). */
  resBlocks: number;
  /** LeakyReLU slope. */
  leak: number;
  /** Up-branch widths: m at S/2 and t at full resolution. */
  upWidths: [number, number];
  /** Concatenate the input image before the last convolutions (default true). */
  inputSkip: boolean;
}

/**
 * A U-Net whose down branch is the encoder of a VQ-VAE preset (same widths and residual blocks),
 * with up widths m = w1 and t = max(8, w1 / 2).
 */
export function unetPreset(name: VqvaePresetName, overrides: Partial<UnetConfig> = {}): UnetConfig {
  const base = VQVAE_PRESETS[name];
  if (base == null) throw new Error(`unetPreset: unknown preset '${name}' (expected ${Object.keys(VQVAE_PRESETS).join(', ')})`);
  const [w1, w2] = base.widths;
  return {
    size: base.size, channels: base.channels, widths: [w1, w2], resBlocks: base.resBlocks, leak: base.leak,
    upWidths: [w1, Math.max(8, Math.floor(w1 / 2))], inputSkip: true, ...overrides,
  };
}

function validate(c: UnetConfig): void {
  const posInt = (v: number, what: string) => {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`UnetConfig.${what} must be a positive integer (got ${v})`);
  };
  posInt(c.size, 'size');
  posInt(c.channels, 'channels');
  posInt(c.widths[0], 'widths[0]');
  posInt(c.widths[1], 'widths[1]');
  posInt(c.upWidths[0], 'upWidths[0]');
  posInt(c.upWidths[1], 'upWidths[1]');
  if (!Number.isInteger(c.resBlocks) || c.resBlocks < 0) throw new Error(`UnetConfig.resBlocks must be >= 0 (got ${c.resBlocks})`);
  if (c.size % 4 !== 0) throw new Error(`UnetConfig.size must be a multiple of 4 (got ${c.size})`);
}

/** Specs of the down branch: the encoder's E1-E4 (no E5). */
export function unetEncoderSpecs(c: Pick<UnetConfig, 'channels' | 'widths' | 'resBlocks'>): ParamSpec[] {
  return encoderSpecs({ ...c, latent: 1 }).filter((s) => !s.name.startsWith('encoder.e5.'));
}

/** Every tensor of the U-Net, in a fixed order (down branch first). */
export function unetSpecs(c: UnetConfig): ParamSpec[] {
  validate(c);
  const [w1, w2] = c.widths;
  const [m, t] = c.upWidths;
  return [
    ...unetEncoderSpecs(c),
    ...convTransposeSpecs('up.t1.convt', 4, w2, m, false), ...bnSpecs('up.t1.bn', m),
    ...convSpecs('up.c1a.conv', 3, m + w1, m, false), ...bnSpecs('up.c1a.bn', m),
    ...convSpecs('up.c1b.conv', 3, m, m, false), ...bnSpecs('up.c1b.bn', m),
    ...convTransposeSpecs('up.t2.convt', 4, m, t, false), ...bnSpecs('up.t2.bn', t),
    ...convSpecs('up.c2.conv', 3, t + (c.inputSkip ? c.channels : 0), t, false), ...bnSpecs('up.c2.bn', t),
    ...convSpecs('up.out.conv', 1, t, 1, true),
  ];
}

export function unetParamCount(c: UnetConfig): number {
  return countParams(unetSpecs(c));
}

export interface Unet extends ParamStore {
  kind: 'unet';
  config: UnetConfig;
}

/** Allocates a U-Net initialised deterministically from `seed`. */
export function createUnet(config: UnetConfig, seed = 0): Unet {
  return { kind: 'unet', config, ...createStore(unetSpecs(config), seed) };
}

function param4(store: ParamStore, name: string): tf.Tensor4D {
  const v = store.params.get(name);
  if (v == null) throw new Error(`missing parameter ${name}`);
  return v as unknown as tf.Tensor4D;
}

/** Transposed convolution layer `${name}.weight` (+ `.bias` when present). */
export function convTransposeLayer(store: ParamStore, name: string, x: tf.Tensor4D, stride: number, pad: number): tf.Tensor4D {
  const b = (store.params.get(`${name}.bias`) ?? null) as unknown as tf.Tensor1D | null;
  return conv2dTranspose(x, param4(store, `${name}.weight`), b, { stride, pad });
}

/**
 * 3x3 stride-1 convolution `${name}.weight` [3, 3, sum of channels, out] (no bias) of the channel
 * concatenation of `parts`, computed as a sum of one convolution per part with the matching slice
 * of the filter: the same function and the same single weight tensor as a concat + convolution,
 * without copying the activations into a concatenation and its gradient back out, and with
 * filter gradients per part (an odd total such as 16 + 1 channels misses the SIMD kernel).
 * Parts flagged `data` (the input image) get no input gradient.
 */
export function convOfConcat(store: ParamStore, name: string, parts: { x: tf.Tensor4D; data?: boolean }[]): tf.Tensor4D {
  const w = param4(store, `${name}.weight`);
  const total = parts.reduce((s, q) => s + q.x.shape[3], 0);
  if (w.shape[2] !== total) throw new Error(`convOfConcat: ${name} expects ${w.shape[2]} input channels, the parts have ${total}`);
  let off = 0;
  let y: tf.Tensor4D | null = null;
  for (const q of parts) {
    const c = q.x.shape[3];
    const wi = tf.slice(w, [0, 0, off, 0], [w.shape[0], w.shape[1], c, w.shape[3]]) as tf.Tensor4D;
    const yi = conv2d(q.x, wi, null, { stride: 1, pad: (w.shape[0] - 1) / 2, inputGrad: !q.data });
    y = y == null ? yi : tf.add(y, yi);
    off += c;
  }
  return y!;
}

/** Down-branch features: E1 output (skip) and E4 output after LeakyReLU (bottom). */
export interface DownFeatures {
  /** [N, S/2, S/2, w1] */
  e1: tf.Tensor4D;
  /** [N, S/4, S/4, w2] */
  bottom: tf.Tensor4D;
}

/**
 * The encoder's E1-E4 on `x`, with the layer definitions of vqvae.ts (same names, same ops).
 * Works on any store holding those `encoder.*` tensors (a VQ-VAE, a classifier, a U-Net).
 */
export function encodeDown(store: ParamStore, cfg: { resBlocks: number; leak: number }, x: tf.Tensor4D, ctx: ForwardContext): DownFeatures {
  const act: BnActivation = { leakyRelu: cfg.leak };
  const e1 = bnAct(store, 'encoder.e1.bn', convLayer(store, 'encoder.e1.conv', x, 2, 1, false), ctx, act);
  let h = bnAct(store, 'encoder.e2.bn', convLayer(store, 'encoder.e2.conv', e1, 2, 1), ctx, act);
  h = bnAct(store, 'encoder.e3.bn', convLayer(store, 'encoder.e3.conv', h, 1, 1), ctx, act);
  for (let i = 0; i < cfg.resBlocks; i++) {
    const prefix = `encoder.res.${i}`;
    const a = bnAct(store, `${prefix}.bn`, convLayer(store, `${prefix}.conv1`, h, 1, 1), ctx, 'relu');
    h = tf.add(h, convLayer(store, `${prefix}.conv2`, a, 1, 0));
  }
  return { e1, bottom: applyActivation(h, act) };
}

export interface UnetForwardOptions {
  /**
   * Context for the down branch (default: `ctx`). Pass an inference context to run a frozen
   * encoder with its running statistics while the up branch trains.
   */
  encoderCtx?: ForwardContext;
}

/** Mask logits [N, S, S, 1]. */
export function unetForward(model: Unet, x: tf.Tensor4D, ctx: ForwardContext, opts: UnetForwardOptions = {}): tf.Tensor4D {
  const c = model.config;
  if (x.rank !== 4 || x.shape[1] !== c.size || x.shape[2] !== c.size || x.shape[3] !== c.channels) {
    throw new Error(`unetForward: x must be [N, ${c.size}, ${c.size}, ${c.channels}] (got [${x.shape}])`);
  }
  const act: BnActivation = { leakyRelu: c.leak };
  const down = encodeDown(model, c, x, opts.encoderCtx ?? ctx);
  let u = bnAct(model, 'up.t1.bn', convTransposeLayer(model, 'up.t1.convt', down.bottom, 2, 1), ctx, act);
  // concat [u, e1] then conv 3x3, as one convolution per part
  u = bnAct(model, 'up.c1a.bn', convOfConcat(model, 'up.c1a.conv', [{ x: u }, { x: down.e1 }]), ctx, act);
  u = bnAct(model, 'up.c1b.bn', convLayer(model, 'up.c1b.conv', u, 1, 1), ctx, act);
  u = bnAct(model, 'up.t2.bn', convTransposeLayer(model, 'up.t2.convt', u, 2, 1), ctx, act);
  // concat [u, x] (input skip) then conv 3x3
  const parts = c.inputSkip ? [{ x: u }, { x, data: true }] : [{ x: u }];
  u = bnAct(model, 'up.c2.bn', convOfConcat(model, 'up.c2.conv', parts), ctx, act);
  return convLayer(model, 'up.out.conv', u, 1, 0);
}
