/**
 * Downstream models behind one interface (issue 5): the paper's slice classifier (pretrained
 * encoder + compression head + dense softmax, classifier.ts), the supervised CNN baseline trained
 * from scratch (an SE-ResNet, cnn.ts) and the nodule-segmentation U-Net whose down branch is the
 * pretrained encoder (unet.ts). NHWC float32; batches are plain Float32Array.
 *
 * - {@link createDownstreamModel} / {@link downstreamSpecs} / {@link downstreamParamCount}
 * - {@link loadPretrainedEncoder}: copies the `encoder.*` tensors of a pretrained run (VQ-VAE or
 *   classifier export) into the model; everything else keeps its random initialisation.
 * - {@link finetuneStep} (= {@link finetuneGradients} + `applyUpdate` of train-step.ts): one
 *   optimisation step, weighted cross-entropy for classification, soft Dice + BCE for
 *   segmentation; `freezeEncoder` runs the encoder as a fixed feature extractor (inference-mode
 *   BatchNorm with its running statistics, no gradients, no updates of parameters or buffers).
 * - {@link recalibrateBatchNorm}: running statistics re-estimated from a few batches before
 *   evaluation (they trail the weights after short or fast fine-tuning runs).
 * - {@link predict}: probabilities in inference mode; {@link embedding}: global-average-pooled
 *   encoder output, for the bias probe (any store with `encoder.*` tensors, including a VQ-VAE).
 *
 * Pure module: imports `@tensorflow/tfjs` only.
 */
import * as tf from '@tensorflow/tfjs';
import { customGradient } from './backend';
import { type Classifier, type ClassifierConfig, classifierPreset, classifierSpecs } from './classifier';
import { type Cnn, type CnnConfig, cnnFeatures, cnnForward, cnnPreset, cnnSpecs } from './cnn';
import { dense } from './layers';
import { type ClassBatch, type GradientResult, type Shape4, applyUpdate } from './train-step';
import type { AdamFamily } from './optim';
import { type Unet, type UnetConfig, encodeDown, unetForward, unetPreset, unetSpecs } from './unet';
import {
  type ForwardContext, type VqvaePresetName, VQVAE_PRESETS, bnAct, convLayer, disposeContext, encode, inferenceContext,
  trainingContext,
} from './vqvae';
import { type ParamSpec, type ParamStore, type WeightEntry, countParams, createStore, exportWeights, importWeights } from './weights';
import { recalibrateRunningStats } from './bn-recalibrate';
import { foldToGreyInput } from './specs/vqvae';

export type { ClassBatch } from './train-step';

// ---------------------------------------------------------------------------------------------
// Configuration

export type DownstreamKind = 'encoder-classifier' | 'cnn' | 'unet';
export const DOWNSTREAM_KINDS: readonly DownstreamKind[] = ['encoder-classifier', 'cnn', 'unet'];

export interface DownstreamConfig {
  kind: DownstreamKind;
  /**
   * Size preset. For the encoder models it must be the preset of the pretrained run whose encoder
   * will be loaded (same widths, residual blocks and latent); for the CNN it picks its depth.
   */
  preset: VqvaePresetName;
  /** Input height = width (default: the preset's). */
  size?: number;
  /** Classes for classification (default 2); ignored by the U-Net. */
  classes?: number;
  /** Input channels (default: the preset's, 1). */
  channels?: number;
  /** Encoder-classifier only: width of the head's convolutions (default: the preset's latent). */
  headWidth?: number;
  /** Encoder-classifier only: the head's pooling (default 'mean'; see ClassifierConfig.pool). */
  pool?: 'mean' | 'mean-max';
}

/** Architecture behind a downstream configuration. */
export type DownstreamArch =
  | { kind: 'encoder-classifier'; config: ClassifierConfig }
  | { kind: 'cnn'; config: CnnConfig }
  | { kind: 'unet'; config: UnetConfig };

