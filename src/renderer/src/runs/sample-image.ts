/**
 * Float32 images in [0, 1] (the trainer's samples) as RGBA pixels: grey for input, output and
 * target; the absolute difference |output - target| on a fixed scale so that pictures from
 * different steps compare. Pure; unit-tested.
 */

/** Grey RGBA of a size x size image in [0, 1] (values outside are clamped). */
export function greyRgba(img: Float32Array, out: Uint8ClampedArray = new Uint8ClampedArray(img.length * 4)): Uint8ClampedArray {
  for (let i = 0; i < img.length; i++) {
    const v = img[i];
    const g = Number.isFinite(v) ? Math.round(Math.max(0, Math.min(1, v)) * 255) : 0;
    const o = i * 4;
    out[o] = g;
    out[o + 1] = g;
    out[o + 2] = g;
    out[o + 3] = 255;
  }
  return out;
}

/** |a - b| per pixel. */
export function absDiff(a: Float32Array, b: Float32Array): Float32Array {
  if (a.length !== b.length) throw new Error(`images differ in size: ${a.length} and ${b.length} pixels`);
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = Math.abs(a[i] - b[i]);
  return out;
}

/** Mean of |a - b| and its maximum. */
export function diffStats(d: Float32Array): { mean: number; max: number } {
  let s = 0;
  let m = 0;
  for (let i = 0; i < d.length; i++) {
    s += d[i];
    if (d[i] > m) m = d[i];
  }
  return { mean: d.length ? s / d.length : 0, max: m };
}

/** The difference as RGBA on a "hot" ramp (black -> red -> yellow -> white), `scale` mapping to white. */
export function diffRgba(d: Float32Array, scale = 0.5, out: Uint8ClampedArray = new Uint8ClampedArray(d.length * 4)): Uint8ClampedArray {
  for (let i = 0; i < d.length; i++) {
    const t = Math.max(0, Math.min(1, d[i] / scale)) * 3;
    const o = i * 4;
    out[o] = Math.round(Math.min(1, t) * 255);
    out[o + 1] = Math.round(Math.max(0, Math.min(1, t - 1)) * 255);
    out[o + 2] = Math.round(Math.max(0, Math.min(1, t - 2)) * 255);
    out[o + 3] = 255;
  }
  return out;
}

/** A classification task's class k by name ('90°'): the task's classes in src/shared/pretext-tasks.ts. */
export { className } from '../../../shared/pretext-tasks';
