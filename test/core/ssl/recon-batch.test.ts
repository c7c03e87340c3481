import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src/core/random';
import { makeExample, reconBatch, stackRecon, type ReconExample, type TaskOptions } from '../../../src/core/ssl/tasks';

/** reconBatch (the pretraining batches' assembly) must equal stackRecon of makeExample per slice, bit for bit. */
describe('reconBatch', () => {
  it('equals stackRecon(makeExample(...)) for every reconstruction task, same random draws', () => {
    const size = 32;
    const rng0 = new Rng(11);
    const imgs = Array.from({ length: 5 }, () => Float32Array.from({ length: size * size }, () => rng0.next()));
    const nexts = Array.from({ length: 5 }, () => Float32Array.from({ length: size * size }, () => rng0.next()));
    const base = { maskPercent: 10, maskDefinition: 'area', noiseFraction: 0.3, gap: 1 } as const;
    const tasks: TaskOptions[] = [
      { task: 'masked', ...base },
      { task: 'masked', ...base, maskPercent: 33, maskDefinition: 'side' },
      { task: 'denoise', ...base },
      { task: 'next-slice', ...base },
    ] as TaskOptions[];
    for (const o of tasks) {
      for (const seed of [1, 2, 3]) {
        // one Rng for the batch, as the stream uses it
        const r1 = new Rng(seed);
        const ref = stackRecon(imgs.map((img, i) => makeExample(o, img, size, r1, nexts[i]) as ReconExample), size);
        const got = reconBatch(o, imgs, size, new Rng(seed), nexts);
        expect(got.shape).toEqual(ref.shape);
        expect(Array.from(got.input), `${o.task} input`).toEqual(Array.from(ref.input));
        expect(Array.from(got.target), `${o.task} target`).toEqual(Array.from(ref.target));
        expect(got.mask ? Array.from(got.mask) : null, `${o.task} mask`).toEqual(ref.mask ? Array.from(ref.mask) : null);
      }
    }
    // the slices are not modified
    expect(imgs[0].some((v) => v === 0)).toBe(false);
  });
});
