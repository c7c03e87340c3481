/**
 * Writes checkpoints in torch.save's zip format for hostile-input tests: a pickle (protocol 2) of
 * {'model_state': OrderedDict(key -> tensor)} with one float32 storage per tensor, and a stored zip
 * under `archive/`. What it writes is told explicitly (storage sizes, extra pickle bytes), so a
 * test can make each lie on purpose. The real torch-written files are in test/fixtures/torch.
 */
import { crc32 } from 'node:zlib'; // zlib's CRC-32, independent of the reader's (src/core/torch/zip.ts)

export interface FakeTensor {
  shape: number[];
  data?: Float32Array;
  /** Element count the pickle declares for the storage (default: the data's). */
  numel?: number;
  /** Bytes written for the storage (default: the data's). */
  bytes?: Uint8Array;
}

const enc = new TextEncoder();

export class PickleBytes {
  private parts: number[] = [];
  op(...b: number[]) {
    this.parts.push(...b);
    return this;
  }
  str(s: string) {
    const b = enc.encode(s);
    this.op(0x58, b.length & 0xff, (b.length >> 8) & 0xff, (b.length >> 16) & 0xff, b.length >>> 24, ...b);
    return this;
  }
  int(n: number) {
    if (n < 256) return this.op(0x4b, n);
    return this.op(0x4a, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff);
  }
  global(module: string, name: string) {
    return this.op(0x63, ...enc.encode(`${module}\n${name}\n`));
  }
  tuple(ns: number[]) {
    this.op(0x28);
    for (const n of ns) this.int(n);
    return this.op(0x74);
  }
  bytes() {
    return Uint8Array.from(this.parts);
  }
}

/** The pickle of {'epoch': 1, 'model_state': OrderedDict(...)}: storage i is tensor i. */
export function statePickle(tensors: [string, FakeTensor][]): Uint8Array {
  const p = new PickleBytes().op(0x80, 0x02, 0x7d).op(0x28).str('epoch').int(1).str('model_state');
  p.global('collections', 'OrderedDict').op(0x29, 0x52).op(0x28);
  tensors.forEach(([key, t], i) => {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const stride = t.shape.map((_, d) => t.shape.slice(d + 1).reduce((a, b) => a * b, 1));
    p.str(key).global('torch._utils', '_rebuild_tensor_v2').op(0x28);
    p.op(0x28).str('storage').global('torch', 'FloatStorage').str(String(i)).str('cpu').int(t.numel ?? n).op(0x74, 0x51);
    p.int(0).tuple(t.shape).tuple(stride).op(0x89).global('collections', 'OrderedDict').op(0x29, 0x52).op(0x74, 0x52);
  });
  return p.op(0x75, 0x75, 0x2e).bytes();
}

/** A stored zip of these entries (names as given), CRCs right unless `badCrc` names one. */
export function storedZip(entries: [string, Uint8Array][], o: { badCrc?: string } = {}): Uint8Array {
  const chunks: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let at = 0;
  for (const [name, data] of entries) {
    const nb = enc.encode(name);
    const crc = o.badCrc === name ? crc32(data) ^ 1 : crc32(data);
    const lh = new Uint8Array(30 + nb.length);
    const v = new DataView(lh.buffer);
    v.setUint32(0, 0x04034b50, true);
    v.setUint16(4, 20, true);
    v.setUint32(14, crc, true);
    v.setUint32(18, data.length, true);
    v.setUint32(22, data.length, true);
    v.setUint16(26, nb.length, true);
    lh.set(nb, 30);
    const ch = new Uint8Array(46 + nb.length);
    const c = new DataView(ch.buffer);
    c.setUint32(0, 0x02014b50, true);
    c.setUint16(4, 20, true);
    c.setUint16(6, 20, true);
    c.setUint32(16, crc, true);
    c.setUint32(20, data.length, true);
    c.setUint32(24, data.length, true);
    c.setUint16(28, nb.length, true);
    c.setUint32(42, at, true);
    ch.set(nb, 46);
    chunks.push(lh, data);
    central.push(ch);
    at += lh.length + data.length;
  }
  const cdSize = central.reduce((a, b) => a + b.length, 0);
  const end = new Uint8Array(22);
  const e = new DataView(end.buffer);
  e.setUint32(0, 0x06054b50, true);
  e.setUint16(8, entries.length, true);
  e.setUint16(10, entries.length, true);
  e.setUint32(12, cdSize, true);
  e.setUint32(16, at, true);
  const all = [...chunks, ...central, end];
  const out = new Uint8Array(all.reduce((a, b) => a + b.length, 0));
  let o2 = 0;
  for (const b of all) {
    out.set(b, o2);
    o2 += b.length;
  }
  return out;
}

/** A checkpoint file: `archive/data.pkl` (this pickle, or the state pickle), one storage per tensor, `archive/version`. */
export function fakeCheckpoint(tensors: [string, FakeTensor][], o: { pickle?: Uint8Array; badCrc?: string } = {}): Uint8Array {
  const entries: [string, Uint8Array][] = [['archive/data.pkl', o.pickle ?? statePickle(tensors)]];
  tensors.forEach(([, t], i) => {
    const data = t.data ?? new Float32Array(t.shape.reduce((a, b) => a * b, 1));
    entries.push([`archive/data/${i}`, t.bytes ?? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)]);
  });
  entries.push(['archive/version', enc.encode('3\n')]);
  return storedZip(entries, o);
}
