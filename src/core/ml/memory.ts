/**
 * Rough memory needs of training, for `ctssl doctor` and the app's preset advice. Counts the
 * feature maps a training step keeps for the backward pass (each conv, BatchNorm and activation
 * output, in float32) plus parameters, gradients and two Adam moments. An estimate, stated as one:
 * the paper preset at 512 px comes to about 6 GB of activations per image (the reference notes
 * "roughly 5.6 GB"). gpuBatchAdvice answers, from the same estimate, the largest batch per GPU of
 * 24, 48 and 80 GB (`ctssl doctor`).
 */
import type { VqvaeConfig } from './vqvae';

export interface MemoryEstimate {
  /** Bytes of activations kept per image. */
  activationsPerImage: number;
  /** Bytes for parameters, gradients and optimizer moments. */
  parameters: number;
  /** Total for a batch. */
  total: (batch: number) => number;
}

export function estimateVqvaeMemory(c: VqvaeConfig, params: number, o: { ssimOnMinMax?: boolean } = {}): MemoryEstimate {
  const s2 = (c.size / 2) ** 2;
  const s4 = (c.size / 4) ** 2;
  const [w1, w2] = c.widths;
  let floats = 0;
  floats += 3 * w1 * s2; // E1: conv, BN, LeakyReLU
  floats += 2 * 3 * w2 * s4; // E2, E3
  floats += c.resBlocks * 5 * w2 * s4; // residual blocks: conv3x3, BN, ReLU, conv1x1, add
  floats += w2 * s4 + 3 * c.latent * s4; // E5
  floats += 3 * c.latent * s4; // VQ: distances are per code, but kept as indices; quantised + straight-through
  floats += 3 * w2 * s4; // D1
  floats += c.resBlocks * 5 * w2 * s4 + w2 * s4; // D2
  floats += 3 * w1 * s2; // D3
  floats += 3 * c.channels * c.size * c.size; // D4 + tanh
  floats += 6 * c.channels * c.size * c.size; // inputs, targets, masks, loss maps (SSIM)
  if (o.ssimOnMinMax) floats += c.channels * c.size * c.size; // the min-max-scaled output (the reference recipe)
  const activationsPerImage = floats * 4;
  const parameters = params * 4 * 4; // weights, gradients, Adam m and v
  return { activationsPerImage, parameters, total: (batch) => parameters + batch * activationsPerImage };
}

/** Largest batch whose estimate fits in `bytes` (0 when even one image does not). */
export function largestBatch(e: MemoryEstimate, bytes: number, cap = 256): number {
  let b = 0;
  while (b < cap && e.total(b + 1) <= bytes) b++;
  return b;
}

/** GPU memory sizes `ctssl doctor` answers for, in GiB (24, 48 and 80 GB cards). */
export const GPU_MEMORY_GB = [24, 48, 80] as const;

/**
 * Of a GPU's memory, what training may use in this estimate: 90 % of it less 1 GiB, the rest left
 * to the CUDA context, cuDNN workspaces and the allocator's fragmentation (an assumption, not a
 * measurement).
 */
export function usableGpuBytes(gb: number): number {
  return Math.max(0, 0.9 * gb * 2 ** 30 - 2 ** 30);
}

export interface GpuBatchAdvice {
  /** Bytes per image (activations kept for the backward pass). */
  perImage: number;
  /** Bytes independent of the batch (weights, gradients, Adam moments). */
  fixed: number;
  /** Largest batch per GPU, for each size in GPU_MEMORY_GB. */
  byGpu: { gb: number; largestBatch: number }[];
  /** GPUs (data parallel, the batch split evenly) a batch of `batch` needs, for each size; null when one image does not fit. */
  gpusFor: { gb: number; gpus: number | null }[];
}

/** The largest batch per GPU of each memory size, and how many GPUs a batch of `batch` takes, from the estimate. */
export function gpuBatchAdvice(e: MemoryEstimate, batch: number): GpuBatchAdvice {
  const byGpu = GPU_MEMORY_GB.map((gb) => ({ gb, largestBatch: largestBatch(e, usableGpuBytes(gb), 4096) }));
  return {
    perImage: e.activationsPerImage,
    fixed: e.parameters,
    byGpu,
    gpusFor: byGpu.map(({ gb, largestBatch: b }) => ({ gb, gpus: b > 0 ? Math.ceil(batch / b) : null })),
  };
}
