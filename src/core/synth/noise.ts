/**
 * Slightly correlated Gaussian noise: one square field per cohort (white Gaussian noise smoothed
 * with a 3x3 binomial kernel and rescaled to unit standard deviation), read at a seeded random
 * offset for every slice. Generating it once keeps per-slice cost to one lookup per pixel.
 */
import { Rng } from '../random';

export interface NoiseField {
  /** Side, a power of two. */
  size: number;
  data: Float32Array;
}

/** Field side for images of `imageSize`: a power of two, at least twice the image and at least 512. */
export function noiseFieldSize(imageSize: number): number {
  let m = 512;
  while (m < 2 * imageSize) m *= 2;
  return m;
}

export function makeNoiseField(seed: number | string, size = 512): NoiseField {
  if ((size & (size - 1)) !== 0) throw new Error(`noise field size must be a power of two, got ${size}`);
  const rng = Rng.keyed(seed, 'noise-field');
  const n = size * size;
  const white = new Float32Array(n);
  for (let i = 0; i < n; i++) white[i] = rng.normal();
  const m = size - 1;
  const tmp = new Float32Array(n);
  for (let j = 0; j < size; j++)
    for (let i = 0; i < size; i++) tmp[j * size + i] = white[j * size + ((i - 1) & m)] + 2 * white[j * size + i] + white[j * size + ((i + 1) & m)];
  const data = new Float32Array(n);
  let sum2 = 0;
  for (let j = 0; j < size; j++)
    for (let i = 0; i < size; i++) {
      const v = tmp[((j - 1) & m) * size + i] + 2 * tmp[j * size + i] + tmp[((j + 1) & m) * size + i];
      data[j * size + i] = v;
      sum2 += v * v;
    }
  const k = 1 / Math.sqrt(sum2 / n);
  for (let i = 0; i < n; i++) data[i] *= k;
  return { size, data };
}