/** Resolves a downstream configuration into the architecture it builds (validated). */
export function resolveDownstreamConfig(config: DownstreamConfig): DownstreamArch {
  if (config == null || typeof config !== 'object') throw new Error('downstream config must be an object');
  if (!DOWNSTREAM_KINDS.includes(config.kind)) {
    throw new Error(`downstream config.kind must be one of ${DOWNSTREAM_KINDS.join(', ')} (got '${String(config.kind)}')`);
  }
  if (VQVAE_PRESETS[config.preset] == null) {
    throw new Error(`downstream config.preset must be one of ${Object.keys(VQVAE_PRESETS).join(', ')} (got '${String(config.preset)}')`);
  }
  const classes = config.classes ?? 2;
  if (config.kind !== 'unet' && (!Number.isInteger(classes) || classes < 2)) {
    throw new Error(`downstream config.classes must be an integer >= 2 (got ${classes})`);
  }
  const over: { size?: number; channels?: number } = {};
  if (config.size != null) over.size = config.size;
  if (config.channels != null) over.channels = config.channels;
  if (config.kind !== 'encoder-classifier' && (config.headWidth != null || config.pool != null)) {
    throw new Error(`downstream config.headWidth and config.pool apply to the encoder-classifier only (got kind '${config.kind}')`);
  }
  if (config.kind === 'encoder-classifier') {
    const head: { headWidth?: number; pool?: 'mean' | 'mean-max' } = {};
    if (config.headWidth != null) head.headWidth = config.headWidth;
    if (config.pool != null) head.pool = config.pool;
    return { kind: config.kind, config: classifierPreset(config.preset, classes, { ...over, ...head }) };
  }
  if (config.kind === 'cnn') return { kind: config.kind, config: cnnPreset(config.preset, classes, over) };
  return { kind: config.kind, config: unetPreset(config.preset, over) };
}

/** Every tensor of the model a configuration builds (validates the configuration). */
export function downstreamSpecs(config: DownstreamConfig): ParamSpec[] {
  const a = resolveDownstreamConfig(config);
  if (a.kind === 'encoder-classifier') return classifierSpecs(a.config);
  if (a.kind === 'cnn') return cnnSpecs(a.config);
  return unetSpecs(a.config);
}

/** Trainable parameter counts: total, in the (pretrainable) encoder, and in the rest. */
export function downstreamParamCount(config: DownstreamConfig): { total: number; encoder: number; rest: number } {
  const specs = downstreamSpecs(config);
  const total = countParams(specs);
  const encoder = countParams(specs.filter((s) => isEncoderName(s.name)));
  return { total, encoder, rest: total - encoder };
}

/** True for tensor names of the pretrainable encoder (`encoder.*`). */
export function isEncoderName(name: string): boolean {
  return name.startsWith('encoder.');
}

// ---------------------------------------------------------------------------------------------
// Models

/** A downstream model: its tensors (shared with `net`) plus the configuration. */
export interface DownstreamModel extends ParamStore {
  kind: DownstreamKind;
  config: DownstreamConfig;
  /** The underlying network (same `params` / `buffers` maps). */
  net: Classifier | Cnn | Unet;
}

/** Allocates a downstream model initialised deterministically from `seed`. */
export function createDownstreamModel(config: DownstreamConfig, seed = 0): DownstreamModel {
  const a = resolveDownstreamConfig(config);
  const specs = a.kind === 'encoder-classifier' ? classifierSpecs(a.config) : a.kind === 'cnn' ? cnnSpecs(a.config) : unetSpecs(a.config);
  const store = createStore(specs, seed);
  const net = { kind: a.kind === 'encoder-classifier' ? 'classifier' : a.kind, config: a.config, ...store } as Classifier | Cnn | Unet;
  return { kind: a.kind, config: { ...config }, net, params: store.params, buffers: store.buffers };
}

/** Disposes every tensor of the model. */
export function disposeDownstreamModel(model: DownstreamModel): void {
  for (const v of model.params.values()) v.dispose();
  for (const v of model.buffers.values()) v.dispose();
}

/** Whether the model predicts a mask (U-Net) rather than classes. */
export function isSegmentation(model: DownstreamModel): boolean {
  return model.kind === 'unet';
}

/** Number of classes of a classification model (1 for the U-Net's single mask channel). */
export function outputClasses(model: DownstreamModel): number {
  return model.net.kind === 'unet' ? 1 : model.net.config.classes;
}

/** Input shape [S, S, C] the model expects. */
export function inputShape(model: DownstreamModel): [number, number, number] {
  const c = model.net.config;
  return [c.size, c.size, c.channels];
}

export interface DownstreamForwardOptions {
  /**
   * Run the encoder as a fixed feature extractor: inference-mode BatchNorm (running statistics),
   * no batch statistics recorded for it. Gradients are excluded by {@link finetuneGradients}.
   */
  freezeEncoder?: boolean;
}

function checkFreeze(model: DownstreamModel, freeze: boolean | undefined, fn: string): void {
  if (freeze && model.kind === 'cnn') throw new Error(`${fn}: freezeEncoder is not available for the 'cnn' baseline (it has no pretrained encoder)`);
}

