/**
 * 'Valid' filtering of single-channel images [k, h, w] with a short 1-D window along one axis
 * (SSIM's separable Gaussian, losses.ts), as hand-assembled WebAssembly SIMD in
 * tfjs-backend-wasm's heap (wasm-heap.ts): each output row is 4 outputs a vector, the window's
 * taps unrolled as constants, out[.., j] = sum_t g[t] * in[.., j + t] (along w) or
 * out[i, ..] = sum_t g[t] * in[i + t, ..] (along h); a row's last (length mod 4) outputs scalar.
 * About 11 multiply-adds an output, against 128 for the banded matrix product it replaces on
 * wasm (and no transposes). Gradient: the same filtering, with the window reversed, of the output
 * gradient zero-padded by (taps - 1) on both sides of that axis.
 *
 * Where the wasm backend is not active {@link blurAxis} returns null: callers keep their path.
 *
 * Pure module: WebAssembly is reached through globalThis; no Node or DOM APIs.
 */
import * as tf from '@tensorflow/tfjs';
import { customGradient } from './backend';
import { op, uleb } from './wasm-kernels';
import { assembleModule, heapBackend, heapInstance, heapOffset, heapTensor } from './wasm-heap';

/** A pass's geometry (element counts): NI output rows an image, strides of rows (SI, DI), images (SB, DB) and taps (ST), LEN outputs a row. */
interface Geometry {
  ni: number;
  si: number;
  sb: number;
  di: number;
  db: number;
  st: number;
  len: number;
  taps: Float32Array;
}

const f32const = (v: number) => [0x43, ...new Uint8Array(Float32Array.of(v).buffer)];
const v128splat = (v: number) => {
  const b = new Uint8Array(Float32Array.of(v).buffer);
  return [0xfd, ...uleb(12), ...b, ...b, ...b, ...b];
};
const F32_LOAD = (offset: number) => [0x2a, 2, ...uleb(offset)];
const F32_STORE = (offset: number) => [0x38, 2, ...uleb(offset)];
const F32_ADD = [0x92];
const F32_MUL = [0x94];

/** pass(src, dst, nb): the filtering of nb images with geometry `g` (byte addresses in the heap). */
function buildModule(geo: Geometry, shared: boolean): Uint8Array {
  const g = op.get;
  const s = op.set;
  const P = { src: 0, dst: 1, nb: 2 };
  const L = { b: 3, i: 4, j: 5, srow: 6, drow: 7, p: 8 };
  const nvec = Math.floor(geo.len / 4);
  const tail = geo.len - 4 * nvec;
  const T = geo.taps.length;
  // one vector of outputs at p (source) and drow + j
  const vec: number[] = [...g(L.drow), ...g(L.j), ...op.add];
  for (let t = 0; t < T; t++) {
    vec.push(...g(L.p), ...op.v128load(t * geo.st * 4), ...v128splat(geo.taps[t]), ...op.f32x4mul);
    if (t > 0) vec.push(...op.f32x4add);
  }
  vec.push(...op.v128store(0));
  const overJ = nvec === 0 ? [] : [...op.i32(0), ...s(L.j), ...op.loop,
    ...g(L.srow), ...g(L.j), ...op.add, ...s(L.p),
    ...vec,
    ...g(L.j), ...op.i32(16), ...op.add, ...op.tee(L.j), ...op.i32(nvec * 16), ...op.ltS, ...op.brIf(0), ...op.end];
  const tails: number[] = [];
  for (let r = 0; r < tail; r++) {
    const j = 4 * nvec + r;
    tails.push(...g(L.drow));
    for (let t = 0; t < T; t++) {
      tails.push(...g(L.srow), ...F32_LOAD((j + t * geo.st) * 4), ...f32const(geo.taps[t]), ...F32_MUL);
      if (t > 0) tails.push(...F32_ADD);
    }
    tails.push(...F32_STORE(j * 4));
  }
  const overI = [...op.i32(0), ...s(L.i), ...op.loop,
    // srow = src + (b*SB + i*SI)*4 ; drow = dst + (b*DB + i*DI)*4
    ...g(P.src), ...g(L.b), ...op.i32(geo.sb * 4), ...op.mul, ...op.add, ...g(L.i), ...op.i32(geo.si * 4), ...op.mul, ...op.add, ...s(L.srow),
    ...g(P.dst), ...g(L.b), ...op.i32(geo.db * 4), ...op.mul, ...op.add, ...g(L.i), ...op.i32(geo.di * 4), ...op.mul, ...op.add, ...s(L.drow),
    ...overJ, ...tails,
    ...g(L.i), ...op.i32(1), ...op.add, ...op.tee(L.i), ...op.i32(geo.ni), ...op.ltS, ...op.brIf(0), ...op.end];
  const overB = [...op.i32(0), ...s(L.b), ...op.loop, ...overI,
    ...g(L.b), ...op.i32(1), ...op.add, ...op.tee(L.b), ...g(P.nb), ...op.ltS, ...op.brIf(0), ...op.end];
  return assembleModule([{ nparams: 3, ni32: 6, nv128: 0, body: [...overB, ...op.end] }], ['pass'], ['blur_pass'], shared);
}

