/**
 * 3x3 stride-1 pad-1 convolutions (NHWC) by Winograd F(4x4, 3x3) on the wasm backend: each 6x6
 * input tile d (stride 4) and each filter g give a 4x4 output tile
 *
 *   y = A^T [ (G g G^T) (.) (B^T d B) ] A,
 *
 * 36 products [tiles, inC] x [inC, outC] per 4x4 output tile: 2.25 multiplications an output
 * against F(2x2, 3x3)'s 4 (winograd.ts), 1.78x fewer. Standard matrices (Lavin & Gray 2016,
 * points 0, +-1, +-2, inf):
 *
 *   B^T = [[4,0,-5,0,1,0],[0,-4,-4,1,1,0],[0,4,-4,-1,1,0],[0,-2,-1,2,1,0],[0,2,-1,-2,1,0],[0,4,0,-5,0,1]]
 *   G   = [[1/4,0,0],[-1/6,-1/6,-1/6],[-1/6,1/6,-1/6],[1/24,1/12,1/6],[1/24,-1/12,1/6],[0,0,1]]
 *   A^T = [[1,1,1,1,1,0],[0,1,-1,2,-2,0],[0,1,1,4,4,0],[0,1,-1,8,-8,1]]
 *
 * The products are winograd.ts' `mm` (36 of them); the input transform (B^T d B), the output
 * transform (A^T M A) and the filter transform (G g G^T, 4 channel pairs a vector, reading the
 * filter where it is; for the input gradient from its flipped, transposed copy) are hand-assembled
 * WebAssembly SIMD reading and writing tfjs-backend-wasm's heap. Used for the forward convolution
 * and, with the flipped and transposed filter, for the input gradient (layers.ts); sizes not a
 * multiple of 4 return null (callers take F(2x2, 3x3)). Less exact than F(2x2, 3x3) (coefficients up to 8 and 1/24): within
 * 1e-5 of the output's largest value at 64 channels (test/core/ml/winograd-f43.test.ts).
 *
 * Pure module: WebAssembly is reached through globalThis (wasm-heap.ts); no Node or DOM APIs.
 */
import * as tf from '@tensorflow/tfjs';
import { forLoop, op } from './wasm-kernels';
import { mmFunction, wasmBackend, writePadded } from './winograd';
import { assembleModule, heapInstance, heapOffset, heapTensor } from './wasm-heap';
import type { WasmFunction, WasmInstance, WasmMemory } from './wasm-heap';

const g = op.get;
const s = op.set;
const ADD = op.f32x4add;
const SUB = op.f32x4sub;
const MUL = op.f32x4mul;

/** v128 of four copies of the float32 `v` (f32.const, f32x4.splat). */
function splat(v: number): number[] {
  const b = new Uint8Array(new Float32Array([v]).buffer);
  return [0x43, ...b, 0xfd, 19];
}

/**
 * The six values of B^T d for d = d(0..5) (each the code pushing a v128), handed to `out(i, value)`;
 * C4 and C5 are locals holding splat(4) and splat(5), TA and TB two scratch locals.
 */
function bT(d: (i: number) => number[], out: (i: number, v: number[]) => number[], C4: number, C5: number, TA: number, TB: number): number[] {
  return [
    ...out(0, [...d(0), ...g(C4), ...MUL, ...d(4), ...ADD, ...d(2), ...g(C5), ...MUL, ...SUB]),
    ...d(4), ...d(2), ...g(C4), ...MUL, ...SUB, ...s(TA), // d4 - 4 d2
    ...d(3), ...d(1), ...g(C4), ...MUL, ...SUB, ...s(TB), // d3 - 4 d1
    ...out(1, [...g(TA), ...g(TB), ...ADD]),
    ...out(2, [...g(TA), ...g(TB), ...SUB]),
    ...d(4), ...d(2), ...SUB, ...s(TA), // d4 - d2
    ...d(3), ...d(1), ...SUB, ...op.tee(TB), ...g(TB), ...ADD, ...s(TB), // 2 (d3 - d1)
    ...out(3, [...g(TA), ...g(TB), ...ADD]),
    ...out(4, [...g(TA), ...g(TB), ...SUB]),
    ...out(5, [...d(1), ...g(C4), ...MUL, ...d(5), ...ADD, ...d(3), ...g(C5), ...MUL, ...SUB]),
  ];
}

