/**
 * Reads the viewer's wire form (src/shared/slice-packing.ts) back into one Int16Array of HU, the
 * same voxels `viewer.slices` gives. Pure apart from the `inflate` it is handed (the browser's
 * DecompressionStream in the worker, node:zlib in tests); runs in the volume worker, or on the main
 * thread where no worker can start.
 */
import { delta8DecodeSlice, deltaDecodeInPlace } from '../../../shared/slice-packing';
import type { PackedSlices } from '../../../shared/types';

/** Inflates one raw-DEFLATE stream (RFC 1951). */
export type Inflate = (bytes: Uint8Array) => Promise<Uint8Array>;

/** The browser's own inflater (Chromium, Firefox, Safari 16.4+). */
export const browserInflate: Inflate = async (bytes) => {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
};

/**
 * The slices' HU voxels, written into `out` when given (count x width x height voxels, e.g. their
 * place in a shared volume) or into a new Int16Array.
 */
export async function unpackSlices(p: PackedSlices, inflate: Inflate, into?: Int16Array): Promise<Int16Array> {
  const plane = p.width * p.height;
  if (!Number.isInteger(plane) || plane <= 0) throw new Error(`packed slices ${p.start}..: bad size ${p.width} x ${p.height}`);
  if (p.sizes.length !== p.count) throw new Error(`packed slices ${p.start}..: ${p.sizes.length} sizes for ${p.count} slices`);
  const total = p.sizes.reduce((a, b) => a + b, 0);
  if (total !== p.bytes.length) throw new Error(`packed slices ${p.start}..: sizes add up to ${total} bytes, the message has ${p.bytes.length}`);
  if (into && into.length !== plane * p.count) throw new Error(`packed slices ${p.start}..: room for ${into.length} voxels, the slices have ${plane * p.count}`);
  const out = into ?? new Int16Array(plane * p.count);
  if (p.encoding === 'int16') {
    if (total !== out.byteLength) throw new Error(`packed slices ${p.start}..: ${total} bytes for ${p.count} slices of ${plane} voxels`);
    new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(p.bytes);
    return out;
  }
  if (p.encoding === 'delta8') {
    let at = 0;
    p.sizes.forEach((n, k) => {
      try {
        delta8DecodeSlice(p.bytes.subarray(at, at + n), out.subarray(k * plane, (k + 1) * plane));
      } catch (err) {
        throw new Error(`packed slice ${p.start + k}: ${(err as Error).message}`);
      }
      at += n;
    });
    return out;
  }
  let o = 0;
  const parts = p.sizes.map((n) => {
    const part = p.bytes.subarray(o, o + n);
    o += n;
    return part;
  });
  const inflated = await Promise.all(parts.map((b) => inflate(b)));
  inflated.forEach((raw, k) => {
    if (raw.byteLength !== plane * 2) throw new Error(`packed slice ${p.start + k} inflates to ${raw.byteLength} bytes, expected ${plane * 2}`);
    const d = new Int16Array(out.buffer, out.byteOffset + k * plane * 2, plane);
    new Uint8Array(out.buffer, out.byteOffset + k * plane * 2, plane * 2).set(raw);
    deltaDecodeInPlace(d);
  });
  return out;
}
