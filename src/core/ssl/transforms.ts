/**
 * The image transforms the pretext tasks are made of, pure, on square [0, 1] images (size x size,
 * row-major), every random choice from the Rng passed in.
 *
 * - masked region: one square set to 0. Two definitions (docs in ../shared/docs/reference-model.md):
 *   'area' (the paper: the square covers p% of the image area) and 'side' (the public code: the
 *   square's side is p% of the image side, and the bottom and right 100 px of a 512 image, scaled
 *   to the size, are never masked).
 * - salt-and-pepper noise on a fraction of pixels (half set to 1, half to 0).
 * - rotation by k x 90 degrees; flips.
 */
import type { Rng } from '../random';

export type MaskPercent = 5 | 10 | 20 | 33;
export type MaskDefinition = 'area' | 'side';

export interface MaskBox {
  x: number;
  y: number;
  side: number;
}

/** Side of the masked square, in pixels, for an image of `size`. */
export function maskSide(size: number, percent: number, definition: MaskDefinition): number {
  const f = percent / 100;
  // 'side' is the public code's int(): truncated (5 % of 512 is 25 px, 0.24 % of the area, not 26).
  return Math.max(1, definition === 'area' ? Math.round(Math.sqrt(f) * size) : Math.floor(f * size + 1e-9));
}

/** Where the square may go: the public code keeps it off the bottom and right 100 px (of 512). */
export function maskBox(size: number, percent: number, definition: MaskDefinition, rng: Rng): MaskBox {
  const side = maskSide(size, percent, definition);
  const margin = definition === 'side' ? Math.round((100 / 512) * size) : 0;
  const room = Math.max(0, size - margin - side);
  return { x: rng.int(room + 1), y: rng.int(room + 1), side };
}

export function applyMask(img: Float32Array, size: number, box: MaskBox): { input: Float32Array; mask: Float32Array } {
  const input = img.slice();
  const mask = new Float32Array(size * size);
  maskInPlace(input, mask, size, box);
  return { input, mask };
}

/** Sets the box to 0 in `input` (a copy of the slice) and to 1 in `mask` (zero-filled). */
export function maskInPlace(input: Float32Array, mask: Float32Array, size: number, box: MaskBox): void {
  for (let y = box.y; y < Math.min(size, box.y + box.side); y++)
    for (let x = box.x; x < Math.min(size, box.x + box.side); x++) {
      input[y * size + x] = 0;
      mask[y * size + x] = 1;
    }
}

/** Salt-and-pepper noise on `fraction` of the pixels: half of them set to 1, half to 0. */
export function saltAndPepper(img: Float32Array, fraction: number, rng: Rng): Float32Array {
  const out = img.slice();
  const n = img.length;
  const count = Math.round(fraction * n);
  // Choose `count` distinct pixels by a partial Fisher-Yates over indices.
  const idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  for (let i = 0; i < count; i++) {
    const j = i + rng.int(n - i);
    const t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
    out[idx[i]] = i < count / 2 ? 1 : 0;
  }
  return out;
}

/** Rotates counter-clockwise by k x 90 degrees. */
export function rotate90(img: Float32Array, size: number, k: number): Float32Array {
  const r = ((k % 4) + 4) % 4;
  if (r === 0) return img.slice();
  const out = new Float32Array(size * size);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const v = img[y * size + x];
      // counter-clockwise: (x, y) -> (y, size-1-x) for one turn
      if (r === 1) out[(size - 1 - x) * size + y] = v;
      else if (r === 2) out[(size - 1 - y) * size + (size - 1 - x)] = v;
      else out[x * size + (size - 1 - y)] = v;
    }
  return out;
}

/** 0: none, 1: horizontal (left-right), 2: vertical (up-down). */
export function flipImage(img: Float32Array, size: number, kind: number): Float32Array {
  if (kind === 0) return img.slice();
  const out = new Float32Array(size * size);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const sx = kind === 1 ? size - 1 - x : x;
      const sy = kind === 2 ? size - 1 - y : y;
      out[y * size + x] = img[sy * size + sx];
    }
  return out;
}