function classifierHead(net: Classifier, h: tf.Tensor4D, ctx: ForwardContext): tf.Tensor2D {
  const c = net.config;
  h = bnAct(net, 'head.c1.bn', convLayer(net, 'head.c1.conv', h, 2, 1), ctx, { leakyRelu: c.leak });
  h = bnAct(net, 'head.c2.bn', convLayer(net, 'head.c2.conv', h, 2, 1), ctx, { leakyRelu: c.leak });
  const mean = tf.mean(h, [1, 2]) as tf.Tensor2D;
  const pooled = c.pool === 'mean-max' ? (tf.concat([mean, tf.max(h, [1, 2]) as tf.Tensor2D], 1) as tf.Tensor2D) : mean;
  return dense(pooled, net.params.get('head.fc.weight') as unknown as tf.Tensor2D, net.params.get('head.fc.bias') as unknown as tf.Tensor1D);
}

/**
 * Forward pass: logits [N, classes] (classification) or mask logits [N, S, S, 1] (U-Net).
 * `ctx` is a training or inference context of vqvae.ts.
 */
export function downstreamForward(model: DownstreamModel, x: tf.Tensor4D, ctx: ForwardContext, opts: DownstreamForwardOptions = {}): tf.Tensor {
  checkFreeze(model, opts.freezeEncoder, 'downstreamForward');
  const [s, , ch] = inputShape(model);
  if (x == null || x.rank !== 4 || x.shape[1] !== s || x.shape[2] !== s || x.shape[3] !== ch) {
    throw new Error(`downstreamForward: x must be [N, ${s}, ${s}, ${ch}] (got [${x?.shape}])`);
  }
  const encCtx = opts.freezeEncoder && ctx.training ? inferenceContext() : ctx;
  const net = model.net;
  if (net.kind === 'cnn') return cnnForward(net, x, ctx);
  if (net.kind === 'unet') return unetForward(net, x, ctx, { encoderCtx: encCtx });
  return classifierHead(net, encode(net, net.config, x, encCtx), ctx);
}

// ---------------------------------------------------------------------------------------------
// Pretrained encoder

export interface EncoderLoadReport {
  /** Model tensors that were loaded. */
  loaded: string[];
  /** `encoder.*` tensors of the model absent from the weights (kept at their initialisation). */
  missing: string[];
  /** Entries not used: other tensors of the source (decoder, codebook, heads, E5 for a U-Net). */
  ignored: string[];
}

/**
 * Loads the `encoder.*` tensors of `entries` (an export of a VQ-VAE, classifier or downstream
 * model) into the model; the head / up branch is untouched. Throws, before changing anything, if
 * no tensor matches (e.g. weights of a different model family) or if a shape differs (e.g. a
 * different preset).
 */
export function loadPretrainedEncoder(model: DownstreamModel, entries: WeightEntry[]): EncoderLoadReport {
  if (!Array.isArray(entries)) throw new Error('loadPretrainedEncoder: entries must be an array of weight entries');
  // a 3-channel run (the reference's input) into a grey model: its E1 filter summed over the channels, exact for grey slices
  if ((model.params.get('encoder.e1.conv.weight')?.shape as number[] | undefined)?.[2] === 1) entries = foldToGreyInput(entries);
  const own = [...model.params.keys(), ...model.buffers.keys()].filter(isEncoderName);
  if (own.length === 0) throw new Error(`loadPretrainedEncoder: a '${model.kind}' model has no encoder to load`);
  const ownSet = new Set(own);
  const mine = (name: string) => model.params.get(name) ?? model.buffers.get(name);
  const use: WeightEntry[] = [];
  const ignored: string[] = [];
  const mismatched: string[] = [];
  for (const e of entries) {
    if (!ownSet.has(e.name)) {
      ignored.push(e.name);
      continue;
    }
    const v = mine(e.name)!;
    if (e.shape.length !== v.shape.length || e.shape.some((d, i) => d !== v.shape[i])) mismatched.push(`${e.name} [${e.shape}] vs [${v.shape}]`);
    else use.push(e);
  }
  if (mismatched.length > 0) {
    throw new Error(
      `loadPretrainedEncoder: the pretrained encoder does not fit this model (different preset or channels?): ` +
      `${mismatched.length} tensor(s) differ in shape (weights vs model): ${mismatched.slice(0, 4).join('; ')}${mismatched.length > 4 ? '; ...' : ''}`);
  }
  if (use.length === 0) {
    throw new Error(`loadPretrainedEncoder: none of the ${entries.length} entries is an encoder tensor of this model ` +
      `(expected names like ${own[0]}); are these weights of an encoder model?`);
  }
  const r = importWeights(model, use, { strict: false });
  return { loaded: r.loaded, missing: r.missing.filter(isEncoderName), ignored };
}

