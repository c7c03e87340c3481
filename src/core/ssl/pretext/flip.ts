/** Flip: none, horizontal (left-right) or vertical (up-down); the class is the flip. */
import { flipImage } from '../transforms';
import type { PretextBehaviour } from './behaviour';

export const flip: PretextBehaviour = {
  id: 'flip',
  example(_o, img, size, rng) {
    const label = rng.int(3);
    return { input: flipImage(img, size, label), label };
  },
};
