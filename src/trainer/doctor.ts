/**
 * What this machine can train: the compute backend chosen (and why better ones were not), CPU,
 * memory, and for each model preset an estimate of memory per image and the largest batch that fits.
 */
import { cpus, freemem, totalmem } from 'node:os';
import type { DoctorInfo } from '../shared/types';
import { estimateVqvaeMemory, gpuBatchAdvice, largestBatch } from '../core/ml/memory';
import { RECIPE_FIELDS, RECIPES, ssimOnMinMaxOutput } from '../shared/recipes';
import { presetParamCounts, VQVAE_PRESETS, vqvaeParamCount, vqvaePreset } from '../core/ml/vqvae';
import { initBackend } from './backend';

const GB = 2 ** 30;

export async function doctor(): Promise<DoctorInfo> {
  const backend = await initBackend();
  const budget = Math.max(0, freemem() - 1 * GB); // leave room for the app itself
  const presets = presetParamCounts().map(({ preset: name, channels1: params, channels3 }) => {
    const c = VQVAE_PRESETS[name];
    const est = estimateVqvaeMemory(c, params);
    return {
      preset: name,
      size: c.size,
      params,
      paramsByChannels: { '1': params, '3': channels3 },
      activationsPerImageMb: Math.round(est.activationsPerImage / 2 ** 20),
      largestBatch: largestBatch(est, budget),
      gpuRecommended: name === 'paper' || name === 'standard',
    };
  });
  return {
    backend: { name: backend.name, package: backend.package, version: backend.version, simd: backend.simd, threads: backend.threads, threadCount: backend.threadCount },
    skipped: backend.skipped,
    fallbackKernels: backend.fallbackKernels,
    cpu: { cores: cpus().length, model: cpus()[0]?.model ?? 'unknown', gc: process.execArgv.includes('--single-threaded-gc') ? 'single-threaded' : 'parallel' },
    memory: { totalGb: +(totalmem() / GB).toFixed(1), freeGb: +(freemem() / GB).toFixed(1) },
    budgetGb: +(budget / GB).toFixed(1),
    presets,
    note: 'Memory per preset is an estimate of activations kept for backpropagation (float32) plus parameters, gradients and Adam moments; GPU memory applies with tfjs-node-gpu.',
    gpu: paperOnGpus(),
  };
}

/** The paper preset's largest batch per GPU memory size, for each recipe (an estimate: see the note). */
export function paperOnGpus(): NonNullable<DoctorInfo['gpu']> {
  const MB = 2 ** 20;
  return {
    preset: 'paper',
    recipes: RECIPES.map((recipe) => {
      const r = RECIPE_FIELDS[recipe];
      const c = vqvaePreset('paper', { channels: r.channels });
      const a = gpuBatchAdvice(estimateVqvaeMemory(c, vqvaeParamCount(c), { ssimOnMinMax: ssimOnMinMaxOutput({ recipe }) }), r.batchSize);
      return { recipe, channels: r.channels, batch: r.batchSize, perImageMb: Math.round(a.perImage / MB), fixedMb: Math.round(a.fixed / MB), byGpu: a.byGpu, gpusFor: a.gpusFor };
    }),
    note:
      'An estimate, not a measurement: per image, the float32 feature maps a training step keeps for the backward pass (every conv, BatchNorm and activation output of the 512 px model, the inputs, targets, masks and SSIM maps); plus, once, weights, gradients and two Adam moments (4 x parameters x 4 bytes). A GPU is taken to offer 90 % of its memory less 1 GiB (the rest for the CUDA context, cuDNN workspaces and fragmentation). Batches beyond one GPU split data parallel (ctssl job).',
  };
}