/** All tensors as plain data (for checkpoints and exports). */
export function exportDownstreamWeights(model: DownstreamModel): WeightEntry[] {
  return exportWeights(model);
}

/** Loads a full export of the same configuration (strict: every tensor, matching shapes). */
export function importDownstreamWeights(model: DownstreamModel, entries: WeightEntry[]): void {
  importWeights(model, entries, { strict: true });
}

// ---------------------------------------------------------------------------------------------
// Losses

/**
 * Cross-entropy of softmax(logits [N, K]) against integer labels, optionally class-weighted as
 * PyTorch's `CrossEntropyLoss(weight=w)`: sum_i w[y_i] * nll_i / sum_i w[y_i].
 */
export function weightedCrossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D | Int32Array, classWeights?: number[]): tf.Scalar {
  return tf.tidy(() => {
    const k = logits.shape[1];
    const idx = labels instanceof tf.Tensor ? labels.toInt() : tf.tensor1d(labels, 'int32');
    const onehot = tf.oneHot(idx as tf.Tensor1D, k).toFloat();
    const nll = tf.neg(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), 1));
    if (classWeights == null) return tf.mean(nll) as tf.Scalar;
    if (classWeights.length !== k) throw new Error(`classWeights has ${classWeights.length} values, the model has ${k} classes`);
    const wi = tf.sum(tf.mul(onehot, tf.tensor1d(classWeights)), 1);
    return tf.div(tf.sum(tf.mul(wi, nll)), tf.sum(wi)) as tf.Scalar;
  });
}

/**
 * Mean binary cross-entropy of sigmoid(logits) against targets in [0, 1], computed stably as
 * max(z, 0) - z y + log(1 + exp(-|z|)); gradient (sigmoid(z) - y) / count (none for the target).
 */
export function bceWithLogits(logits: tf.Tensor, target: tf.Tensor): tf.Scalar {
  if (logits.size !== target.size) throw new Error(`bceWithLogits: logits have ${logits.size} values, target ${target.size}`);
  const count = logits.size;
  const f = customGradient((z: tf.Tensor, y: tf.Tensor, save: tf.GradSaveFunc) => {
    save([z, y]);
    const value = tf.tidy(() => {
      const y2 = y.reshape(z.shape);
      const absZ = tf.sub(tf.mul(tf.relu(z), 2), z);
      const l = tf.add(tf.sub(tf.relu(z), tf.mul(z, y2)), tf.log1p(tf.exp(tf.neg(absZ))));
      return tf.mean(l);
    });
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sz, sy] = saved;
        return [tf.mul(tf.sub(tf.sigmoid(sz), sy.reshape(sz.shape)), tf.div(dy, count)), tf.zerosLike(sy)];
      },
    };
  });
  return f(logits, target) as tf.Scalar;
}

/**
 * Soft Dice loss 1 - (2 sum(p g) + smooth) / (sum p + sum g + smooth) with p = sigmoid(logits),
 * pooled over the whole batch (stable when many slices have no nodule), or per image and then
 * averaged (`perImage`).
 */
export function softDiceLoss(logits: tf.Tensor4D, target: tf.Tensor4D, smooth = 1, perImage = false): tf.Scalar {
  return tf.tidy(() => {
    const p = tf.sigmoid(logits);
    const g = target.reshape(logits.shape);
    const axes = perImage ? [1, 2, 3] : undefined;
    const inter = tf.sum(tf.mul(p, g), axes);
    const den = tf.add(tf.add(tf.sum(p, axes), tf.sum(g, axes)), smooth);
    const dice = tf.div(tf.add(tf.mul(inter, 2), smooth), den);
    return tf.sub(1, tf.mean(dice)) as tf.Scalar;
  });
}

export interface SegLossOptions {
  /** Weight of the soft Dice loss (default 1). */
  dice: number;
  /** Weight of the binary cross-entropy (default 1). */
  bce: number;
  /** Dice smoothing term (default 1). */
  smooth: number;
  /** Dice per image then averaged, instead of pooled over the batch (default false). */
  perImage: boolean;
}

export const DEFAULT_SEG_LOSS: SegLossOptions = { dice: 1, bce: 1, smooth: 1, perImage: false };

/** dice * softDiceLoss + bce * bceWithLogits, with both terms. */
export function segmentationLoss(logits: tf.Tensor4D, mask: tf.Tensor4D, opts: Partial<SegLossOptions> = {}): { total: tf.Scalar; dice: tf.Scalar; bce: tf.Scalar } {
  const o = { ...DEFAULT_SEG_LOSS, ...opts };
  const d = softDiceLoss(logits, mask, o.smooth, o.perImage);
  const b = bceWithLogits(logits, mask);
  const total = tf.add(tf.mul(d, o.dice), tf.mul(b, o.bce)) as tf.Scalar;
  return { total, dice: d, bce: b };
}

