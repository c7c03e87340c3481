/**
 * The viewer's first paint (src/renderer/src/viewer/view-overlay.ts windowedPicture): the slice's HU
 * mapped to grey under the window as vtk.js maps them, level - width/2 black, level + width/2 white.
 */
import { describe, expect, it } from 'vitest';
import { windowedPicture } from '../../src/renderer/src/viewer/view-overlay';

// Node has no ImageData: the same shape (what the function fills).
class FakeImageData {
  readonly data: Uint8ClampedArray;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.data = new Uint8ClampedArray(width * height * 4);
  }
}
(globalThis as unknown as { ImageData: unknown }).ImageData ??= FakeImageData;

describe('windowedPicture', () => {
  it('maps HU linearly between level - width/2 (black) and level + width/2 (white), opaque grey', () => {
    // Soft tissue: level 50, width 350 -> -125 black, 225 white.
    const hu = Int16Array.from([-1000, -125, 50, 225, 3000, -32768]);
    const img = windowedPicture(hu, 3, 2, { level: 50, width: 350 });
    expect([img.width, img.height]).toEqual([3, 2]);
    const grey = Array.from({ length: 6 }, (_, i) => img.data[4 * i]);
    expect(grey).toEqual([0, 0, 128, 255, 255, 0]); // 50 HU: 175 / 350 * 255 = 127.5, rounded by the clamped array
    for (let i = 0; i < 6; i++) {
      expect(img.data[4 * i + 1]).toBe(grey[i]);
      expect(img.data[4 * i + 2]).toBe(grey[i]);
      expect(img.data[4 * i + 3]).toBe(255);
    }
  });
});
