/**
 * From HU to model input, pure: soft-tissue window (level 50, width 350 by default, i.e. clip to
 * [-125, 225] HU), scaling to [0, 1] (the reproducible fixed map (HU - lo) / width, or the public
 * code's per-slice min-max), padding treated as air, a square bilinear resize, and optionally
 * 8-bit quantisation (the public code's slices).
 */
import { inputBits, type Recipe } from '../../shared/recipes';

export interface PreprocessSpec {
  level: number;
  width: number;
  /** Output side in pixels (square). */
  size: number;
  /** 'fixed': (HU - (level - width/2)) / width, clipped; 'minmax': per-slice min-max after clipping (public code). */
  scaling: 'fixed' | 'minmax';
  /** Quantise the [0, 1] result to 2^bits levels (the public code's 8-bit slices: the reference recipe); absent = none. */
  bits?: 8;
}

export const DEFAULT_PREPROCESS: PreprocessSpec = { level: 50, width: 350, size: 256, scaling: 'fixed' };

/**
 * How a run's slices become model input: its window, scaling and size, and for the reference
 * recipe the public code's 8-bit quantisation (src/shared/recipes.ts). Pretraining, eval-ssl, the
 * bias probe, prediction and the cluster job's shards read a run's slices through it.
 */
export function runPreprocessSpec(config: { windowLevel: number; windowWidth: number; scaling: 'fixed' | 'minmax'; recipe?: Recipe }, size: number): PreprocessSpec {
  const bits = inputBits(config);
  return { level: config.windowLevel, width: config.windowWidth, size, scaling: config.scaling, ...(bits !== null && { bits }) };
}

/** HU used for padding pixels (NaN in the HU buffers): air. */
export const PADDING_HU = -1024;

/** Windows HU (NaN = padding) to [0, 1]. */
export function windowUnit(hu: ArrayLike<number>, spec: Pick<PreprocessSpec, 'level' | 'width' | 'scaling'>): Float32Array {
  const lo = spec.level - spec.width / 2;
  const hi = spec.level + spec.width / 2;
  const out = new Float32Array(hu.length);
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < hu.length; i++) {
    let v = hu[i];
    if (Number.isNaN(v)) v = PADDING_HU;
    v = v < lo ? lo : v > hi ? hi : v;
    out[i] = v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (spec.scaling === 'minmax') {
    const range = max - min;
    for (let i = 0; i < out.length; i++) out[i] = range > 0 ? (out[i] - min) / range : 0;
  } else {
    for (let i = 0; i < out.length; i++) out[i] = (out[i] - lo) / spec.width;
  }
  return out;
}

/**
 * Bilinear resize of a width x height image to size x size, aligning pixel centres. A non-square
 * image is first centred on a square canvas of its longer side, filled with `fill`.
 */
export function resizeSquare(src: Float32Array, width: number, height: number, size: number, fill = 0): Float32Array {
  const side = Math.max(width, height);
  const ox = (side - width) / 2;
  const oy = (side - height) / 2;
  if (side === size && width === height) return src.slice();
  const out = new Float32Array(size * size);
  const scale = side / size;
  const k = Math.round(scale);
  if (width === height && k >= 2 && Math.abs(scale - k) < 1e-9) {
    // Integer downscale: average k x k blocks (no aliasing).
    const inv = 1 / (k * k);
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        let s = 0;
        for (let dy = 0; dy < k; dy++) {
          const row = (y * k + dy) * width + x * k;
          for (let dx = 0; dx < k; dx++) s += src[row + dx];
        }
        out[y * size + x] = s * inv;
      }
    return out;
  }
  const at = (x: number, y: number) => {
    const sx = x - ox;
    const sy = y - oy;
    if (sx < 0 || sy < 0 || sx > width - 1 || sy > height - 1) return fill;
    return src[sy * width + sx];
  };
  for (let y = 0; y < size; y++) {
    const fy = Math.min(Math.max((y + 0.5) * scale - 0.5, 0), side - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, side - 1);
    const wy = fy - y0;
    for (let x = 0; x < size; x++) {
      const fx = Math.min(Math.max((x + 0.5) * scale - 0.5, 0), side - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, side - 1);
      const wx = fx - x0;
      const top = at(x0, y0) * (1 - wx) + at(x1, y0) * wx;
      const bottom = at(x0, y1) * (1 - wx) + at(x1, y1) * wx;
      out[y * size + x] = top * (1 - wy) + bottom * wy;
    }
  }
  return out;
}

/** Rounds [0, 1] values to the nearest of 2^bits evenly spaced levels (k / (2^bits - 1)), in place. */
export function quantizeUnit(x: Float32Array, bits: number): Float32Array {
  const levels = 2 ** bits - 1;
  for (let i = 0; i < x.length; i++) x[i] = Math.round(Math.min(1, Math.max(0, x[i])) * levels) / levels;
  return x;
}

/** HU slice (display orientation, NaN padding) to the model's [0, 1] square input. */
export function preprocessSlice(hu: ArrayLike<number>, width: number, height: number, spec: PreprocessSpec): Float32Array {
  const out = resizeSquare(windowUnit(hu, spec), width, height, spec.size, 0);
  return spec.bits ? quantizeUnit(out, spec.bits) : out;
}
