/** Rotation: the slice turned counter-clockwise by 0/90/180/270 degrees; the class is the turn. */
import { rotate90 } from '../transforms';
import type { PretextBehaviour } from './behaviour';

export const rotation: PretextBehaviour = {
  id: 'rotation',
  example(_o, img, size, rng) {
    const label = rng.int(4);
    return { input: rotate90(img, size, label), label };
  },
};
