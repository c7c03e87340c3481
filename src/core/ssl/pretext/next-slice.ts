/** Next slice: input slice n, target slice n + gap of the same series (pairs come from the manifest). */
import type { PretextBehaviour } from './behaviour';

export const nextSlice: PretextBehaviour = {
  id: 'next-slice',
  example(_o, img, _size, _rng, next) {
    if (!next) throw new Error('next-slice needs the slice at n + gap');
    return { input: img, target: next };
  },
  pairedSlice: (o) => o.gap,
};
