/**
 * A hand-assembled WebAssembly SIMD kernel for the filter gradient of a convolution (NHWC),
 * used on the wasm and cpu tfjs backends instead of the "x^T correlated with dy^T" forward
 * convolution, which XNNPACK runs at ~15 GFLOPS because that convolution has only N (batch)
 * input channels per filter tap.
 *
 * dW[a, b, c, d] = sum_{n, i, j} xpad[n, i*s + a, j*s + b, c] * dy[n, i, j, d]
 *
 * Loop order: for each output row (n, i), for each tap (a, b), for each block of 4 input
 * channels x 8 output channels, the 4x8 block of dW is held in 8 SIMD registers while j runs
 * along the row: per j four splatting loads of x (one value into 4 lanes each), two 4-wide
 * loads of dy and 8 multiply-adds. A row of x (kh rows of the padded input) and of dy stay in L1.
 *
 * No compiler is involved: the module is emitted byte by byte below (WebAssembly 1.0 + SIMD128,
 * available in Node >= 16 and every Electron). Pure module: no Node or DOM APIs.
 */
import * as tf from '@tensorflow/tfjs';

// Minimal WebAssembly typings (the pure core is type-checked without DOM lib).
interface WasmMemory {
  buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmInstance {
  exports: { mem: WasmMemory; dw: (...args: number[]) => void };
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => WasmInstance;
  validate(bytes: Uint8Array): boolean;
}
const WA = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

// --- a tiny assembler ---------------------------------------------------------------------------

export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

export function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

export function str(s: string): number[] {
  return [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
}

export const I32 = 0x7f;
export const V128 = 0x7b;
export const op = {
  get: (i: number) => [0x20, ...uleb(i)],
  set: (i: number) => [0x21, ...uleb(i)],
  tee: (i: number) => [0x22, ...uleb(i)],
  i32: (v: number) => [0x41, ...sleb(v)],
  add: [0x6a],
  i32load: (offset: number) => [0x28, 2, ...uleb(offset)],
  mul: [0x6c],
  ltS: [0x48],
  loop: [0x03, 0x40],
  end: [0x0b],
  brIf: (d: number) => [0x0d, ...uleb(d)],
  v128load: (offset: number) => [0xfd, ...uleb(0), 2, ...uleb(offset)],
  v128store: (offset: number) => [0xfd, ...uleb(11), 2, ...uleb(offset)],
  load32splat: (offset: number) => [0xfd, ...uleb(9), 2, ...uleb(offset)],
  f32x4add: [0xfd, ...uleb(228)],
  f32x4sub: [0xfd, ...uleb(229)],
  f32x4neg: [0xfd, ...uleb(225)],
  f32x4mul: [0xfd, ...uleb(230)],
  v128zero: [0xfd, ...uleb(12), ...new Array<number>(16).fill(0)],
};

// parameters
const P = { xp: 0, dy: 1, out: 2, n: 3, hp: 4, wp: 5, ci: 6, oh: 7, ow: 8, co: 9, s: 10, kh: 11, kw: 12 };
const NPARAMS = 13;
// i32 locals
let next = NPARAMS;
const L = {
  nn: next++, i: next++, a: next++, b: next++, c0: next++, d0: next++, j: next++,
  dyRow: next++, xRow: next++, xBase: next++, outTap: next++, o: next++, xq: next++, dq: next++,
  xStep: next++, dyStep: next++,
};
const NI32 = next - NPARAMS;
const V = { acc: next, d0: next + 8, d1: next + 9, sv: next + 10 };
const NV128 = 11;

/** do { body } while (++counter < limit), counter starting at 0. */
export function forLoop(counter: number, limit: number[], body: number[]): number[] {
  return [...op.i32(0), ...op.set(counter), ...op.loop, ...body,
    ...op.get(counter), ...op.i32(1), ...op.add, ...op.tee(counter), ...limit, ...op.ltS, ...op.brIf(0), ...op.end];
}
/** do { body } while ((counter += step) < limit). */
export function forStep(counter: number, step: number, limit: number[], body: number[]): number[] {
  return [...op.i32(0), ...op.set(counter), ...op.loop, ...body,
    ...op.get(counter), ...op.i32(step), ...op.add, ...op.tee(counter), ...limit, ...op.ltS, ...op.brIf(0), ...op.end];
}

function buildModule(): Uint8Array {
  const g = op.get;
  // inner: along j
  const inner: number[] = [
    ...g(L.dq), ...op.v128load(0), ...op.set(V.d0),
    ...g(L.dq), ...op.v128load(16), ...op.set(V.d1),
  ];
  for (let r = 0; r < 4; r++) {
    // x[c0 + r] broadcast by a splatting load (vbroadcastss on x64): ~17 % faster than one load
    // and 4 lane shuffles, which compete with the multiplies and adds for the same ports
    inner.push(...g(L.xq), ...op.load32splat(4 * r), ...op.set(V.sv));
    for (let k = 0; k < 2; k++) {
      const acc = V.acc + r * 2 + k;
      inner.push(...g(acc), ...g(V.sv), ...g(k === 0 ? V.d0 : V.d1), ...op.f32x4mul, ...op.f32x4add, ...op.set(acc));
    }
  }
  inner.push(...g(L.xq), ...g(L.xStep), ...op.add, ...op.set(L.xq));
  inner.push(...g(L.dq), ...g(L.dyStep), ...op.add, ...op.set(L.dq));

  // block over (c0, d0): o = outTap + (c0*co + d0)*4
  const rowStride = [...g(P.co), ...op.i32(4), ...op.mul]; // bytes between dW rows (channels c)
  const loadAcc: number[] = [];
  const storeAcc: number[] = [];
  for (let r = 0; r < 4; r++) {
    for (let k = 0; k < 2; k++) {
      // address = o + r*co*4 (computed) ; offset k*16
      const addr = [...g(L.o), ...op.i32(r), ...rowStride, ...op.mul, ...op.add];
      loadAcc.push(...addr, ...op.v128load(k * 16), ...op.set(V.acc + r * 2 + k));
      storeAcc.push(...addr, ...g(V.acc + r * 2 + k), ...op.v128store(k * 16));
    }
  }
  const block: number[] = [
    // o = outTap + (c0*co + d0)*4
    ...g(L.outTap), ...g(L.c0), ...g(P.co), ...op.mul, ...g(L.d0), ...op.add, ...op.i32(4), ...op.mul, ...op.add, ...op.set(L.o),
    ...loadAcc,
    // xq = xBase + c0*4 ; dq = dyRow + d0*4
    ...g(L.xBase), ...g(L.c0), ...op.i32(4), ...op.mul, ...op.add, ...op.set(L.xq),
    ...g(L.dyRow), ...g(L.d0), ...op.i32(4), ...op.mul, ...op.add, ...op.set(L.dq),
    ...forLoop(L.j, g(P.ow), inner),
    ...storeAcc,
  ];
  const overD = forStep(L.d0, 8, g(P.co), block);
  const overC = forStep(L.c0, 4, g(P.ci), overD);
  const overB = forLoop(L.b, g(P.kw), [
    // xBase = xRow + b*ci*4 ; outTap = out + ((a*kw + b)*ci*co)*4
    ...g(L.xRow), ...g(L.b), ...g(P.ci), ...op.mul, ...op.i32(4), ...op.mul, ...op.add, ...op.set(L.xBase),
    ...g(P.out), ...g(L.a), ...g(P.kw), ...op.mul, ...g(L.b), ...op.add, ...g(P.ci), ...op.mul, ...g(P.co), ...op.mul, ...op.i32(4), ...op.mul, ...op.add, ...op.set(L.outTap),
    ...overC,
  ]);
  const overA = forLoop(L.a, g(P.kh), [
    // xRow = xp + ((nn*hp + i*s + a)*wp*ci)*4
    ...g(P.xp), ...g(L.nn), ...g(P.hp), ...op.mul, ...g(L.i), ...g(P.s), ...op.mul, ...op.add, ...g(L.a), ...op.add,
    ...g(P.wp), ...op.mul, ...g(P.ci), ...op.mul, ...op.i32(4), ...op.mul, ...op.add, ...op.set(L.xRow),
    ...overB,
  ]);
  const overI = forLoop(L.i, g(P.oh), [
    // dyRow = dy + ((nn*oh + i)*ow*co)*4
    ...g(P.dy), ...g(L.nn), ...g(P.oh), ...op.mul, ...g(L.i), ...op.add, ...g(P.ow), ...op.mul, ...g(P.co), ...op.mul, ...op.i32(4), ...op.mul, ...op.add, ...op.set(L.dyRow),
    ...overA,
  ]);
  const body: number[] = [
    // xStep = s*ci*4 ; dyStep = co*4
    ...g(P.s), ...g(P.ci), ...op.mul, ...op.i32(4), ...op.mul, ...op.set(L.xStep),
    ...g(P.co), ...op.i32(4), ...op.mul, ...op.set(L.dyStep),
    ...forLoop(L.nn, g(P.n), overI),
    ...op.end,
  ];
  const locals = [2, ...uleb(NI32), I32, ...uleb(NV128), V128];
  const func = [...locals, ...body];
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, ...uleb(NPARAMS), ...new Array<number>(NPARAMS).fill(I32), 0]),
    ...section(3, [1, 0]),
    ...section(5, [1, 0x00, ...uleb(1)]),
    ...section(7, [2, ...str('mem'), 0x02, 0, ...str('dw'), 0x00, 0]),
    ...section(10, [1, ...uleb(func.length), ...func]),
  ];
  return new Uint8Array(bytes);
}

