/**
 * 3x3 stride-1 pad-1 convolutions (NHWC) by Winograd F(2x2, 3x3) on the wasm backend: 2.25x
 * fewer multiplications than the direct convolution. Each 4x4 input tile d (stride 2) and each
 * filter g give a 2x2 output tile
 *
 *   y = A^T [ (G g G^T) (.) (B^T d B) ] A,
 *
 * so the convolution is 16 independent matrix products M_k = V_k U_k ([tiles, inC] x [inC, outC],
 * k over the 4x4 transformed positions), run by tf.matMul (XNNPACK), between an input transform
 * (V = B^T d B per tile and channel) and an output transform (A^T M A), both hand-assembled
 * WebAssembly SIMD (4 channels per vector) that read and write tfjs-backend-wasm's own heap: the
 * module imports the backend's WebAssembly.Memory, so no tensor is copied in or out. The filter
 * transform (G g G^T, a few thousand values) is a plain loop.
 *
 * Used for the forward convolution and, with the flipped and transposed filter, for the input
 * gradient (layers.ts). Not bit for bit the direct convolution (other sums in another order; the
 * transforms' coefficients are 0, +-1 and 0.5): within float32 rounding of it (tested against
 * tf.conv2d, test/core/ml/winograd.test.ts).
 *
 * Pure module: WebAssembly is reached through globalThis; no Node or DOM APIs.
 */
import * as tf from '@tensorflow/tfjs';
import { forLoop, forStep, op, readValues } from './wasm-kernels';
import { assembleModule, heapBackend, heapInstance, heapOffset, heapTensor } from './wasm-heap';
import type { WasmBackendLike, WasmFunction, WasmInstance, WasmMemory } from './wasm-heap';

const F32X4_ADD = op.f32x4add;
const F32X4_SUB = op.f32x4sub;

/**
 * The transform module for one geometry: `vin(xp, vtab, n, hp, th)` reads the zero-padded input
 * [n, hp, wp, ci] and writes V_k [n*th*tw, ci] to the 16 buffers whose byte offsets the int32
 * table at `vtab` holds; `vout(mtab, y, n, th)` reads M_k [n*th*tw, co] and writes y
 * [n, 2*th, 2*tw, co]. wp, ci, co, tw are baked in as constant offsets.
 */