// ---------------------------------------------------------------------------------------------
// Fine-tuning

/** Batch for segmentation: images and binary masks. */
export interface SegBatch {
  /** [N, S, S, C] of the input. */
  shape: Shape4;
  /** Images, NHWC. */
  input: Float32Array;
  /** Masks [N, S, S, 1], values in [0, 1] (1 inside the nodule). */
  mask: Float32Array;
}

export interface FinetuneOptions {
  /** Exclude `encoder.*` from gradients and updates (encoder BatchNorm in inference mode). */
  freezeEncoder?: boolean;
  /** Classification: per-class weights of the cross-entropy (length = classes). */
  classWeights?: number[];
  /** Segmentation: loss weights and Dice options. */
  lossWeights?: Partial<SegLossOptions>;
  /** BatchNorm running-statistics momentum (default 0.1, PyTorch). */
  bnMomentum?: number;
}

export interface ClassFinetuneLosses {
  /** Loss that was minimised (weighted cross-entropy). */
  loss: number;
  /** Fraction of the batch classified correctly (before the update). */
  accuracy: number;
}

export interface SegFinetuneLosses {
  /** Loss that was minimised (dice * soft Dice loss + bce * BCE). */
  loss: number;
  /** Hard Dice of the batch (sigmoid > 0.5, pooled over the batch; 1 when both are empty), before the update. */
  dice: number;
  /** Soft Dice loss term. */
  diceLoss: number;
  /** BCE term. */
  bce: number;
}

function isSegBatch(b: ClassBatch | SegBatch): b is SegBatch {
  return (b as SegBatch).mask != null;
}

function checkBatch(model: DownstreamModel, batch: ClassBatch | SegBatch, fn: string): void {
  if (batch == null || typeof batch !== 'object') throw new Error(`${fn}: batch must be an object`);
  const shape = batch.shape;
  if (!Array.isArray(shape) || shape.length !== 4 || shape.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new Error(`${fn}: batch.shape must be [N, H, W, C] (got [${shape}])`);
  }
  const [n, h, w, c] = shape;
  const [s, , ch] = inputShape(model);
  if (h !== s || w !== s || c !== ch) throw new Error(`${fn}: batch.shape must be [N, ${s}, ${s}, ${ch}] for this model (got [${shape}])`);
  if (!(batch.input instanceof Float32Array) || batch.input.length !== n * h * w * c) {
    throw new Error(`${fn}: batch.input must be a Float32Array of ${n * h * w * c} values (got ${batch.input?.length})`);
  }
  if (isSegmentation(model)) {
    if (!isSegBatch(batch)) throw new Error(`${fn}: the U-Net needs a SegBatch with a mask`);
    if (!(batch.mask instanceof Float32Array) || batch.mask.length !== n * h * w) {
      throw new Error(`${fn}: batch.mask must be a Float32Array of ${n * h * w} values [N, S, S, 1] (got ${batch.mask?.length})`);
    }
    for (let i = 0; i < batch.mask.length; i++) {
      const v = batch.mask[i];
      if (!(v >= 0 && v <= 1)) throw new Error(`${fn}: batch.mask values must be in [0, 1] (got ${v} at ${i})`);
    }
  } else {
    const labels = (batch as ClassBatch).labels;
    if (!(labels instanceof Int32Array) || labels.length !== n) {
      throw new Error(`${fn}: a '${model.kind}' model needs a ClassBatch with batch.labels an Int32Array of ${n} labels`);
    }
    const k = outputClasses(model);
    for (let i = 0; i < n; i++) {
      if (labels[i] < 0 || labels[i] >= k) throw new Error(`${fn}: batch.labels[${i}] = ${labels[i]} is outside [0, ${k - 1}]`);
    }
  }
}

function checkOptions(model: DownstreamModel, opts: FinetuneOptions, fn: string): void {
  checkFreeze(model, opts.freezeEncoder, fn);
  if (opts.classWeights != null) {
    if (isSegmentation(model)) throw new Error(`${fn}: opts.classWeights applies to classification models only`);
    const k = outputClasses(model);
    const w = opts.classWeights;
    if (!Array.isArray(w) || w.length !== k || w.some((v) => !Number.isFinite(v) || v < 0) || w.every((v) => v === 0)) {
      throw new Error(`${fn}: opts.classWeights must be ${k} finite non-negative numbers, not all 0 (got [${w}])`);
    }
  }
  const lw = opts.lossWeights;
  if (lw != null) {
    for (const key of ['dice', 'bce', 'smooth'] as const) {
      const v = lw[key];
      if (v != null && !(Number.isFinite(v) && v >= 0)) throw new Error(`${fn}: opts.lossWeights.${key} must be a finite number >= 0 (got ${v})`);
    }
  }
}

