/**
 * What a pretext task does, as its module under this folder declares it: one training example
 * from a slice (and, for tasks that need one, a second slice of the same series). Everything else
 * (model, loss, metrics) follows from the task's kind in src/shared/pretext-tasks.ts.
 */
import type { PretextTaskId, TaskOptionValues } from '../../../shared/pretext-tasks';
import type { Rng } from '../../random';

/** A task and its options, as a batch stream gets them from the run config. */
export type TaskOptions = { task: PretextTaskId } & TaskOptionValues;

export interface ReconExample {
  input: Float32Array;
  target: Float32Array;
  mask?: Float32Array;
}
export interface ClassExample {
  input: Float32Array;
  label: number;
}

export interface PretextBehaviour {
  readonly id: string;
  /**
   * One example from slice n (`img`, size x size in [0, 1]): input and target for a reconstruction
   * task (and the mask of the region that counts for masked MSE), input and class for a
   * classification task. `next` is slice n + `pairedSlice(o)` when the task asks for one.
   */
  example(o: TaskOptions, img: Float32Array, size: number, rng: Rng, next?: Float32Array): ReconExample | ClassExample;
  /**
   * A reconstruction task may also write the same example (same random draws) straight into its
   * slots of a batch (input, target, mask: size x size each, zero-filled), which saves the
   * per-example arrays and their copies (src/core/ssl/tasks.ts reconBatch).
   */
  exampleInto?(o: TaskOptions, img: Float32Array, size: number, rng: Rng, out: { input: Float32Array; target: Float32Array; mask: Float32Array }, next?: Float32Array): void;
  /** Distance to the second slice an example needs (next slice: the gap); absent = none. */
  pairedSlice?(o: TaskOptions): number;
}