/** The four values of A^T m for m = m(0..5), handed to `out(a, value)`; C4, C8 splat(4), splat(8). */
function aT(m: (i: number) => number[], out: (a: number, v: number[]) => number[], C4: number, C8: number, T: number): number[] {
  const [P, Q, R, S] = [T, T + 1, T + 2, T + 3];
  return [
    ...m(1), ...m(2), ...ADD, ...s(P),
    ...m(1), ...m(2), ...SUB, ...s(Q),
    ...m(3), ...m(4), ...ADD, ...s(R),
    ...m(3), ...m(4), ...SUB, ...s(S),
    ...out(0, [...m(0), ...g(P), ...ADD, ...g(R), ...ADD]),
    ...out(1, [...g(Q), ...g(S), ...g(S), ...ADD, ...ADD]),
    ...out(2, [...g(P), ...g(R), ...g(C4), ...MUL, ...ADD]),
    ...out(3, [...g(Q), ...g(S), ...g(C8), ...MUL, ...ADD, ...m(5), ...ADD]),
  ];
}

/**
 * The module for one geometry: vin(xp, vbase, n, hp, th) reads the zero-padded input
 * [n, hp, wp, ci] and writes V_k [tiles, ci] at vbase + k*vstride (bytes); vout(mbase, y, n, th)
 * reads M_k [tiles, co] at mbase + k*mstride and writes y [n, 4*th, 4*tw, co]; mm the 36
 * products. wp, ci, co, tw and tiles are baked in (the 36 buffers at constant offsets from one
 * pointer: no 36 address registers).
 */
