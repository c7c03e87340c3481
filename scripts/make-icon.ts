/**
 * Draws the app icon (resources/icon.png, 1024 x 1024): an axial CT slice motif, in code, so the
 * icon has no external source. electron-builder derives .icns and .ico from it.
 * Run: node --import tsx scripts/make-icon.ts
 */
import { writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';

const S = 1024;
const rgba = new Uint8Array(S * S * 4);
const set = (x: number, y: number, r: number, g: number, b: number, a = 255) => {
  const i = (y * S + x) * 4;
  rgba[i] = r;
  rgba[i + 1] = g;
  rgba[i + 2] = b;
  rgba[i + 3] = a;
};
const c = S / 2;
for (let y = 0; y < S; y++)
  for (let x = 0; x < S; x++) {
    const dx = (x - c) / (S * 0.46);
    const dy = (y - c) / (S * 0.46);
    const r2 = dx * dx + dy * dy;
    // rounded-square tile
    const q = Math.max(Math.abs(x - c), Math.abs(y - c));
    if (q > S * 0.47) continue;
    let v = 24; // background
    const body = (dx / 0.95) ** 2 + (dy / 0.7) ** 2;
    if (body < 1) v = 150; // soft tissue
    const lungL = ((dx + 0.42) / 0.3) ** 2 + ((dy + 0.02) / 0.45) ** 2;
    const lungR = ((dx - 0.42) / 0.3) ** 2 + ((dy + 0.02) / 0.45) ** 2;
    if (lungL < 1 || lungR < 1) v = 40; // lungs
    if ((dx / 0.16) ** 2 + ((dy - 0.45) / 0.14) ** 2 < 1) v = 245; // vertebra
    if (((dx - 0.08) / 0.2) ** 2 + ((dy + 0.12) / 0.22) ** 2 < 1) v = 175; // heart
    const ring = Math.abs(Math.sqrt(r2) - 0.98) < 0.015;
    const [r, g, b] = ring ? [77, 163, 255] : [v * 0.8, v * 0.92, v];
    set(x, y, Math.round(r), Math.round(g), Math.round(b));
  }
// PNG (RGBA, filter 0)
const raw = new Uint8Array(S * (S * 4 + 1));
for (let y = 0; y < S; y++) raw.set(rgba.subarray(y * S * 4, (y + 1) * S * 4), y * (S * 4 + 1) + 1);
const crcTable = Array.from({ length: 256 }, (_, n) => {
  let k = n;
  for (let i = 0; i < 8; i++) k = k & 1 ? 0xedb88320 ^ (k >>> 1) : k >>> 1;
  return k >>> 0;
});
const crc = (b: Uint8Array) => {
  let k = 0xffffffff;
  for (const v of b) k = crcTable[(k ^ v) & 0xff] ^ (k >>> 8);
  return (k ^ 0xffffffff) >>> 0;
};
const chunk = (type: string, data: Uint8Array) => {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'ascii');
  Buffer.from(data).copy(out, 8);
  out.writeUInt32BE(crc(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
};
const ihdr = Buffer.alloc(13);
ihdr.writeUInt32BE(S, 0);
ihdr.writeUInt32BE(S, 4);
ihdr[8] = 8;
ihdr[9] = 6;
writeFileSync(
  new URL('../resources/icon.png', import.meta.url),
  Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw, { level: 9 })), chunk('IEND', new Uint8Array(0))]),
);
