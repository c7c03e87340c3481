import { describe, expect, it } from 'vitest';
import { fromDisplay, modelMaskToDisplay } from '../../../src/core/labels/mask-resample';
import { toDisplay } from '../../../src/core/dicom/geometry';
import { resizeSquare } from '../../../src/core/ssl/preprocess';

/** A disc of radius r at (cx, cy) on a width x height plane. */
function disc(width: number, height: number, cx: number, cy: number, r: number): Uint8Array {
  const m = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) if ((x - cx) ** 2 + (y - cy) ** 2 <= r * r) m[y * width + x] = 1;
  return m;
}

const iou = (a: Uint8Array, b: Uint8Array) => {
  let i = 0;
  let u = 0;
  for (let k = 0; k < a.length; k++) {
    i += a[k] & b[k];
    u += a[k] | b[k];
  }
  return i / u;
};

describe('predicted masks back on the slice', () => {
  it('undoes the model input geometry (centred square, resize) for square and non-square slices', () => {
    for (const [w, h, size] of [
      [512, 512, 64],
      [300, 200, 64],
      [90, 160, 128],
      [64, 64, 64],
    ]) {
      // An off-centre disc, so a mirrored or shifted inverse would miss it.
      const m = disc(w, h, w * 0.3, h * 0.65, Math.min(w, h) * 0.15);
      const model = resizeSquare(Float32Array.from(m), w, h, size, 0);
      const back = modelMaskToDisplay(model, size, w, h);
      expect(back).toHaveLength(w * h);
      expect(iou(back, m), `${w}x${h} via ${size}`).toBeGreaterThan(size >= Math.max(w, h) ? 0.999 : 0.85);
    }
  });

  it('thresholds at the given probability', () => {
    const p = new Float32Array(16 * 16).fill(0.3);
    expect(modelMaskToDisplay(p, 16, 32, 32).some((v) => v)).toBe(false);
    expect(modelMaskToDisplay(p, 16, 32, 32, 0.3).every((v) => v === 1)).toBe(true);
  });

  it('fromDisplay inverts toDisplay for all eight display transforms', () => {
    const rows = 5;
    const cols = 7;
    const src = Uint8Array.from({ length: rows * cols }, (_, i) => (i * 37) % 251);
    for (const transpose of [false, true])
      for (const flipX of [false, true])
        for (const flipY of [false, true]) {
          const t = { transpose, flipX, flipY };
          const disp = new Uint8Array(src.length);
          toDisplay(src, rows, cols, t, disp);
          expect(Array.from(fromDisplay(disp, rows, cols, t)), JSON.stringify(t)).toEqual(Array.from(src));
        }
    expect(() => fromDisplay(new Uint8Array(3), rows, cols, { transpose: false, flipX: false, flipY: false })).toThrow(/3 values for a 7 x 5 slice/);
  });
});