function buildModule(ci: number, co: number, tw: number, shared: boolean): Uint8Array {
  const g = op.get;
  const s = op.set;
  const wp = 2 * tw + 2;
  const w = 2 * tw;
  /**
   * The loops shared by vout and gin, over an image [n, 2*th, w, co] (param `image`) by its 2x2
   * blocks: images, tile rows, tile columns, then 4-channel groups, running `inner` once per group
   * with L.q at the block's first pixel, L.cb the group's byte offset and L.mo advanced 16 bytes.
   */
  const overBlocks = (
    L: { nn: number; ty: number; tx: number; cb: number; mo: number; row: number; q: number },
    image: number,
    P: { n: number; th: number },
    inner: number[],
  ): number[] => {
    const overC = [...op.i32(0), ...s(L.cb), ...op.loop, ...inner, ...g(L.mo), ...op.i32(16), ...op.add, ...s(L.mo),
      ...g(L.cb), ...op.i32(16), ...op.add, ...op.tee(L.cb), ...op.i32(co * 4), ...op.ltS, ...op.brIf(0), ...op.end];
    const overX = forLoop(L.tx, op.i32(tw), [...g(L.row), ...g(L.tx), ...op.i32(8 * co), ...op.mul, ...op.add, ...s(L.q), ...overC]);
    const overY = forLoop(L.ty, g(P.th), [
      // row = image + ((nn*2*th + 2*ty) * w * co) * 4
      ...g(image), ...g(L.nn), ...g(P.th), ...op.mul, ...g(L.ty), ...op.add, ...op.i32(2), ...op.mul,
      ...op.i32(w * co * 4), ...op.mul, ...op.add, ...s(L.row),
      ...overX,
    ]);
    return forLoop(L.nn, g(P.n), overY);
  };
  // --- vin: params xp 0, vtab 1, n 2, hp 3, th 4
  const vin = (() => {
    const P = { xp: 0, vtab: 1, n: 2, hp: 3, th: 4 };
    let next = 5;
    const L = { nn: next++, ty: next++, tx: next++, cb: next++, vo: next++, row: next++, q: next++, qc: next++, p: next };
    next += 16;
    const ni32 = next - 5;
    const D = next; // 16 v128: d (reused for the transformed rows)
    const T = next + 16; // 16 v128
    const body: number[] = [];
    for (let k = 0; k < 16; k++) body.push(...g(P.vtab), ...op.i32load(4 * k), ...s(L.p + k));
    body.push(...op.i32(0), ...s(L.vo));
    // qc: this channel block's address in the tile's corner pixel; the 16 loads at constant offsets
    const inner: number[] = [...g(L.q), ...g(L.cb), ...op.add, ...s(L.qc)];
    for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) {
      inner.push(...g(L.qc), ...op.v128load(((r * wp + c) * ci) * 4), ...s(D + r * 4 + c));
    }
    // rows: t_rj = (d B)_rj along columns c
    for (let r = 0; r < 4; r++) {
      const d = (c: number) => g(D + r * 4 + c);
      const t = (c: number) => T + r * 4 + c;
      inner.push(...d(0), ...d(2), ...F32X4_SUB, ...s(t(0)));
      inner.push(...d(1), ...d(2), ...F32X4_ADD, ...s(t(1)));
      inner.push(...d(2), ...d(1), ...F32X4_SUB, ...s(t(2)));
      inner.push(...d(1), ...d(3), ...F32X4_SUB, ...s(t(3)));
    }
    // columns: u_ij = (B^T t)_ij, stored to V_(i*4+j) at vo
    const store = (k: number, a: number, b: number, sub: boolean) => [
      ...g(L.p + k), ...g(L.vo), ...op.add, ...g(T + a), ...g(T + b), ...(sub ? F32X4_SUB : F32X4_ADD), ...op.v128store(0)];
    for (let j = 0; j < 4; j++) {
      inner.push(...store(0 * 4 + j, 0 * 4 + j, 2 * 4 + j, true));
      inner.push(...store(1 * 4 + j, 1 * 4 + j, 2 * 4 + j, false));
      inner.push(...store(2 * 4 + j, 2 * 4 + j, 1 * 4 + j, true));
      inner.push(...store(3 * 4 + j, 1 * 4 + j, 3 * 4 + j, true));
    }
    inner.push(...g(L.vo), ...op.i32(16), ...op.add, ...s(L.vo));
    const overC = [...op.i32(0), ...s(L.cb), ...op.loop, ...inner,
      ...g(L.cb), ...op.i32(16), ...op.add, ...op.tee(L.cb), ...op.i32(ci * 4), ...op.ltS, ...op.brIf(0), ...op.end];
    const overX = forLoop(L.tx, op.i32(tw), [
      // q = row + tx * 2 * ci * 4
      ...g(L.row), ...g(L.tx), ...op.i32(8 * ci), ...op.mul, ...op.add, ...s(L.q),
      ...overC,
    ]);
    const overY = forLoop(L.ty, g(P.th), [
      // row = xp + ((nn*hp + 2*ty) * wp * ci) * 4
      ...g(P.xp), ...g(L.nn), ...g(P.hp), ...op.mul, ...g(L.ty), ...op.i32(2), ...op.mul, ...op.add,
      ...op.i32(wp * ci * 4), ...op.mul, ...op.add, ...s(L.row),
      ...overX,
    ]);
    body.push(...forLoop(L.nn, g(P.n), overY), ...op.end);
    return { nparams: 5, ni32, nv128: 32, body };
  })();
  // --- vout: params mtab 0, y 1, n 2, th 3
  const vout = (() => {
    const P = { mtab: 0, y: 1, n: 2, th: 3 };
    let next = 4;
    const L = { nn: next++, ty: next++, tx: next++, cb: next++, mo: next++, row: next++, q: next++, p: next };
    next += 16;
    const ni32 = next - 4;
    const M = next; // 16 v128
    const S = next + 16; // 8 v128
    const body: number[] = [];
    for (let k = 0; k < 16; k++) body.push(...g(P.mtab), ...op.i32load(4 * k), ...s(L.p + k));
    body.push(...op.i32(0), ...s(L.mo));
    const inner: number[] = [];
    for (let k = 0; k < 16; k++) inner.push(...g(L.p + k), ...g(L.mo), ...op.add, ...op.v128load(0), ...s(M + k));
    // rows: s_0j = m_0j + m_1j + m_2j ; s_1j = m_1j - m_2j - m_3j
    for (let j = 0; j < 4; j++) {
      const m = (i: number) => g(M + i * 4 + j);
      inner.push(...m(0), ...m(1), ...F32X4_ADD, ...m(2), ...F32X4_ADD, ...s(S + j));
      inner.push(...m(1), ...m(2), ...F32X4_SUB, ...m(3), ...F32X4_SUB, ...s(S + 4 + j));
    }
    // columns, stored at q + cb
    for (let a = 0; a < 2; a++) {
      const sv = (j: number) => g(S + a * 4 + j);
      const base = a * w * co * 4;
      inner.push(...g(L.q), ...g(L.cb), ...op.add, ...sv(0), ...sv(1), ...F32X4_ADD, ...sv(2), ...F32X4_ADD, ...op.v128store(base));
      inner.push(...g(L.q), ...g(L.cb), ...op.add, ...sv(1), ...sv(2), ...F32X4_SUB, ...sv(3), ...F32X4_SUB, ...op.v128store(base + co * 4));
    }
    body.push(...overBlocks(L, P.y, P, inner), ...op.end);
    return { nparams: 4, ni32, nv128: 24, body };
  })();
  const mm = mmFunction(ci, co);
  // --- gin: params dy 0, mtab 1, n 2, th 3: the output-gradient transform dM = A dY A^T of each
  // 2x2 block of dy [n, 2*th, 2*tw, co] into the 16 buffers dM_k [tiles, co] whose offsets mtab holds
  const gin = (() => {
    const P = { dy: 0, mtab: 1, n: 2, th: 3 };
    let next = 4;
    const L = { nn: next++, ty: next++, tx: next++, cb: next++, mo: next++, row: next++, q: next++, qc: next++, p: next };
    next += 16;
    const ni32 = next - 4;
    const Y = next; // 4 v128: the 2x2 block
    const E = next + 4; // 8 v128: E = A dY (4x2)
    const body: number[] = [];
    for (let k = 0; k < 16; k++) body.push(...g(P.mtab), ...op.i32load(4 * k), ...s(L.p + k));
    body.push(...op.i32(0), ...s(L.mo));
    const inner: number[] = [...g(L.q), ...g(L.cb), ...op.add, ...s(L.qc)];
    for (let a = 0; a < 2; a++) for (let b = 0; b < 2; b++) inner.push(...g(L.qc), ...op.v128load((a * w + b) * co * 4), ...s(Y + a * 2 + b));
    for (let b = 0; b < 2; b++) {
      const y = (a: number) => g(Y + a * 2 + b);
      inner.push(...y(0), ...s(E + 0 * 2 + b));
      inner.push(...y(0), ...y(1), ...F32X4_ADD, ...s(E + 1 * 2 + b));
      inner.push(...y(0), ...y(1), ...F32X4_SUB, ...s(E + 2 * 2 + b));
      inner.push(...y(1), ...op.f32x4neg, ...s(E + 3 * 2 + b));
    }
    const store = (k: number, val: number[]) => [...g(L.p + k), ...g(L.mo), ...op.add, ...val, ...op.v128store(0)];
    for (let i = 0; i < 4; i++) {
      const e = (b: number) => g(E + i * 2 + b);
      inner.push(...store(i * 4 + 0, e(0)));
      inner.push(...store(i * 4 + 1, [...e(0), ...e(1), ...F32X4_ADD]));
      inner.push(...store(i * 4 + 2, [...e(0), ...e(1), ...F32X4_SUB]));
      inner.push(...store(i * 4 + 3, [...e(1), ...op.f32x4neg]));
    }
    body.push(...overBlocks(L, P.dy, P, inner), ...op.end);
    return { nparams: 4, ni32, nv128: 12, body };
  })();
  const mmt = mmtFunction(ci, co);
  return assembleModule([vin, vout, mm, gin, mmt], ['vin', 'vout', 'mm', 'gin', 'mmt'],
    ['winograd_in', 'winograd_out', 'winograd_products', 'winograd_grad_in', 'winograd_filter_products'], shared);
}

