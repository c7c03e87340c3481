/** Masked region: one square set to 0 (p% of the area, or of the side); the target is the original, the square its mask. */
import { applyMask, maskBox, maskInPlace } from '../transforms';
import type { PretextBehaviour } from './behaviour';

export const masked: PretextBehaviour = {
  id: 'masked',
  example(o, img, size, rng) {
    const { input, mask } = applyMask(img, size, maskBox(size, o.maskPercent, o.maskDefinition, rng));
    return { input, target: img, mask };
  },
  exampleInto(o, img, size, rng, out) {
    const box = maskBox(size, o.maskPercent, o.maskDefinition, rng);
    out.input.set(img);
    out.target.set(img);
    maskInPlace(out.input, out.mask, size, box);
  },
};
