/**
 * Predicted masks back onto the image they came from, pure: the inverse of the model input's
 * geometry (src/core/ssl/preprocess.ts resizeSquare: the display slice centred on a square of its
 * longer side, then resized to size x size with pixel centres aligned), and the inverse of the
 * display transform (src/core/dicom/geometry.ts toDisplay), so that a mask lands on stored pixels
 * for DICOM SEG and NIfTI.
 */
import type { DisplayTransform } from '../dicom/geometry';

/**
 * A size x size probability map (model space) sampled bilinearly at the centre of each pixel of
 * the width x height display slice, thresholded at `threshold` (>=).
 */
export function modelMaskToDisplay(prob: ArrayLike<number>, size: number, width: number, height: number, threshold = 0.5): Uint8Array {
  const side = Math.max(width, height);
  const ox = (side - width) / 2;
  const oy = (side - height) / 2;
  const scale = side / size;
  const out = new Uint8Array(width * height);
  const clamp = (v: number) => Math.min(Math.max(v, 0), size - 1);
  for (let y = 0; y < height; y++) {
    const fy = clamp((y + oy + 0.5) / scale - 0.5);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, size - 1);
    const wy = fy - y0;
    for (let x = 0; x < width; x++) {
      const fx = clamp((x + ox + 0.5) / scale - 0.5);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, size - 1);
      const wx = fx - x0;
      const top = prob[y0 * size + x0] * (1 - wx) + prob[y0 * size + x1] * wx;
      const bottom = prob[y1 * size + x0] * (1 - wx) + prob[y1 * size + x1] * wx;
      out[y * width + x] = top * (1 - wy) + bottom * wy >= threshold ? 1 : 0;
    }
  }
  return out;
}

/** The inverse of toDisplay: a display plane (width x height) back to stored rows x cols. */
export function fromDisplay(src: Uint8Array, rows: number, cols: number, t: Pick<DisplayTransform, 'transpose' | 'flipX' | 'flipY'>): Uint8Array {
  const width = t.transpose ? rows : cols;
  const height = t.transpose ? cols : rows;
  if (src.length !== width * height) throw new Error(`a display mask of ${src.length} values for a ${width} x ${height} slice`);
  const out = new Uint8Array(rows * cols);
  for (let y = 0; y < height; y++) {
    const sy = t.flipY ? height - 1 - y : y;
    for (let x = 0; x < width; x++) {
      const sx = t.flipX ? width - 1 - x : x;
      out[t.transpose ? sx * cols + sy : sy * cols + sx] = src[y * width + x];
    }
  }
  return out;
}
