/**
 * The viewer's first paint (src/renderer/src/viewer/window-level.ts windowedGrey): the slice's HU
 * mapped to grey under the window as vtk.js maps them, level - width/2 black, level + width/2 white.
 */
import { describe, expect, it } from 'vitest';
import { windowedGrey } from '../../src/renderer/src/viewer/window-level';

describe('windowedGrey', () => {
  it('maps HU linearly between level - width/2 (black) and level + width/2 (white), opaque grey', () => {
    // Soft tissue: level 50, width 350 -> -125 black, 225 white.
    const hu = Int16Array.from([-1000, -125, 50, 225, 3000, -32768]);
    const rgba = windowedGrey(hu, { level: 50, width: 350 }, new Uint8ClampedArray(6 * 4));
    const grey = Array.from({ length: 6 }, (_, i) => rgba[4 * i]);
    expect(grey).toEqual([0, 0, 128, 255, 255, 0]); // 50 HU: 175 / 350 * 255 = 127.5, rounded by the clamped array
    for (let i = 0; i < 6; i++) {
      expect(rgba[4 * i + 1]).toBe(grey[i]);
      expect(rgba[4 * i + 2]).toBe(grey[i]);
      expect(rgba[4 * i + 3]).toBe(255);
    }
    expect(() => windowedGrey(hu, { level: 50, width: 350 }, new Uint8ClampedArray(8))).toThrow('the picture has room for 2 pixels, the slice has 6 voxels');
  });
});