let instance: WasmInstance | null | undefined;

function getInstance(): WasmInstance | null {
  if (instance !== undefined) return instance;
  instance = null;
  try {
    if (WA == null) return null;
    const bytes = buildModule();
    if (!WA.validate(bytes)) return null;
    instance = new WA.Instance(new WA.Module(bytes), {});
  } catch {
    instance = null;
  }
  return instance;
}

/**
 * The values of a float32 or int32 tensor without a copy where the backend allows it (the wasm
 * backend's heap view; `dataSync()` there copies into a new buffer), else `dataSync()`. The view is
 * valid until the backend next allocates: read it at once, never keep it.
 */
export function readValues(t: tf.Tensor): Float32Array | Int32Array {
  const be = tf.backend() as unknown as { typedArrayFromHeap?: (info: { shape: number[]; dtype: string; dataId: object }) => Float32Array | Int32Array };
  if (tf.getBackend() === 'wasm' && typeof be.typedArrayFromHeap === 'function' && (t.dtype === 'float32' || t.dtype === 'int32')) {
    return be.typedArrayFromHeap({ shape: t.shape, dtype: t.dtype, dataId: t.dataId });
  }
  return t.dataSync() as Float32Array | Int32Array;
}

/** True when the SIMD filter-gradient kernel can run here. */
export function wasmKernelAvailable(): boolean {
  return getInstance() != null;
}

