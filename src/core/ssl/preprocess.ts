/**
 * From HU to model input, pure: soft-tissue window (level 50, width 350 by default, i.e. clip to
 * [-125, 225] HU), scaling to [0, 1] (the reproducible fixed map (HU - lo) / width, or the public
 * code's per-slice min-max), padding treated as air, a square bilinear resize, and optionally
 * 8-bit quantisation (the public code's slices).
 */
import { inputBits, type Recipe } from '../../shared/recipes';
import { toDisplay } from '../dicom/geometry';
import { paddingTest, storedToHU, storedValueFn, type PixelArray, type RescaleParams } from '../dicom/hu';

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

/** Stored pixels -> radiological display orientation (as src/core/dicom/geometry.ts toDisplay). */
export interface DisplayOrientation {
  transpose: boolean;
  flipX: boolean;
  flipY: boolean;
}

/**
 * Stored values of one greyscale frame (rows x columns, as decoded) to the model's [0, 1] square
 * input: HU by RescaleSlope/Intercept (padding as air), display orientation, window, resize,
 * quantisation. Bit for bit what preprocessSlice(toDisplay(storedToHU(values, p).hu)) gives.
 *
 * The pretraining pipeline's hot path (bench/pipeline.ts measures it): for 8- and 16-bit pixels, a
 * square image, the fixed scaling and a whole-block resize (512 -> 256 or 128 px; the same size),
 * each stored value is windowed through a table over every possible container value (the same
 * float32 roundings as storedToHU then windowUnit, computed once per rescale and window) and
 * summed straight into its output block in display order, so no HU, display or windowed image is
 * allocated. Anything else (float pixels, min-max scaling, non-square or bilinear resizes) takes
 * the three steps in turn. `out` (size x size), when given, receives the result.
 */
export function preprocessStored(values: PixelArray, rows: number, columns: number, p: RescaleParams, t: DisplayOrientation, spec: PreprocessSpec, out?: Float32Array): Float32Array {
  if (out && out.length !== spec.size * spec.size) throw new Error(`out has ${out.length} elements, expected ${spec.size * spec.size}`);
  const width = t.transpose ? rows : columns;
  const height = t.transpose ? columns : rows;
  const size = spec.size;
  const scale = width / size;
  const k = Math.round(scale);
  const lut = width === height && k >= 1 && Math.abs(scale - k) < 1e-9 && spec.scaling === 'fixed' && values.length === rows * columns ? windowTable(values, p, spec) : null;
  if (!lut) {
    const hu = storedToHU(values, p).hu;
    const disp = new Float32Array(hu.length);
    const d = toDisplay(hu, rows, columns, t, disp);
    const r = preprocessSlice(disp, d.width, d.height, spec);
    if (!out) return r;
    out.set(r);
    return out;
  }
  // Display (X, Y) is stored index base + X * sx + Y * sy (toDisplay's mapping).
  let base = 0;
  let sx: number;
  let sy: number;
  if (!t.transpose) {
    sx = t.flipX ? -1 : 1;
    sy = t.flipY ? -columns : columns;
    if (t.flipX) base += width - 1;
    if (t.flipY) base += (height - 1) * columns;
  } else {
    sx = t.flipX ? -columns : columns;
    sy = t.flipY ? -1 : 1;
    if (t.flipX) base += (width - 1) * columns;
    if (t.flipY) base += height - 1;
  }
  const res = blockMean(values, lut.table, lut.offset, base, sx, sy, size, k, out ?? new Float32Array(size * size));
  return spec.bits ? quantizeUnit(res, spec.bits) : res;
}

/**
 * out[y, x] = mean of table[v + offset] over the k x k display block starting at display (k x, k y),
 * summed row by row from 0 in double precision as resizeSquare sums (so the float32 results are
 * the same); k = 1, 2 and 4 (512 px to 512, 256, 128) unrolled.
 */
