/**
 * A model and its optimizer behind one small interface, so the pretraining loop and eval-ssl do
 * not care which model a task trains. Built from a run config: a VQ-VAE for the reconstruction
 * tasks, the encoder-classifier for the classification ones (the task's kind and classes in
 * src/shared/pretext-tasks.ts).
 */
import * as tf from '@tensorflow/tfjs';
import type { PretrainConfig } from '../../shared/run-config';
import { classifierForward, classifierParamCount, classifierPreset, createClassifier, type Classifier } from '../../core/ml/classifier';
import { createOptimizer, type AdamFamily, type OptimizerState } from '../../core/ml/optim';
import { trainStepClassifier, trainStepRecon } from '../../core/ml/train-step';
import { recipeLossOptions } from '../../core/ml/losses';
import { createVqvae, disposeContext, greyOf, inferenceContext, initCodebookFromData, vqvaeForward, vqvaeParamCount, vqvaePreset, type Vqvae, type VqvaePresetName } from '../../core/ml/vqvae';
import { disposeStore, exportWeights, importWeights, type WeightEntry } from '../../core/ml/weights';
import { recalibrateRunningStats } from '../../core/ml/bn-recalibrate';
import { modelChannels, modelSize } from '../../core/ml/specs/pretrain';
import { isReconstructionTask, taskClasses } from '../../shared/pretext-tasks';
import type { PretrainBatch } from './pretrain-batches';
import { GradientHelper, ShardedStep, type ShardModelSpec } from '../data-parallel';

export interface PretrainEngine {
  readonly kind: 'vqvae' | 'classifier';
  readonly size: number;
  readonly params: number;
  readonly lr: number;
  step(batch: PretrainBatch): Promise<Record<string, number>>;
  /** Reconstructions (N x S x S) in the model's output range, or class probabilities (N x classes). */
  predict(batch: PretrainBatch): Promise<Float32Array>;
  /** Re-estimates BatchNorm running statistics from these batches (before evaluating). */
  recalibrate(batches: PretrainBatch[]): Promise<void>;
  /** Before the first step of a fresh run: data-dependent initialisation (the VQ codebook). */
  prepare(first: PretrainBatch): Promise<void>;
  getWeights(): Promise<WeightEntry[]>;
  setWeights(entries: WeightEntry[], strict: boolean): Promise<{ loaded: string[]; missing: string[]; unexpected: string[] }>;
  getOptimizerState(): Promise<OptimizerState>;
  setOptimizerState(state: OptimizerState): Promise<void>;
  numTensors(): number;
  /** Data parallelism (src/trainer/data-parallel.ts): 2 shards a batch, in a helper thread or not; null without. */
  readonly sharding: ShardedStep | null;
  dispose(): Promise<void>;
}

export interface PretrainEngineOptions {
  /**
   * Split each batch into 2 shards as data-parallel training does (BatchNorm per shard): 'parallel'
   * computes the second in a helper thread with its own wasm backend, 'sequential' both here
   * (the same numbers, bit for bit). Default: the whole batch at once.
   */
  dataParallel?: 'parallel' | 'sequential';
}

export { modelSize };

function sharding(opts: PretrainEngineOptions, spec: ShardModelSpec): ShardedStep | null {
  if (opts.dataParallel == null) return null;
  return new ShardedStep(2, opts.dataParallel === 'parallel' ? () => GradientHelper.start({ model: spec }) : null);
}

export function createPretrainEngine(config: PretrainConfig, opts: PretrainEngineOptions = {}): PretrainEngine {
  const size = modelSize(config);
  const channels = modelChannels(config);
  const optimizer: AdamFamily = createOptimizer(config.optimizer, { lr: config.lr });
  if (isReconstructionTask(config.task)) {
    // The reference recipe takes the masked term and the SSIM term as the public code does (src/shared/recipes.ts).
    const lossOptions = recipeLossOptions(config);
    const model: Vqvae = createVqvae(vqvaePreset(config.preset as VqvaePresetName, { size, channels }), config.seed);
    const sharded = sharding(opts, { kind: 'vqvae', config: model.config });
    return wrap('vqvae', model, optimizer, size, vqvaeParamCount(model.config), sharded, {
      step: (b) => {
        if (b.kind !== 'recon') throw new Error('a reconstruction model needs a reconstruction batch');
        if (sharded != null) return sharded.step(model, optimizer, b, { weights: config.lossWeights, options: lossOptions });
        return { ...trainStepRecon(model, optimizer, b, config.lossWeights, lossOptions) };
      },
      predict: (b) =>
        tf.tidy(() => {
          const ctx = inferenceContext();
          const out = vqvaeForward(model, tf.tensor4d(b.input, b.shape), ctx);
          disposeContext(ctx);
          return greyOf(out.recon).dataSync() as Float32Array;
        }),
      recalibrate: (batches) => recalibrateRunningStats(model, (x, ctx) => void vqvaeForward(model, x, ctx), batches),
      prepare: (b) => {
        if (config.codebookInit === 'data') tf.tidy(() => initCodebookFromData(model, tf.tensor4d(b.input, b.shape), config.seed));
      },
    });
  }
  const classes = taskClasses(config.task);
  const cfg = classifierPreset(config.preset as VqvaePresetName, classes, { size, channels });
  const model: Classifier = createClassifier(cfg, config.seed);
  const sharded = sharding(opts, { kind: 'classifier', config: cfg });
  return wrap('classifier', model, optimizer, size, classifierParamCount(cfg), sharded, {
    step: (b) => {
      if (b.kind !== 'class') throw new Error('a classifier needs a labelled batch');
      if (sharded != null) return sharded.step(model, optimizer, b);
      return { ...trainStepClassifier(model, optimizer, b) };
    },
    predict: (b) =>
      tf.tidy(() => {
        const ctx = inferenceContext();
        const logits = classifierForward(model, tf.tensor4d(b.input, b.shape), ctx);
        disposeContext(ctx);
        return tf.softmax(logits).dataSync() as Float32Array;
      }),
    recalibrate: (batches) => recalibrateRunningStats(model, (x, ctx) => void classifierForward(model, x, ctx), batches),
    prepare: () => undefined,
  });
}

function wrap(
  kind: PretrainEngine['kind'],
  model: Vqvae | Classifier,
  optimizer: AdamFamily,
  size: number,
  params: number,
  sharded: ShardedStep | null,
  f: { step: (b: PretrainBatch) => Record<string, number> | Promise<Record<string, number>>; predict: (b: PretrainBatch) => Float32Array; recalibrate: (b: PretrainBatch[]) => number; prepare: (b: PretrainBatch) => void },
): PretrainEngine {
  return {
    kind,
    size,
    params,
    get lr() {
      return optimizer.lr;
    },
    async step(b) {
      return f.step(b);
    },
    async predict(b) {
      return f.predict(b);
    },
    async recalibrate(batches) {
      f.recalibrate(batches);
    },
    async prepare(b) {
      f.prepare(b);
    },
    async getWeights() {
      return exportWeights(model);
    },
    async setWeights(entries, strict) {
      return importWeights(model, entries, { strict });
    },
    async getOptimizerState() {
      return optimizer.getState();
    },
    async setOptimizerState(s) {
      optimizer.setState(s);
    },
    numTensors: () => tf.memory().numTensors,
    sharding: sharded,
    async dispose() {
      await sharded?.close();
      optimizer.dispose();
      disposeStore(model);
    },
  };
}

/** The name test/golden.test.ts imports (that test does not change); use createPretrainEngine. */
export const createEngine = createPretrainEngine;