/** Names of the parameters a step trains. */
export function trainableNames(model: DownstreamModel, freezeEncoder = false): string[] {
  return [...model.params.keys()].filter((n) => !(freezeEncoder && isEncoderName(n)));
}

/**
 * Forward and backward on a batch; gradients only for the trained parameters (not `encoder.*`
 * with `freezeEncoder`). The caller passes the result to `applyUpdate` (train-step.ts) or
 * disposes it.
 */
export function finetuneGradients(model: DownstreamModel, batch: ClassBatch, opts?: FinetuneOptions): GradientResult<ClassFinetuneLosses>;
export function finetuneGradients(model: DownstreamModel, batch: SegBatch, opts?: FinetuneOptions): GradientResult<SegFinetuneLosses>;
export function finetuneGradients(model: DownstreamModel, batch: ClassBatch | SegBatch, opts?: FinetuneOptions): GradientResult<ClassFinetuneLosses | SegFinetuneLosses>;
export function finetuneGradients(model: DownstreamModel, batch: ClassBatch | SegBatch, opts: FinetuneOptions = {}): GradientResult<ClassFinetuneLosses | SegFinetuneLosses> {
  checkBatch(model, batch, 'finetuneGradients');
  checkOptions(model, opts, 'finetuneGradients');
  const freeze = opts.freezeEncoder ?? false;
  const ctx = trainingContext();
  const names = trainableNames(model, freeze);
  const list = names.map((n) => model.params.get(n)!);
  const byVar = new Map<string, string>();
  for (const n of names) byVar.set(model.params.get(n)!.name, n);
  const seg = isSegmentation(model);
  let kept: tf.Tensor | null = null;
  let result: { value: tf.Scalar; grads: tf.NamedTensorMap };
  try {
    result = tf.variableGrads(() => {
      const x = tf.tensor4d(batch.input, batch.shape);
      const out = downstreamForward(model, x, ctx, { freezeEncoder: freeze });
      if (seg) {
        const [n, s] = batch.shape;
        const mask = tf.tensor4d((batch as SegBatch).mask, [n, s, s, 1]);
        const logits = out as tf.Tensor4D;
        const t = segmentationLoss(logits, mask, opts.lossWeights);
        const hard = tf.step(logits); // sigmoid > 0.5 <=> logit > 0
        kept = tf.keep(tf.stack([t.total, t.dice, t.bce, tf.sum(tf.mul(hard, mask)), tf.sum(hard), tf.sum(mask)]));
        return t.total;
      }
      const labels = tf.tensor1d((batch as ClassBatch).labels, 'int32');
      const logits = out as tf.Tensor2D;
      const loss = weightedCrossEntropy(logits, labels, opts.classWeights);
      const acc = tf.mean(tf.equal(tf.argMax(logits, 1), labels).toFloat());
      kept = tf.keep(tf.stack([loss, acc]));
      return loss;
    }, list);
  } catch (e) {
    disposeContext(ctx);
    if (kept != null) (kept as tf.Tensor).dispose();
    throw e;
  }
  const grads = new Map<string, tf.Tensor>();
  for (const [k, g] of Object.entries(result.grads)) grads.set(byVar.get(k) ?? k, g);
  result.value.dispose();
  const v = (kept as unknown as tf.Tensor).dataSync();
  (kept as unknown as tf.Tensor).dispose();
  let losses: ClassFinetuneLosses | SegFinetuneLosses;
  if (seg) {
    const den = v[4] + v[5];
    losses = { loss: v[0], diceLoss: v[1], bce: v[2], dice: den > 0 ? (2 * v[3]) / den : 1 };
  } else {
    losses = { loss: v[0], accuracy: v[1] };
  }
  return { grads, stats: ctx.stats, losses };
}

/**
 * One fine-tuning step: gradients, optimizer update, BatchNorm running statistics (not of a
 * frozen encoder). Returns plain numbers; leaves no tensor behind (tf.memory().numTensors is
 * constant from the second step on, once the optimizer's moments exist).
 */
