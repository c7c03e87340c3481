/**
 * The viewer's wire form (src/shared/slice-packing.ts) read back by the renderer
 * (src/renderer/src/viewer/packed-slices.ts): lossless for every int16 value, including the
 * wrap-around of differences at the ends of the range, and a malformed message is refused with
 * what is wrong.
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { delta8EncodeSlice, deltaEncodeSlice } from '../../src/shared/slice-packing';
import type { PackedSlices } from '../../src/shared/types';
import { unpackSlices } from '../../src/renderer/src/viewer/packed-slices';

const inflate = async (b: Uint8Array) => new Uint8Array(inflateRawSync(b));

function pack(slices: Int16Array[], width: number, height: number, encoding: 'int16' | 'deflate' | 'delta8'): PackedSlices {
  const parts = slices.map((s) =>
    encoding === 'int16' ? new Uint8Array(s.buffer.slice(0)) : encoding === 'delta8' ? delta8EncodeSlice(s) : new Uint8Array(deflateRawSync(deltaEncodeSlice(s), { level: 1 })),
  );
  const bytes = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    bytes.set(p, o);
    o += p.length;
  }
  return { seriesId: 1, start: 5, count: slices.length, width, height, encoding, sizes: parts.map((p) => p.length), bytes };
}

function randomSlice(n: number, seed: number): Int16Array {
  const s = new Int16Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    s[i] = i % 97 === 0 ? (x & 1 ? 32767 : -32768) : ((x >>> 8) % 4096) - 1024;
  }
  return s;
}

describe('packed slices', () => {
  for (const encoding of ['int16', 'deflate', 'delta8'] as const) {
    it(`${encoding}: decodes to the same voxels, extremes included`, async () => {
      const w = 37;
      const h = 23;
      const slices = [randomSlice(w * h, 1), randomSlice(w * h, 2), new Int16Array(w * h).fill(-32768)];
      const out = await unpackSlices(pack(slices, w, h, encoding), inflate);
      expect(out.length).toBe(3 * w * h);
      slices.forEach((s, k) => expect(Array.from(out.subarray(k * w * h, (k + 1) * w * h))).toEqual(Array.from(s)));
    });
  }

  for (const encoding of ['int16', 'deflate', 'delta8'] as const) {
    it(`${encoding}: writes into the slices' place in a shared volume, and nowhere else`, async () => {
      const w = 8;
      const h = 5;
      const slices = [randomSlice(w * h, 4), randomSlice(w * h, 5)];
      const volume = new Int16Array(new SharedArrayBuffer(4 * w * h * 2)).fill(7);
      const place = volume.subarray(1 * w * h, 3 * w * h);
      expect(await unpackSlices(pack(slices, w, h, encoding), inflate, place)).toBe(place);
      expect(Array.from(volume.subarray(w * h, 2 * w * h))).toEqual(Array.from(slices[0]));
      expect(Array.from(volume.subarray(2 * w * h, 3 * w * h))).toEqual(Array.from(slices[1]));
      expect(volume.subarray(0, w * h).every((v) => v === 7) && volume.subarray(3 * w * h).every((v) => v === 7)).toBe(true);
      await expect(unpackSlices(pack(slices, w, h, encoding), inflate, volume.subarray(0, w * h))).rejects.toThrow(/room for 40 voxels, the slices have 80/);
    });
  }

  it('delta8: one byte for a small difference, three for a large one; bytes that end early or are left over are refused', async () => {
    const s = Int16Array.from([5, 7, 300, 299, -32768, 32767, 32767, 0, -127]);
    const b = delta8EncodeSlice(s);
    // 5, 2, [300], -1, [-32768], [32767], 0, [0]: 32767 - (-32768) wraps, so it is written whole.
    expect(b.length).toBe(1 + 1 + 3 + 1 + 3 + 3 + 1 + 3 + 1);
    const p = pack([s], 9, 1, 'delta8');
    expect(Array.from(await unpackSlices(p, inflate))).toEqual(Array.from(s));
    // Smooth data: one byte a voxel.
    const smooth = new Int16Array(4096).map((_, i) => Math.round(300 * Math.sin(i / 50)) - 400);
    expect(delta8EncodeSlice(smooth).length).toBe(4096 + 2); // the first voxel (-400) whole
    // Hostile: cut short, inside a whole value, bytes left over.
    await expect(unpackSlices({ ...p, bytes: p.bytes.subarray(0, 3), sizes: [3] }, inflate)).rejects.toThrow(/packed slice 5: delta8 slice: the bytes end inside voxel 2 of 9/);
    await expect(unpackSlices({ ...p, bytes: p.bytes.subarray(0, 2), sizes: [2] }, inflate)).rejects.toThrow(/the bytes end at voxel 2 of 9/);
    const extra = new Uint8Array(p.bytes.length + 2);
    extra.set(p.bytes);
    await expect(unpackSlices({ ...p, bytes: extra, sizes: [extra.length] }, inflate)).rejects.toThrow(/2 bytes left over after 9 voxels/);
  });

  it('deflate of row differences is smaller than of raw values on smooth data', () => {
    const w = 256;
    const s = new Int16Array(w * w);
    for (let y = 0; y < w; y++) for (let x = 0; x < w; x++) s[y * w + x] = Math.round(400 * Math.sin(x / 20) * Math.cos(y / 30)) - 500;
    const raw = deflateRawSync(new Uint8Array(s.buffer), { level: 1 }).length;
    const delta = deflateRawSync(deltaEncodeSlice(s), { level: 1 }).length;
    expect(delta).toBeLessThan(raw);
  });

  it('refuses sizes that do not add up, and slices that inflate to the wrong size', async () => {
    const p = pack([randomSlice(16, 3)], 4, 4, 'deflate');
    await expect(unpackSlices({ ...p, sizes: [p.bytes.length + 1] }, inflate)).rejects.toThrow(/sizes add up to/);
    await expect(unpackSlices({ ...p, width: 5 }, inflate)).rejects.toThrow(/inflates to 32 bytes, expected 40/);
    await expect(unpackSlices({ ...pack([randomSlice(16, 3)], 4, 4, 'int16'), height: 5 }, inflate)).rejects.toThrow(/32 bytes for 1 slices of 20 voxels/);
  });
});
