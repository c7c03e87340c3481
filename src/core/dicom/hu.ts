/**
 * Stored pixel values to Hounsfield units, pixel padding, and window/level. Pure: typed arrays in,
 * typed arrays out, no I/O.
 *
 * HU = stored x RescaleSlope + RescaleIntercept (the modality LUT of CT). "Stored" means the value
 * of the BitsStored low bits of each BitsAllocated container, sign-extended when
 * PixelRepresentation is 1; bits above BitsStored (overlays in old files, or noise) are ignored.
 * Pixel padding (PixelPaddingValue, optionally a range up to PixelPaddingRangeLimit) is compared
 * with stored values before rescaling and reported as a separate mask: padded pixels are not
 * tissue and never get an HU value that could pass for one (their HU slot is set to NaN).
 */

/** The numeric arrays a decoder hands out. */
export type PixelArray = Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | Float32Array | Float64Array;

/** What the stored-to-HU conversion needs from the header. */
export interface RescaleParams {
  /** Bits per container (8, 16, 32). */
  bitsAllocated: number;
  /** Meaningful low bits of each container; defaults to bitsAllocated. */
  bitsStored?: number | null;
  /** True when PixelRepresentation is 1 (two's complement). */
  signed: boolean;
  rescaleSlope: number;
  rescaleIntercept: number;
  /** PixelPaddingValue (0028,0120), in stored-value space. */
  pixelPaddingValue?: number | null;
  /** PixelPaddingRangeLimit (0028,0121): padding is every stored value between it and PixelPaddingValue, inclusive. */
  pixelPaddingRangeLimit?: number | null;
  /** Set for float pixel data (7FE0,0008 / 0009): values are used as they are, no masking. */
  floatingPoint?: boolean;
}

export interface HUResult {
  /** Hounsfield units per pixel; NaN where `padding` is 1. */
  hu: Float32Array;
  /** 1 where the pixel is padding, 0 elsewhere; null when the object declares no padding. */
  padding: Uint8Array | null;
  /** Number of padded pixels. */
  paddingCount: number;
}

function assertParams(p: RescaleParams): void {
  if (!Number.isFinite(p.rescaleSlope) || p.rescaleSlope === 0) throw new Error(`rescaleSlope must be a finite non-zero number, got ${p.rescaleSlope}`);
  if (!Number.isFinite(p.rescaleIntercept)) throw new Error(`rescaleIntercept must be finite, got ${p.rescaleIntercept}`);
  if (p.floatingPoint) return;
  const ba = p.bitsAllocated;
  if (![1, 8, 16, 32].includes(ba)) throw new Error(`bitsAllocated must be 1, 8, 16 or 32, got ${ba}`);
  const bs = p.bitsStored ?? ba;
  if (!Number.isInteger(bs) || bs < 1 || bs > ba) throw new Error(`bitsStored must be an integer in 1..bitsAllocated (${ba}), got ${bs}`);
}

/**
 * Returns a function that turns one container value (as a decoder delivers it, signed or not)
 * into the stored value: the low `bitsStored` bits, sign-extended when `signed`.
 */
export function storedValueFn(bitsStored: number, signed: boolean): (v: number) => number {
  if (bitsStored >= 32) return signed ? (v) => v | 0 : (v) => v >>> 0;
  const shift = 32 - bitsStored;
  // Shifting left then right (arithmetic for signed, logical for unsigned) keeps the low bits and
  // sign-extends from bit bitsStored-1; it works whatever the container's own sign was.
  return signed ? (v) => (v << shift) >> shift : (v) => (v << shift) >>> shift;
}

/** Range [lo, hi] of stored values for the given bits. */
export function storedRange(bitsStored: number, signed: boolean): [number, number] {
  return signed ? [-(2 ** (bitsStored - 1)), 2 ** (bitsStored - 1) - 1] : [0, 2 ** bitsStored - 1];
}

/**
 * Masks (unsigned) or sign-extends (signed) every value in place so that it holds the stored value.
 * A no-op when bitsStored equals the container width and the array type already has the right sign.
 */