/**
 * mm: params atab 0, btab 1, ctab 2, m 3: C_k [m, co] = A_k [m, ci] B_k [ci, co] for the `count`
 * k (16; 36 for F(4x4, 3x3), winograd-f43.ts), 4 rows x 8 columns of C in 8 registers, each A
 * value broadcast by a splatting load; m a multiple of 4, co of 8. Shared by the 3x3 module and
 * the 4x4 stride-2 one (winograd-s2.ts).
 */
export function mmFunction(ci: number, co: number, count = 16): WasmFunction {
  const g = op.get;
  const s = op.set;
  const P = { atab: 0, btab: 1, ctab: 2, m: 3 };
  let next = 4;
  const L = { k: next++, a: next++, b: next++, c: next++, i: next++, jb: next++, aRow: next++, cRow: next++, bj: next++, ak: next++, k2: next++ };
  const ni32 = next - 4;
  const ACC = next; // 8 v128
  const B0 = next + 8, B1 = next + 9, SV = next + 10;
  // the sum over ci as a loop: ak walks A's 4 rows along ci, bj B's rows. Not unrolled: V8's
  // code for 2, 4, 8 or 16 steps a pass (or the whole sum) was 1.4x-2.7x slower than for one
  // (3x3 64->64 on 8x32x32: 8.6 ms for the whole convolution against 11.7, 15, 20 and 23)
  const UNROLL = 1;
  const block: number[] = [...g(L.b), ...g(L.jb), ...op.add, ...s(L.bj), ...g(L.aRow), ...s(L.ak)];
  for (let h = 0; h < 8; h++) block.push(...op.v128zero, ...s(ACC + h));
  const step: number[] = [];
  for (let u = 0; u < UNROLL; u++) {
    step.push(...g(L.bj), ...op.v128load(u * co * 4), ...s(B0), ...g(L.bj), ...op.v128load(u * co * 4 + 16), ...s(B1));
    for (let r = 0; r < 4; r++) {
      step.push(...g(L.ak), ...op.load32splat((r * ci + u) * 4), ...s(SV));
      for (let h = 0; h < 2; h++) {
        const acc = ACC + r * 2 + h;
        step.push(...g(acc), ...g(SV), ...g(h === 0 ? B0 : B1), ...op.f32x4mul, ...F32X4_ADD, ...s(acc));
      }
    }
  }
  step.push(...g(L.ak), ...op.i32(4 * UNROLL), ...op.add, ...s(L.ak), ...g(L.bj), ...op.i32(co * 4 * UNROLL), ...op.add, ...s(L.bj));
  block.push(...forStep(L.k2, UNROLL, op.i32(ci), step));
  for (let r = 0; r < 4; r++) for (let h = 0; h < 2; h++) {
    block.push(...g(L.cRow), ...g(L.jb), ...op.add, ...g(ACC + r * 2 + h), ...op.v128store(r * co * 4 + h * 16));
  }
  const overJ = [...op.i32(0), ...s(L.jb), ...op.loop, ...block,
    ...g(L.jb), ...op.i32(32), ...op.add, ...op.tee(L.jb), ...op.i32(co * 4), ...op.ltS, ...op.brIf(0), ...op.end];
  const overI = [...op.i32(0), ...s(L.i), ...op.loop,
    ...g(L.a), ...g(L.i), ...op.i32(ci * 4), ...op.mul, ...op.add, ...s(L.aRow),
    ...g(L.c), ...g(L.i), ...op.i32(co * 4), ...op.mul, ...op.add, ...s(L.cRow),
    ...overJ,
    ...g(L.i), ...op.i32(4), ...op.add, ...op.tee(L.i), ...g(P.m), ...op.ltS, ...op.brIf(0), ...op.end];
  const overK = forLoop(L.k, op.i32(count), [
    ...g(P.atab), ...g(L.k), ...op.i32(4), ...op.mul, ...op.add, ...op.i32load(0), ...s(L.a),
    ...g(P.btab), ...g(L.k), ...op.i32(4), ...op.mul, ...op.add, ...op.i32load(0), ...s(L.b),
    ...g(P.ctab), ...g(L.k), ...op.i32(4), ...op.mul, ...op.add, ...op.i32load(0), ...s(L.c),
    ...overI,
  ]);
  return { nparams: 4, ni32, nv128: 11, body: [...overK, ...op.end] };
}

