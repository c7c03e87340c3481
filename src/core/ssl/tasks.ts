/**
 * The pretext tasks of the paper, pure, on square [0, 1] images (size x size, row-major), every
 * random choice from the Rng passed in: examples made by the task's module (src/core/ssl/pretext/,
 * found by id in its registry; described in src/shared/pretext-tasks.ts), stacked into batches.
 *
 * - masked region: one square set to 0; the target is the original (transforms.ts: 'area' or 'side').
 * - next slice: input slice n, target slice n + gap of the same series (pairs come from the manifest).
 * - denoising: salt-and-pepper on a fraction of pixels (half set to 1, half to 0).
 * - rotation: 0/90/180/270 degrees, 4 classes.
 * - flip: none/horizontal/vertical, 3 classes.
 */
import type { Rng } from '../random';
import type { ClassExample, ReconExample, TaskOptions } from './pretext/behaviour';
import { pretextBehaviour } from './pretext/registry';

export * from './transforms';
export { isReconstructionTask, taskClasses } from '../../shared/pretext-tasks';
export type { ClassExample, ReconExample, TaskOptions };

/** One training example of a task. `next` is slice n + the task's paired-slice distance, when it has one. */
export function makeExample(o: TaskOptions, img: Float32Array, size: number, rng: Rng, next?: Float32Array): ReconExample | ClassExample {
  return pretextBehaviour(o.task).example(o, img, size, rng, next);
}

/**
 * A reconstruction task's batch from its slices: stackRecon of makeExample of each, in order (the
 * same random draws), written in place when the task's module can (exampleInto).
 */
export function reconBatch(o: TaskOptions, imgs: Float32Array[], size: number, rng: Rng, nexts: (Float32Array | undefined)[] = []) {
  const b = pretextBehaviour(o.task);
  if (!b.exampleInto) return stackRecon(imgs.map((img, i) => b.example(o, img, size, rng, nexts[i]) as ReconExample), size);
  const n = imgs.length;
  const px = size * size;
  const input = new Float32Array(n * px);
  const target = new Float32Array(n * px);
  const mask: Float32Array | undefined = new Float32Array(n * px);
  imgs.forEach((img, i) => {
    const at = (a: Float32Array) => a.subarray(i * px, (i + 1) * px);
    b.exampleInto!(o, img, size, rng, { input: at(input), target: at(target), mask: at(mask) }, nexts[i]);
  });
  return { shape: [n, size, size, 1] as [number, number, number, number], input, target, mask };
}

/** Distance to the second slice the task's examples need (the next-slice gap); 0 for none. */
export function pairedSliceOffset(o: TaskOptions): number {
  return pretextBehaviour(o.task).pairedSlice?.(o) ?? 0;
}

/** Stacks examples into NHWC (C = 1) batches, the layout the models take. */
export function stackRecon(examples: ReconExample[], size: number) {
  const n = examples.length;
  const input = new Float32Array(n * size * size);
  const target = new Float32Array(n * size * size);
  const hasMask = examples.some((e) => e.mask);
  const mask = hasMask ? new Float32Array(n * size * size) : undefined;
  examples.forEach((e, i) => {
    input.set(e.input, i * size * size);
    target.set(e.target, i * size * size);
    if (mask && e.mask) mask.set(e.mask, i * size * size);
  });
  return { shape: [n, size, size, 1] as [number, number, number, number], input, target, mask };
}

export function stackClass(examples: ClassExample[], size: number) {
  const n = examples.length;
  const input = new Float32Array(n * size * size);
  const labels = new Int32Array(n);
  examples.forEach((e, i) => {
    input.set(e.input, i * size * size);
    labels[i] = e.label;
  });
  return { shape: [n, size, size, 1] as [number, number, number, number], input, labels };
}