let enabled = true;
/** Turns the kernel off/on (benchmarks, tests). */
export function setWasmKernelEnabled(on: boolean): void {
  enabled = on;
}

/**
 * Filter gradient of `conv2d(x, w, stride, symmetric pad)` with the SIMD kernel, or null when it
 * does not apply (disabled, no wasm SIMD, inC not a multiple of 4, outC not a multiple of 8).
 */
export function convFilterGradSimd(x: tf.Tensor4D, dy: tf.Tensor4D, stride: number, pad: number, kh: number, kw: number): tf.Tensor4D | null {
  if (!enabled) return null;
  const [n, h, w, ci] = x.shape;
  const [, oh, ow, co] = dy.shape;
  if (ci % 4 !== 0 || co % 8 !== 0) return null;
  const inst = getInstance();
  if (inst == null) return null;
  const hp = Math.max(h + 2 * pad, (oh - 1) * stride + kh);
  const wp = Math.max(w + 2 * pad, (ow - 1) * stride + kw);
  const xpLen = n * hp * wp * ci;
  const dyLen = n * oh * ow * co;
  const outLen = kh * kw * ci * co;
  const xpOff = 0;
  const dyOff = xpLen * 4;
  const outOff = dyOff + dyLen * 4;
  const need = outOff + outLen * 4;
  const mem = inst.exports.mem;
  if (need > 2 ** 31) return null; // keep well inside wasm32's 4 GiB; callers fall back
  if (mem.buffer.byteLength < need) {
    try {
      mem.grow(Math.ceil((need - mem.buffer.byteLength) / 65536));
    } catch {
      return null;
    }
  }
  const heap = new Float32Array(mem.buffer);
  const xv = readValues(x) as Float32Array;
  // padded copy of x, row by row
  heap.fill(0, 0, xpLen);
  const rowLen = w * ci;
  for (let b = 0; b < n; b++) {
    for (let r = 0; r < h; r++) {
      const pr = r + pad;
      if (pr >= hp) break;
      const src = (b * h + r) * rowLen;
      const dst = ((b * hp + pr) * wp + pad) * ci;
      heap.set(xv.subarray(src, src + Math.min(rowLen, (wp - pad) * ci)), dst);
    }
  }
  heap.set(readValues(dy) as Float32Array, dyOff / 4);
  heap.fill(0, outOff / 4, outOff / 4 + outLen);
  inst.exports.dw(xpOff, dyOff, outOff, n, hp, wp, ci, oh, ow, co, stride, kh, kw);
  const out = new Float32Array(mem.buffer, outOff, outLen).slice();
  return tf.tensor4d(out, [kh, kw, ci, co]);
}