/**
 * mmt: params atab 0, btab 1, ctab 2, tiles 3, chunk 4: C_k [ci, co] += A_k^T B_k over the
 * tiles (A_k [tiles, ci], B_k [tiles, co]), chunk tiles at a time so their rows stay in L1 while
 * every 4 x 8 block of C_k sums them (tiles a multiple of chunk; C_k zeroed by the caller).
 * Shared by the 3x3 module and the 4x4 stride-2 one (winograd-s2.ts).
 */
export function mmtFunction(ci: number, co: number): WasmFunction {
  const g = op.get;
  const s = op.set;
  const P = { atab: 0, btab: 1, ctab: 2, tiles: 3, chunk: 4 };
  let next = 5;
  const L = { k: next++, a: next++, b: next++, c: next++, tc: next++, c0: next++, d0: next++, t: next++, o: next++, at: next++, bt: next++ };
  const ni32 = next - 5;
  const ACC = next, B0 = next + 8, B1 = next + 9, SV = next + 10;
  const loadAcc: number[] = [];
  const storeAcc: number[] = [];
  for (let r = 0; r < 4; r++) for (let h = 0; h < 2; h++) {
    loadAcc.push(...g(L.o), ...op.v128load(r * co * 4 + h * 16), ...s(ACC + r * 2 + h));
    storeAcc.push(...g(L.o), ...g(ACC + r * 2 + h), ...op.v128store(r * co * 4 + h * 16));
  }
  const step: number[] = [...g(L.bt), ...op.v128load(0), ...s(B0), ...g(L.bt), ...op.v128load(16), ...s(B1)];
  for (let r = 0; r < 4; r++) {
    step.push(...g(L.at), ...op.load32splat(r * 4), ...s(SV));
    for (let h = 0; h < 2; h++) {
      const acc = ACC + r * 2 + h;
      step.push(...g(acc), ...g(SV), ...g(h === 0 ? B0 : B1), ...op.f32x4mul, ...F32X4_ADD, ...s(acc));
    }
  }
  step.push(...g(L.at), ...op.i32(ci * 4), ...op.add, ...s(L.at), ...g(L.bt), ...op.i32(co * 4), ...op.add, ...s(L.bt));
  const block: number[] = [
    // o = c + (c0*co + d0)*4 ; at = a + (tc*ci + c0)*4 ; bt = b + (tc*co + d0)*4
    ...g(L.c), ...g(L.c0), ...op.i32(co), ...op.mul, ...g(L.d0), ...op.add, ...op.i32(4), ...op.mul, ...op.add, ...s(L.o),
    ...loadAcc,
    ...g(L.a), ...g(L.tc), ...op.i32(ci), ...op.mul, ...g(L.c0), ...op.add, ...op.i32(4), ...op.mul, ...op.add, ...s(L.at),
    ...g(L.b), ...g(L.tc), ...op.i32(co), ...op.mul, ...g(L.d0), ...op.add, ...op.i32(4), ...op.mul, ...op.add, ...s(L.bt),
    ...forLoop(L.t, g(P.chunk), step),
    ...storeAcc,
  ];
  const overD = forStep(L.d0, 8, op.i32(co), block);
  const overC = forStep(L.c0, 4, op.i32(ci), overD);
  const overT = [...op.i32(0), ...s(L.tc), ...op.loop, ...overC,
    ...g(L.tc), ...g(P.chunk), ...op.add, ...op.tee(L.tc), ...g(P.tiles), ...op.ltS, ...op.brIf(0), ...op.end];
  const overK = forLoop(L.k, op.i32(16), [
    ...g(P.atab), ...g(L.k), ...op.i32(4), ...op.mul, ...op.add, ...op.i32load(0), ...s(L.a),
    ...g(P.btab), ...g(L.k), ...op.i32(4), ...op.mul, ...op.add, ...op.i32load(0), ...s(L.b),
    ...g(P.ctab), ...g(L.k), ...op.i32(4), ...op.mul, ...op.add, ...op.i32load(0), ...s(L.c),
    ...overT,
  ]);
  return { nparams: 5, ni32, nv128: 11, body: [...overK, ...op.end] };
}