function blockMean(v: PixelArray, t: Float32Array, o: number, base: number, sx: number, sy: number, size: number, k: number, out: Float32Array): Float32Array {
  const bx = k * sx;
  const by = k * sy;
  if (k === 1) {
    for (let y = 0, j = 0; y < size; y++) for (let x = 0, r = base + y * by; x < size; x++, r += bx, j++) out[j] = t[v[r] + o];
  } else if (k === 2) {
    for (let y = 0, j = 0; y < size; y++)
      for (let x = 0, r = base + y * by; x < size; x++, r += bx, j++) {
        const r1 = r + sy;
        out[j] = (0 + t[v[r] + o] + t[v[r + sx] + o] + t[v[r1] + o] + t[v[r1 + sx] + o]) * 0.25;
      }
  } else if (k === 4) {
    const sx2 = 2 * sx;
    const sx3 = 3 * sx;
    for (let y = 0, j = 0; y < size; y++)
      for (let x = 0, r = base + y * by; x < size; x++, r += bx, j++) {
        let s = 0;
        for (let dy = 0, i = r; dy < 4; dy++, i += sy) s = s + t[v[i] + o] + t[v[i + sx] + o] + t[v[i + sx2] + o] + t[v[i + sx3] + o];
        out[j] = s * 0.0625;
      }
  } else {
    const inv = 1 / (k * k);
    for (let y = 0, j = 0; y < size; y++)
      for (let x = 0, r = base + y * by; x < size; x++, r += bx, j++) {
        let s = 0;
        for (let dy = 0, i = r; dy < k; dy++, i += sy) for (let dx = 0, q = i; dx < k; dx++, q += sx) s += t[v[q] + o];
        out[j] = s * inv;
      }
  }
  return out;
}

interface WindowTable {
  key: string;
  table: Float32Array;
  offset: number;
}
const tables: WindowTable[] = [];

/**
 * The windowed [0, 1] value of every container value of an 8- or 16-bit integer array (index:
 * value + offset), or null for other pixel types and invalid rescale parameters (the three-step
 * path then reports them). Each entry is computed as storedToHU then windowUnit compute it.
 * The last few tables are kept: a series shares one rescale, a run one window.
 */
function windowTable(values: PixelArray, p: RescaleParams, spec: PreprocessSpec): { table: Float32Array; offset: number } | null {
  const bits = values instanceof Int16Array || values instanceof Uint16Array ? 16 : values instanceof Int8Array || values instanceof Uint8Array ? 8 : 0;
  if (bits === 0 || p.floatingPoint || (p.bitsAllocated !== 8 && p.bitsAllocated !== 16)) return null;
  const bitsStored = p.bitsStored ?? p.bitsAllocated;
  if (!Number.isInteger(bitsStored) || bitsStored < 1 || bitsStored > p.bitsAllocated) return null;
  if (!Number.isFinite(p.rescaleSlope) || p.rescaleSlope === 0 || !Number.isFinite(p.rescaleIntercept)) return null;
  const typeSigned = values instanceof Int16Array || values instanceof Int8Array;
  const offset = typeSigned ? 2 ** (bits - 1) : 0;
  const key = [bits, offset, bitsStored, p.signed, p.rescaleSlope, p.rescaleIntercept, p.pixelPaddingValue, p.pixelPaddingRangeLimit, spec.level, spec.width].join('|');
  const hit = tables.find((x) => x.key === key);
  if (hit) return hit;
  const n = 2 ** bits;
  const hu = new Float32Array(n);
  const container = typeSigned ? (bits === 16 ? new Int16Array(n) : new Int8Array(n)) : bits === 16 ? new Uint16Array(n) : new Uint8Array(n);
  for (let i = 0; i < n; i++) container[i] = i - offset;
  const stored = storedValueFn(bitsStored, p.signed);
  const isPad = paddingTest(p);
  const slope = p.rescaleSlope;
  const intercept = p.rescaleIntercept;
  for (let i = 0; i < n; i++) {
    const s = stored(container[i]);
    hu[i] = isPad && isPad(s) ? NaN : s * slope + intercept;
  }
  const table = windowUnit(hu, spec);
  const entry = { key, table, offset };
  tables.unshift(entry);
  if (tables.length > 8) tables.pop();
  return entry;
}