function buildModule(ci: number, co: number, tw: number, tiles: number, shared: boolean): Uint8Array {
  const vstride = strideOf(tiles, ci), mstride = strideOf(tiles, co); // bytes between V_k (M_k) and V_k+1
  const wp = 4 * tw + 2;
  const w = 4 * tw;
  const vin = ((): WasmFunction => {
    const P = { xp: 0, vbase: 1, n: 2, hp: 3, th: 4 };
    let next = 5;
    const L = { nn: next++, ty: next++, tx: next++, cb: next++, vo: next++, row: next++, q: next++, qc: next++ };
    const ni32 = next - 5;
    const R = next; // 6 v128: one row of B^T d
    const C4 = R + 6, C5 = C4 + 1, TA = C4 + 2, TB = C4 + 3, X = C4 + 4;
    const body: number[] = [...splat(4), ...s(C4), ...splat(5), ...s(C5)];
    body.push(...g(P.vbase), ...s(L.vo));
    const inner: number[] = [...g(L.q), ...g(L.cb), ...op.add, ...s(L.qc)];
    // one row i of B^T d at a time (6 columns, reloading d from L1: few live registers), then its
    // B along the row, stored to V_(i*6+j) at vo
    for (let i = 0; i < 6; i++) {
      for (let c = 0; c < 6; c++) {
        const d = (r: number) => [...g(L.qc), ...op.v128load(((r * wp + c) * ci) * 4)];
        const twice = (a: number[], b: number[]) => [...a, ...b, ...SUB, ...op.tee(X), ...g(X), ...ADD];
        const v = [
          [...d(0), ...g(C4), ...MUL, ...d(4), ...ADD, ...d(2), ...g(C5), ...MUL, ...SUB],
          [...d(4), ...d(2), ...g(C4), ...MUL, ...SUB, ...d(3), ...d(1), ...g(C4), ...MUL, ...SUB, ...ADD],
          [...d(4), ...d(2), ...g(C4), ...MUL, ...SUB, ...d(3), ...d(1), ...g(C4), ...MUL, ...SUB, ...SUB],
          [...d(4), ...d(2), ...SUB, ...twice(d(3), d(1)), ...ADD],
          [...d(4), ...d(2), ...SUB, ...twice(d(3), d(1)), ...SUB],
          [...d(1), ...g(C4), ...MUL, ...d(5), ...ADD, ...d(3), ...g(C5), ...MUL, ...SUB],
        ][i];
        inner.push(...v, ...s(R + c));
      }
      inner.push(...bT((c) => g(R + c), (j, v) => [...g(L.vo), ...v, ...op.v128store((i * 6 + j) * vstride)], C4, C5, TA, TB));
    }
    inner.push(...g(L.vo), ...op.i32(16), ...op.add, ...s(L.vo));
    const overC = [...op.i32(0), ...s(L.cb), ...op.loop, ...inner,
      ...g(L.cb), ...op.i32(16), ...op.add, ...op.tee(L.cb), ...op.i32(ci * 4), ...op.ltS, ...op.brIf(0), ...op.end];
    // q = row + tx * 4 * ci * 4
    const overX = forLoop(L.tx, op.i32(tw), [...g(L.row), ...g(L.tx), ...op.i32(16 * ci), ...op.mul, ...op.add, ...s(L.q), ...overC]);
    const overY = forLoop(L.ty, g(P.th), [
      // row = xp + ((nn*hp + 4*ty) * wp * ci) * 4
      ...g(P.xp), ...g(L.nn), ...g(P.hp), ...op.mul, ...g(L.ty), ...op.i32(4), ...op.mul, ...op.add,
      ...op.i32(wp * ci * 4), ...op.mul, ...op.add, ...s(L.row),
      ...overX,
    ]);
    body.push(...forLoop(L.nn, g(P.n), overY), ...op.end);
    return { nparams: 5, ni32, nv128: 6 + 5, body };
  })();
  const vout = ((): WasmFunction => {
    const P = { mbase: 0, y: 1, n: 2, th: 3 };
    let next = 4;
    const L = { nn: next++, ty: next++, tx: next++, cb: next++, mo: next++, row: next++, q: next++, qc: next++ };
    const ni32 = next - 4;
    const M = next; // 6 v128: one column of M
    const S = M + 6; // 24 v128: A^T M (4x6)
    const C4 = S + 24, C8 = C4 + 1, T = C4 + 2; // T: 4 scratch
    const body: number[] = [...splat(4), ...s(C4), ...splat(8), ...s(C8)];
    body.push(...g(P.mbase), ...s(L.mo));
    const inner: number[] = [...g(L.q), ...g(L.cb), ...op.add, ...s(L.qc)];
    // columns j: S[a][j] = (A^T M)_aj
    for (let j = 0; j < 6; j++) {
      for (let i = 0; i < 6; i++) inner.push(...g(L.mo), ...op.v128load((i * 6 + j) * mstride), ...s(M + i));
      inner.push(...aT((i) => g(M + i), (a, v) => [...v, ...s(S + a * 6 + j)], C4, C8, T));
    }
    // rows a: y[a][b] = (S A)_ab, stored at qc + (a*w + b)*co*4
    for (let a = 0; a < 4; a++) {
      inner.push(...aT((j) => g(S + a * 6 + j), (b, v) => [...g(L.qc), ...v, ...op.v128store((a * w + b) * co * 4)], C4, C8, T));
    }
    inner.push(...g(L.mo), ...op.i32(16), ...op.add, ...s(L.mo));
    const overC = [...op.i32(0), ...s(L.cb), ...op.loop, ...inner,
      ...g(L.cb), ...op.i32(16), ...op.add, ...op.tee(L.cb), ...op.i32(co * 4), ...op.ltS, ...op.brIf(0), ...op.end];
    // q = row + tx * 4 * co * 4
    const overX = forLoop(L.tx, op.i32(tw), [...g(L.row), ...g(L.tx), ...op.i32(16 * co), ...op.mul, ...op.add, ...s(L.q), ...overC]);
    const overY = forLoop(L.ty, g(P.th), [
      // row = y + ((nn*th + ty) * 4 * w * co) * 4
      ...g(P.y), ...g(L.nn), ...g(P.th), ...op.mul, ...g(L.ty), ...op.add,
      ...op.i32(4 * w * co * 4), ...op.mul, ...op.add, ...s(L.row),
      ...overX,
    ]);
    body.push(...forLoop(L.nn, g(P.n), overY), ...op.end);
    return { nparams: 4, ni32, nv128: 6 + 24 + 6, body };
  })();
  // --- fin(wsrc, ubase): U_k = (G g G^T)_k for 4 (input, output) channel pairs a vector; the 9
  // taps g_ab of the filter being applied are planes [ci, co] at wsrc + (a*3 + b)*cc*4, U_k is
  // written at ubase + k*ustride
  const fin = ((): WasmFunction => {
    const cc = ci * co;
    const ustride = strideOf(ci, co);
    const P = { wsrc: 0, ubase: 1 };
    const L = { e: 2, a: 3, o: 4 };
    const T = 5; // 18 v128: G g (6x3)
    const Q = T + 18, H = Q + 1, E = Q + 2, W = Q + 3;
    // the six values of G x for x = x(0..2), handed to out(i, value)
    const gG = (x: (i: number) => number[], out: (i: number, v: number[]) => number[]) => [
      ...out(0, [...x(0), ...g(Q), ...MUL]),
      ...out(1, [...x(0), ...x(1), ...ADD, ...x(2), ...ADD, ...g(H), ...MUL, ...op.f32x4neg]),
      ...out(2, [...x(0), ...x(1), ...SUB, ...x(2), ...ADD, ...g(H), ...MUL, ...op.f32x4neg]),
      ...out(3, [...x(0), ...g(E), ...MUL, ...x(1), ...g(W), ...MUL, ...ADD, ...x(2), ...g(H), ...MUL, ...ADD]),
      ...out(4, [...x(0), ...g(E), ...MUL, ...x(1), ...g(W), ...MUL, ...SUB, ...x(2), ...g(H), ...MUL, ...ADD]),
      ...out(5, x(2)),
    ];
    const inner: number[] = [...g(P.wsrc), ...g(L.e), ...op.add, ...s(L.a), ...g(P.ubase), ...g(L.e), ...op.add, ...s(L.o)];
    for (let b = 0; b < 3; b++) {
      inner.push(...gG((r) => [...g(L.a), ...op.v128load((r * 3 + b) * cc * 4)], (i, v) => [...v, ...s(T + i * 3 + b)]));
    }
    for (let i = 0; i < 6; i++) {
      inner.push(...gG((b) => g(T + i * 3 + b), (j, v) => [...g(L.o), ...v, ...op.v128store((i * 6 + j) * ustride)]));
    }
    const body = [...splat(1 / 4), ...s(Q), ...splat(1 / 6), ...s(H), ...splat(1 / 24), ...s(E), ...splat(1 / 12), ...s(W),
      ...op.i32(0), ...s(L.e), ...op.loop, ...inner,
      ...g(L.e), ...op.i32(16), ...op.add, ...op.tee(L.e), ...op.i32(cc * 4), ...op.ltS, ...op.brIf(0), ...op.end, ...op.end];
    return { nparams: 2, ni32: 3, nv128: 18 + 4, body };
  })();
  return assembleModule([vin, vout, mmFunction(ci, co, 36), fin], ['vin', 'vout', 'mm', 'fin'],
    ['winograd_f43_in', 'winograd_f43_out', 'winograd_f43_products', 'winograd_f43_filter'], shared);
}