export function finetuneStep(model: DownstreamModel, optimizer: AdamFamily, batch: ClassBatch, opts?: FinetuneOptions): ClassFinetuneLosses;
export function finetuneStep(model: DownstreamModel, optimizer: AdamFamily, batch: SegBatch, opts?: FinetuneOptions): SegFinetuneLosses;
export function finetuneStep(model: DownstreamModel, optimizer: AdamFamily, batch: ClassBatch | SegBatch, opts?: FinetuneOptions): ClassFinetuneLosses | SegFinetuneLosses;
export function finetuneStep(model: DownstreamModel, optimizer: AdamFamily, batch: ClassBatch | SegBatch, opts: FinetuneOptions = {}): ClassFinetuneLosses | SegFinetuneLosses {
  if (optimizer == null || typeof optimizer.apply !== 'function') throw new Error('finetuneStep: optimizer must be an optimizer from createOptimizer');
  const r = finetuneGradients(model, batch, opts);
  applyUpdate(model, optimizer, r.grads, r.stats, opts.bnMomentum ?? 0.1);
  return r.losses;
}

/**
 * Re-estimates BatchNorm running statistics as the plain average of the batch statistics over
 * `batches` (training-mode forward passes, no parameter change; PyTorch `swa_utils.update_bn`).
 * Running statistics trail the weights by their momentum; after a short or fast fine-tuning run
 * they can be far from the statistics the weights were trained with, and inference-mode
 * predictions suffer. With `freezeEncoder` the encoder's statistics are left as they are.
 * Returns the number of BatchNorm layers updated.
 */
export function recalibrateBatchNorm(model: DownstreamModel, batches: Iterable<ClassBatch | SegBatch | { shape: Shape4; input: Float32Array }>, opts: { freezeEncoder?: boolean } = {}): number {
  checkFreeze(model, opts.freezeEncoder, 'recalibrateBatchNorm');
  const [s, , ch] = inputShape(model);
  const checked = [...batches].map((b) => {
    if (b == null || !Array.isArray(b.shape) || b.shape[1] !== s || b.shape[2] !== s || b.shape[3] !== ch || !(b.input instanceof Float32Array)) {
      throw new Error(`recalibrateBatchNorm: each batch needs shape [N, ${s}, ${s}, ${ch}] and a Float32Array input`);
    }
    return b;
  });
  return recalibrateRunningStats(model, (x, ctx) => downstreamForward(model, x, ctx, { freezeEncoder: opts.freezeEncoder }), checked);
}

// ---------------------------------------------------------------------------------------------
// Inference

/** Images as a tensor [N, S, S, C] or as plain NHWC data with its shape. */
export type ImageInput = tf.Tensor4D | { shape: Shape4; input: Float32Array };

/** Runs `f` on chunks of at most `batchSize` images, concatenating the Float32 results. */
function chunked(x: ImageInput, batchSize: number, perImage: (n: number) => number, f: (t: tf.Tensor4D) => tf.Tensor, fn: string): Float32Array {
  if (!Number.isInteger(batchSize) || batchSize <= 0) throw new Error(`${fn}: opts.batchSize must be a positive integer (got ${batchSize})`);
  let shape: Shape4;
  let data: Float32Array | null = null;
  if (x instanceof tf.Tensor) {
    if (x.rank !== 4) throw new Error(`${fn}: x must be a 4-D tensor [N, S, S, C] (got rank ${x.rank})`);
    shape = x.shape as Shape4;
  } else {
    if (x == null || !Array.isArray(x.shape) || x.shape.length !== 4 || !(x.input instanceof Float32Array)) {
      throw new Error(`${fn}: x must be a tensor or { shape: [N, S, S, C], input: Float32Array }`);
    }
    shape = x.shape;
    data = x.input;
    if (data.length !== shape[0] * shape[1] * shape[2] * shape[3]) throw new Error(`${fn}: x.input has ${data.length} values, x.shape [${shape}] needs ${shape[0] * shape[1] * shape[2] * shape[3]}`);
  }
  const [n, h, w, c] = shape;
  const per = h * w * c;
  const out = new Float32Array(n * perImage(1));
  for (let i = 0; i < n; i += batchSize) {
    const m = Math.min(batchSize, n - i);
    const r = tf.tidy(() => {
      const t = data != null
        ? tf.tensor4d(data.subarray(i * per, (i + m) * per), [m, h, w, c])
        : (m === n ? (x as tf.Tensor4D) : tf.slice(x as tf.Tensor4D, [i, 0, 0, 0], [m, h, w, c]));
      return f(t);
    });
    out.set(r.dataSync() as Float32Array, i * perImage(1));
    r.dispose();
  }
  return out;
}

/**
 * Probabilities in inference mode (BatchNorm running statistics): softmax [N * classes] for
 * classification, sigmoid mask [N * S * S] for the U-Net. Processes `batchSize` images at a time
 * (default 16).
 */
