/**
 * A minimal greyscale PNG encoder (8-bit, one IDAT, zlib via fflate) and CT windowing, for
 * previews of synthetic slices. Pure.
 */
import { zlibSync } from 'fflate';
import { crc32 } from '../crc32';

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** Encodes 8-bit grey pixels (row-major, width x height) as a PNG file. */
export function encodePngGray(pixels: Uint8Array, width: number, height: number): Uint8Array {
  if (pixels.length !== width * height) throw new Error(`pixels has ${pixels.length} values, expected ${width}x${height}`);
  const raw = new Uint8Array((width + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width + 1)] = 0;
    raw.set(pixels.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  }
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // greyscale
  const parts = [new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', zlibSync(raw, { level: 6 })), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Maps HU (stored + intercept) through a window (level, width) to 0..255. */
export function windowToGray(stored: Int16Array | Float32Array, level: number, width: number, intercept = -1024): Uint8Array {
  const out = new Uint8Array(stored.length);
  const lo = level - width / 2;
  for (let i = 0; i < stored.length; i++) {
    const v = ((stored[i] + intercept - lo) / width) * 255;
    out[i] = v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
  }
  return out;
}

export const WINDOWS = {
  softTissue: { level: 50, width: 350 },
  lung: { level: -600, width: 1500 },
  bone: { level: 400, width: 1800 },
} as const;