/**
 * Bytes between the 36 buffers [tiles, c]: one 64-byte line more than their size, so the 36
 * streams the transforms read or write are not all a power of two apart (which maps them to the
 * same L1 sets).
 */
function strideOf(tiles: number, c: number): number {
  return (tiles * c + 16) * 4;
}

function getInstance(mem: WasmMemory, ci: number, co: number, tw: number, tiles: number): WasmInstance | null {
  return heapInstance(mem, `f43/${ci}/${co}/${tw}/${tiles}`, (shared) => buildModule(ci, co, tw, tiles, shared));
}

let enabled = true;
/** Turns F(4x4, 3x3) off/on (benchmarks, tests): off, callers take F(2x2, 3x3). */
export function setWinogradF43Enabled(on: boolean): void {
  enabled = on;
}

/** True when {@link conv3x3WinogradF43} would run for these sizes on the current backend. */
export function winogradF43Applies(x: tf.Tensor4D, ci: number, co: number): boolean {
  const [n, h, w] = x.shape;
  return enabled && h % 4 === 0 && w % 4 === 0 && (n * (h / 4) * (w / 4)) % 4 === 0 &&
    ci % 4 === 0 && co % 8 === 0 && ci >= 32 && co >= 32 && wasmBackend() != null;
}

/**
 * conv2d(x, w, stride 1, pad 1) for a 3x3 filter w [3, 3, ci, co] (with `flip`: the filter is
 * flipTranspose(w) for w [3, 3, co, ci], the input gradient of a convolution by w) by F(4x4, 3x3),
 * or null where it does not apply ({@link winogradF43Applies}: sizes multiples of 4, >= 32
 * channels, the wasm backend with SIMD).
 */
