/**
 * What this machine can train: the compute backend chosen (and why better ones were not), CPU,
 * memory, and for each model preset an estimate of memory per image and the largest batch that fits.
 */
import { cpus, freemem, totalmem } from 'node:os';
import type { DoctorInfo } from '../shared/types';
import { estimateVqvaeMemory, largestBatch } from '../core/ml/memory';
import { VQVAE_PRESETS, vqvaeParamCount, vqvaePreset, type VqvaePresetName } from '../core/ml/vqvae';
import { initBackend } from './backend';

const GB = 2 ** 30;

export async function doctor(): Promise<DoctorInfo> {
  const backend = await initBackend();
  const budget = Math.max(0, freemem() - 1 * GB); // leave room for the app itself
  const presets = (Object.keys(VQVAE_PRESETS) as VqvaePresetName[]).map((name) => {
    const c = VQVAE_PRESETS[name];
    const params = vqvaeParamCount(c);
    const est = estimateVqvaeMemory(c, params);
    return {
      preset: name,
      size: c.size,
      params,
      paramsByChannels: { '1': params, '3': vqvaeParamCount(vqvaePreset(name, { channels: 3 })) },
      activationsPerImageMb: Math.round(est.activationsPerImage / 2 ** 20),
      largestBatch: largestBatch(est, budget),
      gpuRecommended: name === 'paper' || name === 'standard',
    };
  });
  return {
    backend: { name: backend.name, package: backend.package, version: backend.version, simd: backend.simd, threads: backend.threads },
    skipped: backend.skipped,
    fallbackKernels: backend.fallbackKernels,
    cpu: { cores: cpus().length, model: cpus()[0]?.model ?? 'unknown' },
    memory: { totalGb: +(totalmem() / GB).toFixed(1), freeGb: +(freemem() / GB).toFixed(1) },
    budgetGb: +(budget / GB).toFixed(1),
    presets,
    note: 'Memory per preset is an estimate of activations kept for backpropagation (float32) plus parameters, gradients and Adam moments; GPU memory applies with tfjs-node-gpu.',
  };
}
