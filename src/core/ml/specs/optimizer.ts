/**
 * The optimizers' names, options and serialisable state, without TensorFlow.js: what a checkpoint
 * stores (src/library/runs/checkpoint.ts). The update rules over tf.Variables are in ../optim.ts.
 */

export type OptimizerKind = 'adam' | 'radam';

export interface OptimizerOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** L2 penalty added to the gradient (PyTorch `weight_decay`), default 0. */
  weightDecay: number;
}

export const DEFAULT_OPTIMIZER_OPTIONS: OptimizerOptions = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };

/** Serialisable optimizer state. */
export interface OptimizerState {
  kind: OptimizerKind;
  /** Steps taken so far. */
  step: number;
  options: OptimizerOptions;
  /** First and second moments per parameter name. */
  slots: { name: string; shape: number[]; m: Float32Array; v: Float32Array }[];
}