export function conv3x3WinogradF43(x: tf.Tensor4D, w: tf.Tensor4D, flip = false): tf.Tensor4D | null {
  const ci = x.shape[3];
  const co = flip ? w.shape[2] : w.shape[3];
  if ((flip ? w.shape[3] : w.shape[2]) !== ci || w.shape[0] !== 3 || w.shape[1] !== 3) return null;
  if (!winogradF43Applies(x, ci, co)) return null;
  const { be, mem } = wasmBackend()!;
  const [n, h, wd] = x.shape;
  const th = h / 4, tw = wd / 4;
  const hp = h + 2, wp = wd + 2;
  const tiles = n * th * tw;
  const inst = getInstance(mem, ci, co, tw, tiles);
  if (inst == null) return null;
  return tf.tidy(() => {
    // every heap tensor first: a view of the heap is valid only until the next allocation
    const us = heapTensor(be, [36 * strideOf(ci, co) / 4]);
    const wt = flip ? heapTensor(be, [9, ci, co]) : null; // the flipped, transposed filter
    const vs = heapTensor(be, [36 * strideOf(tiles, ci) / 4]);
    const ms = heapTensor(be, [36 * strideOf(tiles, co) / 4]);
    const xp = heapTensor(be, [n, hp, wp, ci]);
    const tab = (t: tf.Tensor, stride: number) => tf.tensor1d(Int32Array.from({ length: 36 }, (_, k) => heapOffset(be, t) + k * stride), 'int32');
    const vtab = tab(vs, strideOf(tiles, ci));
    const utab = tab(us, strideOf(ci, co));
    const mtab = tab(ms, strideOf(tiles, co));
    const y = heapTensor(be, [n, h, wd, co]) as tf.Tensor4D;
    const heap = new Float32Array(mem.buffer);
    const cc = ci * co;
    const wo = heapOffset(be, w) / 4;
    if (wt != null) {
      // tap (a, b) of the filter applied is w's tap (2-a, 2-b) transposed
      for (let tap = 0; tap < 9; tap++) {
        const src = wo + (8 - tap) * cc, dst = heapOffset(be, wt) / 4 + tap * cc;
        for (let c = 0; c < co; c++) for (let r = 0; r < ci; r++) heap[dst + r * co + c] = heap[src + c * ci + r];
      }
    }
    inst.exports.fin(wt != null ? heapOffset(be, wt) : wo * 4, heapOffset(be, us));
    writePadded(heap, heapOffset(be, x) / 4, heapOffset(be, xp) / 4, n, h, wd, ci); // zero-padded copy of x
    inst.exports.vin(heapOffset(be, xp), heapOffset(be, vs), n, hp, th);
    inst.exports.mm(heapOffset(be, vtab), heapOffset(be, utab), heapOffset(be, mtab), tiles);
    inst.exports.vout(heapOffset(be, ms), heapOffset(be, y), n, th);
    return y;
  });
}