/** out = the valid filtering of x [k, h, w] along `axis` (1: h, 2: w) by `taps`, in the heap; null where it cannot run. */
function filterValid(x: tf.Tensor3D, axis: 1 | 2, taps: Float32Array): tf.Tensor3D | null {
  const hb = heapBackend();
  if (hb == null || x.dtype !== 'float32') return null;
  const [k, h, w] = x.shape;
  const T = taps.length;
  const oh = axis === 1 ? h - T + 1 : h;
  const ow = axis === 2 ? w - T + 1 : w;
  if (oh < 1 || ow < 1) return null;
  const geo: Geometry = { ni: oh, si: w, sb: h * w, di: ow, db: oh * ow, st: axis === 2 ? 1 : w, len: ow, taps };
  const key = `blur/${geo.ni}/${geo.si}/${geo.sb}/${geo.di}/${geo.db}/${geo.st}/${geo.len}/${Array.from(taps).join(',')}`;
  const inst = heapInstance(hb.mem, key, (shared) => buildModule(geo, shared));
  if (inst == null) return null;
  const y = heapTensor(hb.be, [k, oh, ow]) as tf.Tensor3D;
  inst.exports.pass(heapOffset(hb.be, x), heapOffset(hb.be, y), k);
  return y;
}

let enabled = true;
/** Turns the wasm filtering off/on (benchmarks, tests): off, {@link blurAxis} returns null. */
export function setBlurEnabled(on: boolean): void {
  enabled = on;
}

/**
 * Differentiable 'valid' filtering of [k, h, w] along `axis` by the window `taps` on the wasm
 * backend, or null where the wasm path cannot run (another backend, a window longer than the axis).
 */
export function blurAxis(x: tf.Tensor3D, axis: 1 | 2, taps: Float32Array): tf.Tensor3D | null {
  if (!enabled || heapBackend() == null || x.shape[axis] < taps.length) return null;
  const reversed = Float32Array.from(taps).reverse();
  const T = taps.length;
  const f = customGradient((xx: tf.Tensor) => {
    const y = filterValid(xx as tf.Tensor3D, axis, taps);
    if (y == null) throw new Error('blurAxis: the wasm filtering did not run');
    return {
      value: y,
      gradFunc: (dy: tf.Tensor) => {
        const pad: [number, number][] = [[0, 0], [0, 0], [0, 0]];
        pad[axis] = [T - 1, T - 1];
        const padded = tf.pad(dy as tf.Tensor3D, pad);
        const dx = filterValid(padded, axis, reversed);
        padded.dispose();
        if (dx == null) throw new Error('blurAxis: the wasm filtering did not run');
        return dx;
      },
    };
  });
  return f(x) as tf.Tensor3D;
}