function getInstance(mem: WasmMemory, ci: number, co: number, tw: number): WasmInstance | null {
  return heapInstance(mem, `${ci}/${co}/${tw}`, (shared) => buildModule(ci, co, tw, shared));
}

let enabled = true;
let useOwnProducts = true;
/** Our SIMD matrix products (true) or tf.matMul (XNNPACK) for the 16 products (benchmarks, tests). */
export function setWinogradOwnProducts(on: boolean): void {
  useOwnProducts = on;
}
/** Turns the Winograd path off/on (benchmarks, tests). */
export function setWinogradEnabled(on: boolean): void {
  enabled = on;
}

/** The wasm backend and its memory when the Winograd path can run on it, else null. */
export function wasmBackend(): { be: WasmBackendLike; mem: WasmMemory } | null {
  return enabled ? heapBackend() : null;
}

/** True when {@link conv3x3Winograd} would run for these sizes on the current backend. */
export function winogradApplies(x: tf.Tensor4D, ci: number, co: number): boolean {
  const [, h, w] = x.shape;
  return h % 2 === 0 && w % 2 === 0 && ci % 4 === 0 && co % 4 === 0 && ci >= 32 && co >= 32 && wasmBackend() != null;
}

/**
 * The 16 transformed filters U_k = G g G^T [ci, co] of the 3x3 filter g applied by a convolution
 * from ci to co channels: w [3, 3, ci, co], or with `flip` w [3, 3, co, ci] and g = flipTranspose(w)
 * (the filter of the input gradient of a convolution by w).
 */