export function normalizeStored<T extends PixelArray>(values: T, bitsStored: number, signed: boolean): T {
  if (values instanceof Float32Array || values instanceof Float64Array) return values;
  const bytes = values.BYTES_PER_ELEMENT * 8;
  const typeSigned = values instanceof Int8Array || values instanceof Int16Array || values instanceof Int32Array;
  if (bitsStored >= bytes && typeSigned === signed) return values;
  const f = storedValueFn(bitsStored, signed);
  for (let i = 0; i < values.length; i++) values[i] = f(values[i]);
  return values;
}

/** The padding predicate over stored values, or null when the object declares no padding. */
export function paddingTest(p: Pick<RescaleParams, 'pixelPaddingValue' | 'pixelPaddingRangeLimit'>): ((stored: number) => boolean) | null {
  const v = p.pixelPaddingValue;
  if (v === null || v === undefined || !Number.isFinite(v)) return null;
  const limit = p.pixelPaddingRangeLimit;
  if (limit === null || limit === undefined || !Number.isFinite(limit) || limit === v) return (s) => s === v;
  const lo = Math.min(v, limit);
  const hi = Math.max(v, limit);
  return (s) => s >= lo && s <= hi;
}

/**
 * Converts stored (or container) values to HU with a separate padding mask.
 * `out` may be passed to reuse a buffer of the same length.
 */
export function storedToHU(values: ArrayLike<number>, p: RescaleParams, out?: Float32Array): HUResult {
  assertParams(p);
  const n = values.length;
  const hu = out ?? new Float32Array(n);
  if (hu.length !== n) throw new Error(`out has ${hu.length} elements, expected ${n}`);
  const slope = p.rescaleSlope;
  const intercept = p.rescaleIntercept;
  const isPad = p.floatingPoint ? null : paddingTest(p);
  const stored = p.floatingPoint ? (v: number) => v : storedValueFn(p.bitsStored ?? p.bitsAllocated, p.signed);
  let padding: Uint8Array | null = null;
  let paddingCount = 0;
  if (isPad) {
    padding = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const s = stored(values[i]);
      if (isPad(s)) {
        padding[i] = 1;
        paddingCount++;
        hu[i] = NaN;
      } else hu[i] = s * slope + intercept;
    }
  } else {
    for (let i = 0; i < n; i++) hu[i] = stored(values[i]) * slope + intercept;
  }
  return { hu, padding, paddingCount };
}

/** One stored value to HU (no padding check). */
export function huOf(stored: number, slope: number, intercept: number): number {
  return stored * slope + intercept;
}

/** A window as level (center) and width, both in HU. */
export interface Window {
  level: number;
  width: number;
}

export interface WindowPreset extends Window {
  id: 'softTissue' | 'lung' | 'bone';
  label: string;
}

/** The window presets of the viewer and of exports (HU). */
export const WINDOW_PRESETS: readonly WindowPreset[] = Object.freeze([
  Object.freeze({ id: 'softTissue', label: 'Soft tissue', level: 50, width: 350 } as const),
  Object.freeze({ id: 'lung', label: 'Lung', level: -600, width: 1500 } as const),
  Object.freeze({ id: 'bone', label: 'Bone', level: 400, width: 1800 } as const),
]);

/**
 * Maps an HU value through a linear window to [0, 1]: level - width/2 maps to 0, level + width/2
 * to 1, values outside are clipped. NaN (padding) maps to 0. Width must be positive.
 */
export function windowToUnit(hu: number, level: number, width: number): number {
  if (!(width > 0)) throw new Error(`window width must be > 0, got ${width}`);
  if (Number.isNaN(hu)) return 0;
  const t = (hu - (level - width / 2)) / width;
  return t <= 0 ? 0 : t >= 1 ? 1 : t;
}

/** Windows a whole plane of HU to 8-bit grey levels (0..255). Padding (NaN) becomes 0. */
export function windowToBytes(hu: ArrayLike<number>, level: number, width: number, out?: Uint8Array): Uint8Array {
  if (!(width > 0)) throw new Error(`window width must be > 0, got ${width}`);
  const res = out ?? new Uint8Array(hu.length);
  const lo = level - width / 2;
  const scale = 255 / width;
  for (let i = 0; i < hu.length; i++) {
    const v = hu[i];
    const t = (v - lo) * scale;
    // NaN fails both comparisons and lands on 0 via the `|| 0`.
    res[i] = t <= 0 ? 0 : t >= 255 ? 255 : Math.round(t) || 0;
  }
  return res;
}
