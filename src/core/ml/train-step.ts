/**
 * One optimisation step on a batch, returning each loss term as plain numbers, with no tensor
 * left behind (tf.memory().numTensors is constant across steps once the optimizer's moment slots
 * exist, i.e. from the second step on).
 *
 * Batches are Float32Array in NHWC order ([N, H, W, C], C last), values in [0, 1].
 *
 * The step is split into {@link reconGradients} / {@link classifierGradients} (forward +
 * backward) and {@link applyUpdate} (optimizer + BatchNorm running statistics) so that
 * fine-tuning (downstream.ts) computes its own gradients and shares the update.
 */
import * as tf from '@tensorflow/tfjs';
import { type Classifier, classifierForward } from './classifier';
import type { BatchStats } from './layers';
import { type CompositeOptions, type CompositeWeights, compositeLoss, crossEntropy } from './losses';
import type { AdamFamily } from './optim';
import { type ForwardContext, type Vqvae, disposeContext, expandChannels, trainingContext, updateRunningStats, vqvaeForward } from './vqvae';
import type { ParamStore } from './weights';

export type Shape4 = [number, number, number, number];

/** Batch for the reconstruction tasks (masked region, next slice, denoising). */
export interface ReconBatch {
  /** [N, H, W, C] */
  shape: Shape4;
  /** Model input, NHWC. */
  input: Float32Array;
  /** Reconstruction target, NHWC. */
  target: Float32Array;
  /** Masked-region indicator (1 inside), NHWC; absent for tasks without a mask. */
  mask?: Float32Array;
}

/** Batch for the classification tasks (rotation, flip). */
export interface ClassBatch {
  shape: Shape4;
  input: Float32Array;
  /** Class index per image, length N. */
  labels: Int32Array;
}

export interface ReconLosses {
  /** Composite loss that was minimised. */
  loss: number;
  mse: number;
  maskedMse: number;
  vq: number;
  ssim: number;
}

export interface ClassLosses {
  loss: number;
  /** Fraction of the batch classified correctly (before the update). */
  accuracy: number;
}

export interface GradientResult<L> {
  /** Gradient per parameter name (caller disposes, or passes to applyUpdate). */
  grads: Map<string, tf.Tensor>;
  /** BatchNorm batch statistics by layer name (caller disposes, or passes to applyUpdate). */
  stats: Map<string, BatchStats>;
  losses: L;
}

function checkBatch(shape: Shape4, arrays: [string, Float32Array | Int32Array | undefined, number][]): void {
  if (shape.length !== 4 || shape.some((d) => !Number.isInteger(d) || d <= 0)) throw new Error(`batch shape must be [N, H, W, C] (got [${shape}])`);
  for (const [name, a, n] of arrays) {
    if (a != null && a.length !== n) throw new Error(`batch.${name} has ${a.length} values, expected ${n}`);
  }
}

function varNames(store: ParamStore): { list: tf.Variable[]; byVar: Map<string, string> } {
  const list = [...store.params.values()];
  const byVar = new Map<string, string>();
  for (const [name, v] of store.params) byVar.set(v.name, name);
  return { list, byVar };
}

function runGradients<L>(store: ParamStore, f: (ctx: ForwardContext) => tf.Scalar, readLosses: (kept: tf.Tensor) => L, terms: () => tf.Tensor): GradientResult<L> {
  const ctx = trainingContext();
  const { list, byVar } = varNames(store);
  let kept: tf.Tensor | null = null;
  let result: { value: tf.Scalar; grads: tf.NamedTensorMap };
  try {
    result = tf.variableGrads(() => {
      const loss = f(ctx);
      kept = tf.keep(terms());
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
  const losses = readLosses(kept!);
  (kept as unknown as tf.Tensor).dispose();
  return { grads, stats: ctx.stats, losses };
}

/** Forward and backward of the composite reconstruction loss on a batch. */
export function reconGradients(model: Vqvae, batch: ReconBatch, weights: Partial<CompositeWeights> = {}, options: CompositeOptions = {}): GradientResult<ReconLosses> {
  const [n, h, w, c] = batch.shape;
  checkBatch(batch.shape, [['input', batch.input, n * h * w * c], ['target', batch.target, n * h * w * c], ['mask', batch.mask, n * h * w * c]]);
  let stacked: () => tf.Tensor = () => tf.zeros([5]);
  return runGradients(
    model,
    (ctx) => {
      const x = tf.tensor4d(batch.input, batch.shape);
      // a 3-channel model reconstructs the grey target repeated into its channels (the reference's)
      const y = expandChannels(tf.tensor4d(batch.target, batch.shape), model.config.channels);
      const mask = batch.mask == null ? null : expandChannels(tf.tensor4d(batch.mask, batch.shape), model.config.channels);
      const out = vqvaeForward(model, x, ctx);
      const t = compositeLoss(out.recon, y, out.vqLoss, mask, weights, options);
      stacked = () => tf.stack([t.total, t.mse, t.maskedMse, t.vq, t.ssim]);
      return t.total;
    },
    (kept) => {
      const v = kept.dataSync();
      return { loss: v[0], mse: v[1], maskedMse: v[2], vq: v[3], ssim: v[4] };
    },
    () => stacked(),
  );
}

/** Forward and backward of the cross-entropy loss on a batch. */
export function classifierGradients(model: Classifier, batch: ClassBatch): GradientResult<ClassLosses> {
  const [n, h, w, c] = batch.shape;
  checkBatch(batch.shape, [['input', batch.input, n * h * w * c], ['labels', batch.labels, n]]);
  let stacked: () => tf.Tensor = () => tf.zeros([2]);
  return runGradients(
    model,
    (ctx) => {
      const x = tf.tensor4d(batch.input, batch.shape);
      const labels = tf.tensor1d(batch.labels, 'int32');
      const logits = classifierForward(model, x, ctx);
      const loss = crossEntropy(logits, labels);
      const acc = tf.mean(tf.equal(tf.argMax(logits, 1), labels).toFloat());
      stacked = () => tf.stack([loss, acc]);
      return loss;
    },
    (kept) => {
      const v = kept.dataSync();
      return { loss: v[0], accuracy: v[1] };
    },
    () => stacked(),
  );
}

/**
 * Applies the optimizer to `grads` and updates BatchNorm running statistics from `stats`
 * (momentum 0.1); disposes both.
 */
export function applyUpdate(model: ParamStore, optimizer: AdamFamily, grads: Map<string, tf.Tensor>, stats: Map<string, BatchStats>, bnMomentum = 0.1): void {
  try {
    optimizer.apply(model.params, grads);
    updateRunningStats(model, stats, bnMomentum);
  } finally {
    for (const g of grads.values()) g.dispose();
    for (const s of stats.values()) tf.dispose([s.mean, s.variance]);
    stats.clear();
  }
}

/** One optimisation step of a VQ-VAE on a reconstruction batch. */
export function trainStepRecon(model: Vqvae, optimizer: AdamFamily, batch: ReconBatch, weights: Partial<CompositeWeights> = {}, options: CompositeOptions = {}): ReconLosses {
  const r = reconGradients(model, batch, weights, options);
  applyUpdate(model, optimizer, r.grads, r.stats);
  return r.losses;
}

/** One optimisation step of a classifier on a labelled batch. */
export function trainStepClassifier(model: Classifier, optimizer: AdamFamily, batch: ClassBatch): ClassLosses {
  const r = classifierGradients(model, batch);
  applyUpdate(model, optimizer, r.grads, r.stats);
  return r.losses;
}