export function winogradFilters(wv: Float32Array, ci: number, co: number, flip: boolean): Float32Array[] {
  const u = Array.from({ length: 16 }, () => new Float32Array(ci * co));
  writeWinogradFilters(wv, ci, co, flip, u, new Array<number>(16).fill(0));
  return u;
}

/** {@link winogradFilters} written into `out[k]` from element `base[k]` on (the backend's heap, or one array each). */
function writeWinogradFilters(wv: Float32Array, ci: number, co: number, flip: boolean, out: Float32Array[], base: number[]): void {
  const rows = ci, cols = co;
  const gg = new Float32Array(9);
  const t = new Float32Array(12);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) {
    // g[a][b] of the filter being applied, as row r (its input channel) and column c (output)
    for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) {
      gg[a * 3 + b] = flip ? wv[((2 - a) * 3 + (2 - b)) * ci * co + c * ci + r] : wv[(a * 3 + b) * ci * co + r * co + c];
    }
    // t = G g (4x3)
    for (let b = 0; b < 3; b++) {
      const g0 = gg[b], g1 = gg[3 + b], g2 = gg[6 + b];
      t[b] = g0;
      t[3 + b] = 0.5 * (g0 + g1 + g2);
      t[6 + b] = 0.5 * (g0 - g1 + g2);
      t[9 + b] = g2;
    }
    // U = t G^T (4x4)
    const o = r * cols + c;
    for (let i = 0; i < 4; i++) {
      const t0 = t[i * 3], t1 = t[i * 3 + 1], t2 = t[i * 3 + 2];
      out[i * 4][base[i * 4] + o] = t0;
      out[i * 4 + 1][base[i * 4 + 1] + o] = 0.5 * (t0 + t1 + t2);
      out[i * 4 + 2][base[i * 4 + 2] + o] = 0.5 * (t0 - t1 + t2);
      out[i * 4 + 3][base[i * 4 + 3] + o] = t2;
    }
  }
}

