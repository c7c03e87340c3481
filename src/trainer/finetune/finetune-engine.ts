/**
 * The downstream model (src/core/ml/downstream.ts) and its optimizer behind the small interface
 * the fine-tuning loop uses, like pretrain-engine.ts does for pretraining.
 */
import * as tf from '@tensorflow/tfjs';
import type { FinetuneConfig } from '../../shared/run-config';
import {
  createDownstreamModel,
  disposeDownstreamModel,
  downstreamParamCount,
  exportDownstreamWeights,
  finetuneStep,
  importDownstreamWeights,
  loadPretrainedEncoder,
  predict,
  recalibrateBatchNorm,
  type DownstreamModel,
} from '../../core/ml/downstream';
import { createOptimizer, type OptimizerState } from '../../core/ml/optim';
import { vqvaePreset, type VqvaePresetName } from '../../core/ml/vqvae';
import type { WeightEntry } from '../../core/ml/weights';
import type { FinetuneBatch } from './finetune-batches';

export interface FinetuneEngine {
  readonly size: number;
  readonly params: number;
  readonly lr: number;
  step(batch: FinetuneBatch, o: { freezeEncoder: boolean }): Promise<Record<string, number>>;
  /** Class probabilities [N x 2] or mask probabilities [N x S x S], inference mode. */
  predict(batch: FinetuneBatch): Promise<Float32Array>;
  /** Re-estimates BatchNorm running statistics from training batches before evaluating. */
  recalibrate(batches: FinetuneBatch[], o: { freezeEncoder: boolean }): Promise<void>;
  loadEncoder(entries: WeightEntry[]): Promise<{ loaded: string[] }>;
  getWeights(): Promise<WeightEntry[]>;
  setWeights(entries: WeightEntry[]): Promise<void>;
  getOptimizerState(): Promise<OptimizerState>;
  setOptimizerState(s: OptimizerState): Promise<void>;
  numTensors(): number;
  dispose(): Promise<void>;
}

const toBatch = (b: FinetuneBatch) =>
  b.kind === 'class' ? { shape: b.shape, input: b.input, labels: b.labels } : { shape: b.shape, input: b.input, mask: b.mask };

export async function createFinetuneEngine(config: FinetuneConfig, classWeights: number[]): Promise<FinetuneEngine> {
  const arch = { kind: config.model, preset: config.preset as VqvaePresetName, size: config.size, classes: 2, ...(config.pool && config.model === 'encoder-classifier' && { pool: config.pool }) };
  const model: DownstreamModel = createDownstreamModel(arch, config.seed);
  const optimizer = createOptimizer(config.optimizer, { lr: config.lr });
  const size = config.size ?? vqvaePreset(config.preset as VqvaePresetName).size;
  return {
    size,
    params: downstreamParamCount(arch).total,
    get lr() {
      return optimizer.lr;
    },
    async step(b, o) {
      const losses = finetuneStep(model, optimizer, toBatch(b), {
        freezeEncoder: o.freezeEncoder && config.model !== 'cnn',
        classWeights: b.kind === 'class' ? classWeights : undefined,
        lossWeights: config.lossWeights,
      });
      return { ...losses } as Record<string, number>;
    },
    async predict(b) {
      return predict(model, { shape: b.shape, input: b.input });
    },
    async recalibrate(batches, o) {
      recalibrateBatchNorm(model, batches.map(toBatch), { freezeEncoder: o.freezeEncoder && config.model !== 'cnn' });
    },
    async loadEncoder(entries) {
      if (config.model === 'cnn') throw new Error("the 'cnn' baseline has no pretrained encoder");
      return { loaded: loadPretrainedEncoder(model, entries).loaded };
    },
    getWeights: async () => exportDownstreamWeights(model),
    setWeights: async (e) => importDownstreamWeights(model, e),
    getOptimizerState: async () => optimizer.getState(),
    setOptimizerState: async (s) => optimizer.setState(s),
    numTensors: () => tf.memory().numTensors,
    async dispose() {
      optimizer.dispose();
      disposeDownstreamModel(model);
    },
  };
}
