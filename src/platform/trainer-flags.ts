/**
 * V8 flags of a trainer process, given at its start (V8 refuses them once its heap is running:
 * `v8.setFlagsFromString('--single-threaded-gc')` in a live process aborts it at its next GC).
 *
 * On a machine with no more cores than the trainer's compute threads (2: data-parallel training
 * runs this thread and a helper thread, each on half the batch, src/trainer/data-parallel.ts),
 * V8's parallel and concurrent garbage-collection threads find no free core: they take turns with
 * the compute threads, and both compute threads slow down. There the trainer collects garbage on
 * the thread that made it (`--single-threaded-gc`). Measured on 2 cores (docs/benchmarks.md,
 * Training throughput): a data-parallel small step 260 -> 209 ms. With more cores V8's default
 * stays. CTSSL_TRAINER_GC=single or =parallel chooses either.
 */
import { availableParallelism } from 'node:os';

/** The compute threads of a training step on the CPU (data-parallel: this thread and one helper). */
export const TRAINER_COMPUTE_THREADS = 2;

export function trainerExecArgv(cores = availableParallelism(), env: NodeJS.ProcessEnv = process.env): string[] {
  const choice = env.CTSSL_TRAINER_GC;
  if (choice === 'single') return ['--single-threaded-gc'];
  if (choice === 'parallel') return [];
  return cores <= TRAINER_COMPUTE_THREADS ? ['--single-threaded-gc'] : [];
}
