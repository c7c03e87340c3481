/**
 * NumPy's `.npy` format (version 1.0), little-endian, C order: what `numpy.load` reads (also
 * memory-mapped) with no code of ours. A header `\x93NUMPY\x01\x00`, its length (uint16), a Python
 * dict literal padded with spaces to a multiple of 64 bytes and ending in a newline, then the data.
 */
export type NpyDtype = 'uint8' | 'int16' | 'int32' | 'float32';

const DESCR: Record<NpyDtype, string> = { uint8: '|u1', int16: '<i2', int32: '<i4', float32: '<f4' };
const BYTES: Record<NpyDtype, number> = { uint8: 1, int16: 2, int32: 4, float32: 4 };

export function npyItemBytes(dtype: NpyDtype): number {
  return BYTES[dtype];
}

/** The header of an array of `dtype` and `shape`; the data (C order) follows it. */
export function npyHeader(dtype: NpyDtype, shape: readonly number[]): Uint8Array {
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new Error(`npy: bad shape [${shape}]`);
  const dims = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '${DESCR[dtype]}', 'fortran_order': False, 'shape': ${dims}, }`;
  const pre = 10; // magic (6) + version (2) + header length (2)
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  dict = dict.padEnd(total - pre - 1, ' ') + '\n';
  if (dict.length > 0xffff) throw new Error('npy: header too long');
  const out = new Uint8Array(pre + dict.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, dict.length & 0xff, dict.length >> 8]);
  for (let i = 0; i < dict.length; i++) out[pre + i] = dict.charCodeAt(i);
  return out;
}

type Typed = Uint8Array | Int16Array | Int32Array | Float32Array;

/** A whole `.npy` file in memory (small arrays: batches, indexes). */
export function encodeNpy(dtype: NpyDtype, shape: readonly number[], data: Typed): Uint8Array {
  const n = shape.reduce((a, b) => a * b, 1);
  if (data.length !== n) throw new Error(`npy: ${data.length} values for shape [${shape}]`);
  if (data.BYTES_PER_ELEMENT !== BYTES[dtype]) throw new Error(`npy: data of ${data.BYTES_PER_ELEMENT}-byte items for dtype ${dtype}`);
  const h = npyHeader(dtype, shape);
  const out = new Uint8Array(h.length + data.byteLength);
  out.set(h);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), h.length);
  return out;
}