/**
 * x [n, h, wd, ci] at element xo of the heap copied, zero-padded by 1 pixel on every side, to
 * [n, h + 2, wd + 2, ci] at element po (zeros written only where the copy does not write).
 */
export function writePadded(heap: Float32Array, xo: number, po: number, n: number, h: number, wd: number, ci: number): void {
  const hp = h + 2, wp = wd + 2;
  const row = wd * ci;
  for (let b = 0; b < n; b++) {
    // the first and last rows, each row's two end pixels
    const img = po + b * hp * wp * ci;
    heap.fill(0, img, img + (wp + 1) * ci);
    heap.fill(0, img + ((hp - 1) * wp - 1) * ci, img + hp * wp * ci);
    for (let r = 0; r < h; r++) {
      const src = xo + (b * h + r) * row;
      const dst = img + ((r + 1) * wp + 1) * ci;
      heap.copyWithin(dst, src, src + row);
      heap.fill(0, dst + row, dst + row + 2 * ci); // this row's right pixel and the next row's left
    }
  }
}

/** V_k [tiles, ci] (the 16 transformed input buffers) of x, and the int32 table of their offsets. */
function inputTransform(be: WasmBackendLike, mem: WasmMemory, inst: WasmInstance, x: tf.Tensor4D): { vs: tf.Tensor[]; vtab: tf.Tensor } {
  const [n, h, wd, ci] = x.shape;
  const hp = h + 2, wp = wd + 2;
  const tiles = n * (h / 2) * (wd / 2);
  // zero-padded copy of x inside the backend's heap
  const xp = heapTensor(be, [n, hp, wp, ci]);
  const vs = Array.from({ length: 16 }, () => heapTensor(be, [tiles, ci]));
  const vtab = tf.tensor1d(Int32Array.from(vs, (v) => heapOffset(be, v)), 'int32');
  writePadded(new Float32Array(mem.buffer), heapOffset(be, x) / 4, heapOffset(be, xp) / 4, n, h, wd, ci);
  inst.exports.vin(heapOffset(be, xp), heapOffset(be, vtab), n, hp, h / 2);
  xp.dispose();
  return { vs, vtab };
}

/**
 * conv2d(x, w, stride 1, pad 1) for a 3x3 filter w [3, 3, ci, co] (with `flip`: the filter is
 * flipTranspose(w) for w [3, 3, co, ci], the input gradient of a convolution by w), or null when
 * the Winograd path does not apply (see {@link winogradApplies}).
 */
export function conv3x3Winograd(x: tf.Tensor4D, w: tf.Tensor4D, flip = false): tf.Tensor4D | null {
  const ci = x.shape[3];
  const co = flip ? w.shape[2] : w.shape[3];
  if ((flip ? w.shape[3] : w.shape[2]) !== ci || w.shape[0] !== 3 || w.shape[1] !== 3) return null;
  if (!winogradApplies(x, ci, co)) return null;
  const { be, mem } = wasmBackend()!;
  const [n, h, wd] = x.shape;
  const th = h / 2, tw = wd / 2;
  const inst = getInstance(mem, ci, co, tw);
  if (inst == null) return null;
  return tf.tidy(() => {
    const tiles = n * th * tw;
    // the 16 transformed filters written straight into tensors in the heap (no arrays, no copies)
    const us = Array.from({ length: 16 }, () => heapTensor(be, [ci, co]));
    const heap = new Float32Array(mem.buffer); // after the allocations: the views stay valid
    writeWinogradFilters(readValues(w) as Float32Array, ci, co, flip, new Array<Float32Array>(16).fill(heap), us.map((u) => heapOffset(be, u) / 4));
    const { vs, vtab } = inputTransform(be, mem, inst, x);
    let ms: tf.Tensor[];
    if (useOwnProducts && tiles % 4 === 0 && co % 8 === 0 && ci % 4 === 0) {
      ms = vs.map(() => heapTensor(be, [tiles, co]));
      const utab = tf.tensor1d(Int32Array.from(us, (u) => heapOffset(be, u)), 'int32');
      const ctab = tf.tensor1d(Int32Array.from(ms, (m) => heapOffset(be, m)), 'int32');
      inst.exports.mm(heapOffset(be, vtab), heapOffset(be, utab), heapOffset(be, ctab), tiles);
    } else {
      ms = vs.map((v, k) => tf.matMul(v as tf.Tensor2D, us[k]));
    }
    const mtab = tf.tensor1d(Int32Array.from(ms, (m) => heapOffset(be, m)), 'int32');
    const y = heapTensor(be, [n, h, wd, co]) as tf.Tensor4D;
    inst.exports.vout(heapOffset(be, mtab), heapOffset(be, y), n, th);
    return y;
  });
}

