/**
 * The viewer's compact lossless wire form of HU slices (`viewer.packed`), written by
 * src/host/viewer-blocks.ts and read in the renderer's volume worker:
 *
 * - 'int16': each slice's Int16 voxels as little-endian bytes, slice after slice.
 * - 'deflate': each slice on its own: the differences between consecutive voxels (row after row,
 *   the first against 0, modulo 2^16) as little-endian Int16, compressed with raw DEFLATE (RFC 1951,
 *   what the browser's DecompressionStream('deflate-raw') reads). CT rows are smooth, so the
 *   differences are small and compress about 2x where the raw values compress less.
 * - 'delta8': each slice on its own: the same differences, each that fits in -127..127 as one
 *   signed byte, any other as the byte -128 followed by the voxel's own value (Int16, little-endian).
 *   About as small as 'deflate' on CT (most differences fit a byte: 1.08 bytes a voxel on the
 *   benchmark's series) and read back by one plain loop, much faster than inflating.
 *
 * `sizes` of a PackedSlices gives each slice's byte length. Pure; little-endian machines only (the
 * typed arrays are used as they are), which every platform the app runs on is.
 */
export type SliceEncoding = 'int16' | 'deflate' | 'delta8';

export const SLICE_ENCODINGS = ['int16', 'deflate', 'delta8'] as const satisfies readonly SliceEncoding[];

/** Differences of consecutive voxels of one slice, as bytes ready to compress. */
export function deltaEncodeSlice(slice: Int16Array): Uint8Array {
  const d = new Int16Array(slice.length);
  let prev = 0;
  for (let i = 0; i < slice.length; i++) {
    const v = slice[i];
    d[i] = v - prev; // wraps modulo 2^16 on store
    prev = v;
  }
  return new Uint8Array(d.buffer);
}

/** Inverse of deltaEncodeSlice, in place: the running sum of the differences (modulo 2^16). */
export function deltaDecodeInPlace(d: Int16Array): Int16Array {
  let acc = 0;
  for (let i = 0; i < d.length; i++) {
    acc = (acc + d[i]) << 16 >> 16;
    d[i] = acc;
  }
  return d;
}

/** One slice in the 'delta8' form. */
export function delta8EncodeSlice(slice: Int16Array): Uint8Array {
  // At most 3 bytes a voxel; trimmed to what was written.
  const out = new Uint8Array(slice.length * 3);
  let o = 0;
  let prev = 0;
  for (let i = 0; i < slice.length; i++) {
    const v = slice[i];
    const d = v - prev;
    if (d >= -127 && d <= 127) {
      out[o++] = d & 0xff;
    } else {
      out[o++] = 0x80;
      out[o++] = v & 0xff;
      out[o++] = (v >> 8) & 0xff;
    }
    prev = v;
  }
  return out.slice(0, o);
}

/**
 * Reads one 'delta8' slice of `out.length` voxels from `bytes` into `out`; throws, naming what is
 * wrong, when the bytes end early or are left over (never reads or writes outside either).
 */
export function delta8DecodeSlice(bytes: Uint8Array, out: Int16Array): void {
  const n = out.length;
  const end = bytes.length;
  let o = 0;
  let acc = 0;
  for (let i = 0; i < n; i++) {
    if (o >= end) throw new Error(`delta8 slice: the bytes end at voxel ${i} of ${n}`);
    const b = bytes[o++];
    if (b !== 0x80) {
      acc = (acc + ((b << 24) >> 24)) << 16 >> 16;
    } else {
      if (o + 2 > end) throw new Error(`delta8 slice: the bytes end inside voxel ${i} of ${n}`);
      acc = ((bytes[o] | (bytes[o + 1] << 8)) << 16) >> 16;
      o += 2;
    }
    out[i] = acc;
  }
  if (o !== end) throw new Error(`delta8 slice: ${end - o} bytes left over after ${n} voxels`);
}
