/**
 * `ctssl doctor`'s answer for the paper preset on a GPU workstation (src/trainer/doctor.ts
 * paperOnGpus, from src/core/ml/memory.ts): the largest batch per GPU of 24, 48 and 80 GB for our
 * recipe and the reference recipe, checked against the closed form of the same estimate
 * (floor((usable - fixed) / per image)), and the GPUs a recipe's batch takes.
 */
import { describe, expect, it } from 'vitest';
import { estimateVqvaeMemory, gpuBatchAdvice, GPU_MEMORY_GB, usableGpuBytes } from '../../src/core/ml/memory';
import { vqvaeParamCount, vqvaePreset } from '../../src/core/ml/vqvae';
import { paperOnGpus } from '../../src/trainer/doctor';

const GiB = 2 ** 30;

describe('the paper preset per GPU memory size', () => {
  it('is the closed form of the memory estimate, per recipe', () => {
    const g = paperOnGpus();
    expect(g.preset).toBe('paper');
    expect(g.recipes.map((r) => [r.recipe, r.channels, r.batch])).toEqual([
      ['ours', 1, 8],
      ['reference', 3, 16],
    ]);
    for (const r of g.recipes) {
      const c = vqvaePreset('paper', { channels: r.channels });
      const e = estimateVqvaeMemory(c, vqvaeParamCount(c), { ssimOnMinMax: r.recipe === 'reference' });
      // weights, gradients and two Adam moments of 101.3 M float32 parameters: 1.51 GiB
      expect(e.parameters).toBe(vqvaeParamCount(c) * 16);
      for (const { gb, largestBatch } of r.byGpu) {
        const usable = 0.9 * gb * GiB - GiB;
        expect(largestBatch).toBe(Math.floor((usable - e.parameters) / e.activationsPerImage));
        // and one more image would not fit
        expect(e.total(largestBatch + 1)).toBeGreaterThan(usableGpuBytes(gb));
      }
      expect(r.byGpu.map((b) => b.gb)).toEqual([...GPU_MEMORY_GB]);
    }
    // About 6.4 GB of activations per 512 px image (the reference notes "roughly 5.6 GB"): 2, 6 and 10 per GPU.
    expect(g.recipes[0].perImageMb / 1024).toBeGreaterThan(5.6);
    expect(g.recipes[0].perImageMb / 1024).toBeLessThan(7);
    expect(g.recipes.map((r) => r.byGpu.map((b) => b.largestBatch))).toEqual([
      [2, 6, 10],
      [2, 6, 10],
    ]);
    // The reference recipe's batch of 16 takes 8 GPUs of 24 GB, 3 of 48 GB or 2 of 80 GB.
    expect(g.recipes[1].gpusFor).toEqual([
      { gb: 24, gpus: 8 },
      { gb: 48, gpus: 3 },
      { gb: 80, gpus: 2 },
    ]);
    expect(g.note).toMatch(/^An estimate, not a measurement/);
  });

  it('says when not even one image fits', () => {
    const e = { activationsPerImage: 100 * GiB, parameters: GiB, total: (b: number) => GiB + b * 100 * GiB };
    const a = gpuBatchAdvice(e, 16);
    expect(a.byGpu.every((b) => b.largestBatch === 0)).toBe(true);
    expect(a.gpusFor.every((f) => f.gpus === null)).toBe(true);
  });
});