/**
 * The filter gradient [3, 3, ci, co] of conv2d(x, w, stride 1, pad 1) for x [n, h, w, ci] and the
 * output gradient dy [n, h, w, co], by the same transform: dU_k = V_k^T dM_k summed over the tiles
 * (dM = A dY A^T of each 2x2 block of dy), then G^T dU G; or null where it does not apply (as
 * {@link winogradApplies}, and co a multiple of 8).
 */
export function filterGrad3x3Winograd(x: tf.Tensor4D, dy: tf.Tensor4D): tf.Tensor4D | null {
  const [n, h, wd, ci] = x.shape;
  const co = dy.shape[3];
  if (dy.shape[0] !== n || dy.shape[1] !== h || dy.shape[2] !== wd || co % 8 !== 0) return null;
  if (!winogradApplies(x, ci, co)) return null;
  const { be, mem } = wasmBackend()!;
  const th = h / 2, tw = wd / 2;
  const tiles = n * th * tw;
  const inst = getInstance(mem, ci, co, tw);
  if (inst == null) return null;
  let chunk = 32; // 32 tiles of A and B: 16 KB at 64 channels, in L1 (16-128 measured alike under load)
  while (tiles % chunk !== 0) chunk /= 2;
  const du = tf.tidy(() => {
    const { vs, vtab } = inputTransform(be, mem, inst, x);
    const ms = Array.from({ length: 16 }, () => heapTensor(be, [tiles, co]));
    const mtab = tf.tensor1d(Int32Array.from(ms, (m) => heapOffset(be, m)), 'int32');
    inst.exports.gin(heapOffset(be, dy), heapOffset(be, mtab), n, th);
    const cs = Array.from({ length: 16 }, () => heapTensor(be, [ci, co]));
    const ctab = tf.tensor1d(Int32Array.from(cs, (c) => heapOffset(be, c)), 'int32');
    const heap = new Float32Array(mem.buffer);
    for (const c of cs) heap.fill(0, heapOffset(be, c) / 4, heapOffset(be, c) / 4 + ci * co);
    inst.exports.mmt(heapOffset(be, vtab), heapOffset(be, mtab), heapOffset(be, ctab), tiles, chunk);
    // dg = G^T dU G per (c, o), read from the heap before any other allocation
    const base = cs.map((c) => heapOffset(be, c) / 4);
    const out = new Float32Array(9 * ci * co);
    const t = new Float32Array(12);
    const cc = ci * co;
    for (let e = 0; e < cc; e++) {
      for (let j = 0; j < 4; j++) {
        const u0 = heap[base[j] + e], u1 = heap[base[4 + j] + e], u2 = heap[base[8 + j] + e], u3 = heap[base[12 + j] + e];
        t[j] = u0 + 0.5 * (u1 + u2);
        t[4 + j] = 0.5 * (u1 - u2);
        t[8 + j] = 0.5 * (u1 + u2) + u3;
      }
      for (let a = 0; a < 3; a++) {
        const t0 = t[a * 4], t1 = t[a * 4 + 1], t2 = t[a * 4 + 2], t3 = t[a * 4 + 3];
        out[(a * 3) * cc + e] = t0 + 0.5 * (t1 + t2);
        out[(a * 3 + 1) * cc + e] = 0.5 * (t1 - t2);
        out[(a * 3 + 2) * cc + e] = 0.5 * (t1 + t2) + t3;
      }
    }
    return tf.tensor4d(out, [3, 3, ci, co]);
  });
  return du;
}
