import { describe, expect, it } from 'vitest';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { crc32 } from '../../src/core/crc32';
import { encodePngGray } from '../../src/core/synth/png';

describe('crc32 (the one CRC-32 of src/core: PNG chunks, PyTorch zip entries)', () => {
  it("agrees with zlib's, whole and continued", () => {
    const bytes = Uint8Array.from({ length: 4099 }, (_, i) => (i * 2654435761) >>> 24);
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(bytes)).toBe(zlibCrc32(bytes));
    expect(crc32(bytes.subarray(1000), crc32(bytes.subarray(0, 1000)))).toBe(zlibCrc32(bytes));
  });

  it("every chunk of an encoded PNG carries zlib's CRC of its type and data", () => {
    const png = encodePngGray(Uint8Array.from({ length: 12 * 7 }, (_, i) => i), 12, 7);
    const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
    const types: string[] = [];
    for (let at = 8; at < png.length; ) {
      const len = dv.getUint32(at);
      types.push(String.fromCharCode(...png.subarray(at + 4, at + 8)));
      expect(dv.getUint32(at + 8 + len)).toBe(zlibCrc32(png.subarray(at + 4, at + 8 + len)));
      at += 12 + len;
    }
    expect(types).toEqual(['IHDR', 'IDAT', 'IEND']);
  });
});
