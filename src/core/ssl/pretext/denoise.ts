/** Denoising: salt-and-pepper noise on a fraction of the pixels; the target is the clean slice. */
import { saltAndPepper } from '../transforms';
import type { PretextBehaviour } from './behaviour';

export const denoise: PretextBehaviour = {
  id: 'denoise',
  example: (o, img, _size, rng) => ({ input: saltAndPepper(img, o.noiseFraction, rng), target: img }),
};
