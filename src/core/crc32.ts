/** CRC-32 (the polynomial of zip, PNG and gzip), for the PNG encoder (synth/png.ts) and PyTorch's zip (torch/zip.ts). Pure. */

let table: Uint32Array | null = null;

/** CRC-32 of `bytes`, continued from `crc` (0 to start). */
export function crc32(bytes: Uint8Array, crc = 0): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  const t = table;
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
