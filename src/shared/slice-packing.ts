/**
 * The viewer's compact lossless wire form of HU slices (`viewer.packed`), written by
 * src/host/viewer-blocks.ts and read in the renderer's volume worker:
 *
 * - 'int16': each slice's Int16 voxels as little-endian bytes, slice after slice.
 * - 'deflate': each slice on its own: the differences between consecutive voxels (row after row,
 *   the first against 0, modulo 2^16) as little-endian Int16, compressed with raw DEFLATE (RFC 1951,
 *   what the browser's DecompressionStream('deflate-raw') reads). CT rows are smooth, so the
 *   differences are small and compress about 2x where the raw values compress less.
 *
 * `sizes` of a PackedSlices gives each slice's byte length. Pure; little-endian machines only (the
 * typed arrays are used as they are), which every platform the app runs on is.
 */
export type SliceEncoding = 'int16' | 'deflate';

export const SLICE_ENCODINGS: readonly SliceEncoding[] = ['int16', 'deflate'];

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
