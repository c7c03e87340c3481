/** A minimal .npy reader for the fixtures (little-endian float32 or int32, C order). */
import { readFileSync } from 'node:fs';

export function readNpy(path: string): { shape: number[]; data: Float32Array | Int32Array } {
  const b = readFileSync(path);
  if (b.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${path}: not a .npy file`);
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = b.toString('latin1', start, start + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)![1];
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${path}: Fortran order`);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)![1].split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const bytes = b.subarray(start + hlen);
  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  if (descr === '<f4') return { shape, data: new Float32Array(buf) };
  if (descr === '<i4') return { shape, data: new Int32Array(buf) };
  throw new Error(`${path}: dtype ${descr}`);
}