export function predict(model: DownstreamModel, x: ImageInput, opts: { batchSize?: number } = {}): Float32Array {
  const [s] = inputShape(model);
  const per = isSegmentation(model) ? s * s : outputClasses(model);
  return chunked(x, opts.batchSize ?? 16, (k) => k * per, (t) => {
    const out = downstreamForward(model, t, inferenceContext());
    return isSegmentation(model) ? tf.sigmoid(out) : tf.softmax(out as tf.Tensor2D);
  }, 'predict');
}

/** A store with encoder tensors, optionally with a configuration giving `leak`. */
export type EncoderSource = DownstreamModel | (ParamStore & { config?: { leak?: number } });

/** Embedding matrix [N, dim], row-major. */
export interface Embeddings {
  shape: [number, number];
  data: Float32Array;
}

/**
 * Global-average-pooled encoder output [N, dim] in inference mode, for the bias probe.
 * - any store with the encoder E1-E5 (`encoder.*` incl. `encoder.e5.*`: a VQ-VAE, a classifier,
 *   an encoder-classifier): the latent map, dim = latent;
 * - a U-Net (E1-E4 only): the down branch's output, dim = w2;
 * - the CNN baseline: its pooled last-stage features, dim = widths[-1].
 * The number of residual blocks is read from the tensor names; LeakyReLU slope from the
 * configuration (default 0.01).
 */
export function embedding(model: EncoderSource, x: ImageInput, opts: { batchSize?: number; pool?: 'mean' | 'mean-max' } = {}): Embeddings {
  const meanMax = opts.pool === 'mean-max';
  if (opts.pool != null && opts.pool !== 'mean' && !meanMax) throw new Error(`embedding: pool must be 'mean' or 'mean-max' (got '${String(opts.pool)}')`);
  // 'mean-max': the average and the maximum over positions side by side (2 x dim), so a finding
  // covering a few positions is not averaged away (a linear probe's features for small lesions).
  const pooled = (h: tf.Tensor4D) => (meanMax ? tf.concat([tf.mean(h, [1, 2]), tf.max(h, [1, 2])], 1) : tf.mean(h, [1, 2]));
  if (model == null || !(model.params instanceof Map)) throw new Error('embedding: model must be a parameter store');
  const dm = model as DownstreamModel;
  let dim: number;
  let f: (t: tf.Tensor4D) => tf.Tensor;
  const cnn = dm.net?.kind === 'cnn' ? dm.net : (model as Partial<Cnn>).kind === 'cnn' ? (model as Cnn) : null;
  if (cnn != null) {
    if (meanMax) throw new Error("embedding: pool 'mean-max' applies to encoders (the CNN baseline's features are pooled by the CNN)");
    dim = cnn.config.widths[cnn.config.widths.length - 1];
    f = (t) => cnnFeatures(cnn, t, inferenceContext());
  } else {
    const e1 = model.params.get('encoder.e1.conv.weight');
    if (e1 == null) throw new Error('embedding: the model has no encoder tensors (encoder.e1.conv.weight missing)');
    let resBlocks = 0;
    while (model.params.has(`encoder.res.${resBlocks}.conv1.weight`)) resBlocks++;
    const cfg = (dm.net?.config ?? (model as { config?: { leak?: number } }).config) as { leak?: number } | undefined;
    const leak = cfg?.leak ?? 0.01;
    const e5 = model.params.get('encoder.e5.conv.weight');
    const channels = (e1.shape as number[])[2];
    if (e5 != null) {
      dim = (e5.shape as number[])[3];
      f = (t) => pooled(encode(model, { resBlocks, leak }, checkChannels(t, channels), inferenceContext()));
    } else {
      const e2 = model.params.get('encoder.e2.conv.weight');
      if (e2 == null) throw new Error('embedding: the model has no encoder.e2.conv.weight');
      dim = (e2.shape as number[])[3];
      f = (t) => pooled(encodeDown(model, { resBlocks, leak }, checkChannels(t, channels), inferenceContext()).bottom);
    }
  }
  if (meanMax) dim *= 2;
  const data = chunked(x, opts.batchSize ?? 16, (k) => k * dim, f, 'embedding');
  return { shape: [data.length / dim, dim], data };
}

function checkChannels(t: tf.Tensor4D, channels: number): tf.Tensor4D {
  if (t.shape[3] !== channels) throw new Error(`embedding: x has ${t.shape[3]} channels, the encoder expects ${channels}`);
  if (t.shape[1] % 4 !== 0 || t.shape[2] % 4 !== 0) throw new Error(`embedding: x height and width must be multiples of 4 (got ${t.shape[1]}x${t.shape[2]})`);
  return t;
}
