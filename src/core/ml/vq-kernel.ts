/**
 * The arg-min of the vector quantiser (vqvae.ts nearestCode) as one WebAssembly SIMD pass in
 * tfjs-backend-wasm's heap (wasm-heap.ts): for each latent row r, the code j minimising
 * d = |e_j|^2 - 2 z_r.e_j, reading the products z.e^T [m, k] and the codes' squared norms [k]
 * where they are. d is formed as the tensor version forms it (norm - dot * 2: the doubling is
 * exact, one float32 subtraction), 4 codes a vector; each lane keeps the first minimum of its
 * codes (strict <), and the 4 lanes are reduced by (value, index), so the code chosen is the first
 * minimum in code order, as the plain loop's. Replaces two passes over the m x k distance matrix
 * (the Sub and Mul kernels) and the loop over it.
 *
 * Pure module: WebAssembly is reached through globalThis; no Node or DOM APIs.
 */
import * as tf from '@tensorflow/tfjs';
import { op, uleb } from './wasm-kernels';
import { assembleModule, heapBackend, heapInstance, heapOffset, heapTensor } from './wasm-heap';

const SIMD = (code: number) => [0xfd, ...uleb(code)];
const F32X4_LT = SIMD(0x43);
const BITSELECT = SIMD(0x52);
const I32X4_SPLAT = SIMD(0x11);
const I32X4_ADD = SIMD(0xae);
const F32X4_EXTRACT = (lane: number) => [...SIMD(0x1f), lane];
const I32X4_EXTRACT = (lane: number) => [...SIMD(0x1b), lane];
const V128_CONST_I32 = (a: number[]) => [...SIMD(0x0c), ...new Uint8Array(Int32Array.from(a).buffer)];
const F32_LT = [0x5d];
const F32_EQ = [0x5b];
const I32_LT_S = [0x48];
const I32_STORE = (offset: number) => [0x36, 2, ...uleb(offset)];
const IF_VOID = [0x04, 0x40];
const I32_AND = [0x71];
const I32_OR = [0x72];

/** argmin(dot [m, k], norms [k], out [m] int32, m) for k a multiple of 4 (baked in). */
function buildModule(k: number, shared: boolean): Uint8Array {
  const g = op.get;
  const s = op.set;
  const P = { dot: 0, norms: 1, out: 2, m: 3 };
  // i32 locals
  const L = { r: 4, j: 5, row: 6, bi: 7, li: 8 };
  // f32 local
  const BV = 9;
  // v128 locals
  const V = { best: 10, idx: 11, cur: 12, d: 13, mask: 14, four: 15 };
  const body: number[] = [...op.i32(4), ...I32X4_SPLAT, ...s(V.four)];
  // d for the codes at byte offset j of the row: norms[j..j+3] - dot[r, j..j+3] * 2 (as dot + dot: exact)
  const dAt = [...g(P.norms), ...g(L.j), ...op.add, ...op.v128load(0),
    ...g(L.row), ...g(L.j), ...op.add, ...op.v128load(0), ...g(L.row), ...g(L.j), ...op.add, ...op.v128load(0), ...op.f32x4add,
    ...op.f32x4sub];
  const overJ = [...op.i32(16), ...s(L.j), ...op.loop,
    ...g(V.cur), ...g(V.four), ...I32X4_ADD, ...s(V.cur),
    ...dAt, ...s(V.d),
    ...g(V.d), ...g(V.best), ...F32X4_LT, ...s(V.mask),
    ...g(V.d), ...g(V.best), ...g(V.mask), ...BITSELECT, ...s(V.best),
    ...g(V.cur), ...g(V.idx), ...g(V.mask), ...BITSELECT, ...s(V.idx),
    ...g(L.j), ...op.i32(16), ...op.add, ...op.tee(L.j), ...op.i32(k * 4), ...op.ltS, ...op.brIf(0), ...op.end];
  // lanes reduced by (value, index): lane l replaces the best when v < bv, or v == bv with a smaller index
  const reduce: number[] = [...g(V.best), ...F32X4_EXTRACT(0), ...s(BV), ...g(V.idx), ...I32X4_EXTRACT(0), ...s(L.bi)];
  for (let l = 1; l < 4; l++) {
    reduce.push(...g(V.idx), ...I32X4_EXTRACT(l), ...s(L.li));
    reduce.push(
      ...g(V.best), ...F32X4_EXTRACT(l), ...g(BV), ...F32_LT,
      ...g(V.best), ...F32X4_EXTRACT(l), ...g(BV), ...F32_EQ, ...g(L.li), ...g(L.bi), ...I32_LT_S, ...I32_AND,
      ...I32_OR,
      ...IF_VOID, ...g(V.best), ...F32X4_EXTRACT(l), ...s(BV), ...g(L.li), ...s(L.bi), ...op.end,
    );
  }
  const overR = [...op.i32(0), ...s(L.r), ...op.loop,
    // row = dot + r * k * 4
    ...g(P.dot), ...g(L.r), ...op.i32(k * 4), ...op.mul, ...op.add, ...s(L.row),
    ...op.i32(0), ...s(L.j), ...dAt, ...s(V.best),
    ...V128_CONST_I32([0, 1, 2, 3]), ...op.tee(V.idx), ...s(V.cur),
    ...(k > 4 ? overJ : []),
    ...reduce,
    ...g(P.out), ...g(L.r), ...op.i32(4), ...op.mul, ...op.add, ...g(L.bi), ...I32_STORE(0),
    ...g(L.r), ...op.i32(1), ...op.add, ...op.tee(L.r), ...g(P.m), ...op.ltS, ...op.brIf(0), ...op.end];
  body.push(...overR, ...op.end);
  return assembleModule([{ nparams: 4, ni32: 5, nf32: 1, nv128: 6, body }], ['argmin'], ['vq_argmin'], shared);
}

/**
 * The nearest code of each row given dot = z e^T [m, k] and norms = sum(e^2) [k], as int32 [m]
 * in the heap, or null where the wasm path cannot run (another backend, k not a multiple of 4).
 */
export function nearestCodeHeap(dot: tf.Tensor2D, norms: tf.Tensor1D): tf.Tensor1D | null {
  const hb = heapBackend();
  const [m, k] = dot.shape;
  if (hb == null || k % 4 !== 0 || k < 4 || norms.size !== k || dot.dtype !== 'float32' || norms.dtype !== 'float32') return null;
  const inst = heapInstance(hb.mem, `vq/${k}`, (shared) => buildModule(k, shared));
  if (inst == null) return null;
  const out = heapTensor(hb.be, [m], 'int32') as tf.Tensor1D;
  if (m > 0) inst.exports.argmin(heapOffset(hb.be, dot), heapOffset(hb.be, norms), heapOffset(hb.be, out), m);
  return out;
}
