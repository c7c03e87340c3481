/**
 * The Adam / RAdam update of one parameter (optim.ts) as one WebAssembly SIMD pass in
 * tfjs-backend-wasm's heap (wasm-heap.ts): reads the gradient, the parameter and its two moments
 * where they are and writes the three new tensors there, 4 values a vector. Every operation is an
 * IEEE float32 add, multiply, divide or square root in the order of optim.ts' loop (and of the
 * tensor version's kernels), so the bits are the same as theirs; the last (n mod 4) values go
 * through the same scalar formula in JavaScript.
 *
 * Pure module: WebAssembly is reached through globalThis; no Node or DOM APIs.
 */
import * as tf from '@tensorflow/tfjs';
import { op, uleb } from './wasm-kernels';
import { assembleModule, heapBackend, heapInstance, heapOffset, heapTensor } from './wasm-heap';

const SIMD = (code: number) => [0xfd, ...uleb(code)];
const F32X4_SPLAT = SIMD(0x13);
const F32X4_DIV = SIMD(0xe7);
const F32X4_SQRT = SIMD(0xe3);

/** The update's form: Adam; RAdam once rectified; RAdam before (the plain momentum step). */
export type AdamMode = 0 | 1 | 2;

/** Scalars of one update (float32 values, as optim.ts rounds them). */
export interface AdamScalars {
  b1: number;
  c1: number;
  b2: number;
  c2: number;
  e: number;
  wd: number;
  adamScale: number;
  sqrtBc2: number;
  radamScale: number;
}

// params: g, p, m, v, pOut, mOut, vOut (i32 byte offsets), n4 (values, a multiple of 4), then f32:
// b1, c1, b2, c2, e, wd, adamScale, sqrtBc2, radamScale
const NI = 8;
const S = { b1: 8, c1: 9, b2: 10, c2: 11, e: 12, wd: 13, adamScale: 14, sqrtBc2: 15, radamScale: 16 };

function buildModule(mode: AdamMode, decay: boolean, shared: boolean): Uint8Array {
  const g = op.get;
  const s = op.set;
  const i = 17; // i32 local: byte offset
  // v128 locals: splatted scalars, then gr, mi, vi
  let nx = 18;
  const V: Record<keyof typeof S, number> = { b1: nx++, c1: nx++, b2: nx++, c2: nx++, e: nx++, wd: nx++, adamScale: nx++, sqrtBc2: nx++, radamScale: nx++ };
  const GR = nx++, MI = nx++, VI = nx++;
  const body: number[] = [];
  for (const k of Object.keys(S) as (keyof typeof S)[]) body.push(...g(S[k]), ...F32X4_SPLAT, ...s(V[k]));
  const at = (param: number) => [...g(param), ...g(i), ...op.add];
  const loop: number[] = [];
  // gr = decay ? g + p * wd : g
  loop.push(...at(0), ...op.v128load(0));
  if (decay) loop.push(...at(1), ...op.v128load(0), ...g(V.wd), ...op.f32x4mul, ...op.f32x4add);
  loop.push(...s(GR));
  // mi = m * b1 + gr * c1
  loop.push(...at(2), ...op.v128load(0), ...g(V.b1), ...op.f32x4mul, ...g(GR), ...g(V.c1), ...op.f32x4mul, ...op.f32x4add, ...s(MI));
  // vi = v * b2 + (gr * gr) * c2
  loop.push(...at(3), ...op.v128load(0), ...g(V.b2), ...op.f32x4mul, ...g(GR), ...g(GR), ...op.f32x4mul, ...g(V.c2), ...op.f32x4mul, ...op.f32x4add, ...s(VI));
  loop.push(...at(5), ...g(MI), ...op.v128store(0));
  loop.push(...at(6), ...g(VI), ...op.v128store(0));
  // pOut = p - u
  loop.push(...at(4), ...at(1), ...op.v128load(0));
  if (mode === 0) {
    // u = (mi * adamScale) / (sqrt(vi) / sqrtBc2 + e)
    loop.push(...g(MI), ...g(V.adamScale), ...op.f32x4mul, ...g(VI), ...F32X4_SQRT, ...g(V.sqrtBc2), ...F32X4_DIV, ...g(V.e), ...op.f32x4add, ...F32X4_DIV);
  } else if (mode === 1) {
    // u = (mi * radamScale) / (sqrt(vi) + e)
    loop.push(...g(MI), ...g(V.radamScale), ...op.f32x4mul, ...g(VI), ...F32X4_SQRT, ...g(V.e), ...op.f32x4add, ...F32X4_DIV);
  } else {
    loop.push(...g(MI), ...g(V.adamScale), ...op.f32x4mul);
  }
  loop.push(...op.f32x4sub, ...op.v128store(0));
  body.push(...op.i32(0), ...s(i), ...op.loop, ...loop,
    ...g(i), ...op.i32(16), ...op.add, ...op.tee(i), ...g(7), ...op.i32(4), ...op.mul, ...op.ltS, ...op.brIf(0), ...op.end, ...op.end);
  return assembleModule([{ nparams: NI, nf32params: 9, ni32: 1, nv128: 12, body }], ['update'], ['adam_update'], shared);
}

/**
 * The new parameter, first and second moments of one update, computed in the heap, or null
 * where the wasm path cannot run (another backend, not float32). `tail(i)` computes value i in
 * JavaScript (the same formula) for the last n mod 4 values; it gets views of the heap.
 */
export function adamUpdateHeap(
  grad: tf.Tensor, p: tf.Tensor, m: tf.Tensor, v: tf.Tensor, mode: AdamMode, decay: boolean, sc: AdamScalars,
  tail: (idx: number, gv: Float32Array, pv: Float32Array, mv: Float32Array, vv: Float32Array, out: { p: Float32Array; m: Float32Array; v: Float32Array }) => void,
): { p: tf.Tensor; m: tf.Tensor; v: tf.Tensor } | null {
  const hb = heapBackend();
  if (hb == null || [grad, p, m, v].some((t) => t.dtype !== 'float32')) return null;
  const inst = heapInstance(hb.mem, `adam/${mode}/${decay ? 1 : 0}`, (shared) => buildModule(mode, decay, shared));
  if (inst == null) return null;
  const n = p.size;
  const pOut = heapTensor(hb.be, [...p.shape]);
  const mOut = heapTensor(hb.be, [...p.shape]);
  const vOut = heapTensor(hb.be, [...p.shape]);
  const off = [grad, p, m, v, pOut, mOut, vOut].map((t) => heapOffset(hb.be, t));
  const n4 = n - (n % 4);
  if (n4 > 0) {
    inst.exports.update(...off, n4, sc.b1, sc.c1, sc.b2, sc.c2, sc.e, sc.wd, sc.adamScale, sc.sqrtBc2, sc.radamScale);
  }
  if (n4 < n) {
    const heap = new Float32Array(hb.mem.buffer);
    const view = (o: number) => heap.subarray(o / 4, o / 4 + n);
    const out = { p: view(off[4]), m: view(off[5]), v: view(off[6]) };
    for (let idx = n4; idx < n; idx++) tail(idx, view(off[0]), view(off[1]), view(off[2]), view(off[3]), out);
  }
  return { p: pOut, m: mOut, v: vOut };
}
