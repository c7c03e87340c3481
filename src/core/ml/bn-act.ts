/**
 * BatchNorm in training mode (biased batch variance, NHWC, per channel over every other axis)
 * fused with the activation after it (LeakyReLU, ReLU or none), with its hand-written gradient.
 *
 * On the wasm backend, forward and backward are each two passes of hand-assembled WebAssembly
 * SIMD (4 channels a vector) over tfjs-backend-wasm's own heap (the module imports the backend's
 * WebAssembly.Memory: wasm-heap.ts), instead of ~12 tfjs kernels forward and ~10 backward
 * (BatchNorm 10 + 9, the activation 2 + 1), each a pass over the activation plus the engine's
 * bookkeeping:
 *
 *   forward  1: per channel, the sums of (x - k) and (x - k)^2 with k the first row's value (the
 *               shifted-data variance: no cancellation while the mean is near a sample);
 *            2: y = act(gamma * invstd * (x - mean) + beta);
 *   backward 1: z recomputed from x for the activation's mask, dz = dy * (z > 0 ? 1 : alpha),
 *               per channel the sums of dz and dz * (x - mean);
 *            2: dx = gamma * invstd * (dz - mean(dz) - xhat * mean(dz * xhat)), dz recomputed.
 *
 * Sums are taken 4-wide in float32 over 64 rows at a time, then added in float64, so a channel
 * of a million values loses no precision. The forward saves x only (not xhat, nor the output):
 * the per-channel mean, scale and shift stay in the closure.
 *
 * 1 or 2 channels run as 4 lanes (4 / c pixels a vector, their sums added per channel after).
 * Elsewhere (cpu, webgl, tfjs-node), for other channel counts not a multiple of 4, or when
 * turned off ({@link setBnActEnabled}), the same function runs today's tensor path:
 * batchNormTrain then leakyRelu / relu (layers.ts). Within float32 rounding of each other
 * (test/core/ml/bn-act.test.ts).
 *
 * Pure module: no Node or DOM APIs.
 */
import * as tf from '@tensorflow/tfjs';
import { customGradient } from './backend';
import { type BatchStats, batchNormTrain, leakyRelu, relu } from './layers';
import { op, readValues, uleb } from './wasm-kernels';
import { type WasmBackendLike, type WasmMemory, assembleModule, heapBackend, heapInstance, heapOffset, heapTensor } from './wasm-heap';

/** The activation after the BatchNorm: none, ReLU, or LeakyReLU with its negative slope. */
export type BnActivation = 'none' | 'relu' | { leakyRelu: number };

// SIMD and i32 opcodes beyond wasm-kernels.ts' `op`
const SIMD = (code: number) => [0xfd, ...uleb(code)];
const F32X4_GT = SIMD(0x44);
const BITSELECT = SIMD(0x52);
const F64X2_ADD = SIMD(0xf0);
const F64X2_PROMOTE_LOW = SIMD(0x5f);
const load64zero = (offset: number) => [0xfd, ...uleb(0x5d), 3, ...uleb(offset)];
const I32_SUB = [0x6b];
const SELECT = [0x1b];

/** Rows summed in float32 before their sums are added in float64. */
const CHUNK = 64;

/**
 * The scratch buffer's layout for c channels, in bytes: float64 sums TS [c] and TQ [c], float32
 * partial sums PS [c] and PQ [c], the per-channel constants A (shift, then the mean), B (scale =
 * gamma * invstd), C (beta), D and E (the input gradient's coefficients), and ALPHA (4 lanes: the
 * activation's slope below zero: 1 for none, 0 for ReLU).
 */
function layout(c: number) {
  const f = 4 * c;
  return { TS: 0, TQ: 2 * f, PS: 4 * f, PQ: 5 * f, A: 6 * f, B: 7 * f, C: 8 * f, D: 9 * f, E: 10 * f, ALPHA: 11 * f, floats: 11 * c + 4 };
}

/**
 * The module for c channels (c a multiple of 4, baked in as constant offsets):
 *   fsum(x, s, rows, chunk)    TS += sum (x - A), TQ += sum (x - A)^2 per channel
 *   fapply(x, y, s, rows)      y = act((x - A) * B + C)
 *   bsum(x, dy, s, rows, chunk) TS += sum dz, TQ += sum dz * (x - A), dz = dy * (z > 0 ? 1 : alpha)
 *   bapply(x, dy, dx, s, rows)  dx = dz * B + (x - A) * D + E
 * with x, y, dy, dx [rows, c] and s the scratch buffer (byte offsets into the backend's heap).
 */
function buildModule(c: number, shared: boolean): Uint8Array {
  const g = op.get;
  const s = op.set;
  const c4 = 4 * c;
  const O = layout(c);
  const ld = (ptr: number, offset: number) => [...g(ptr), ...op.v128load(offset)];

  /**
   * The loop nest of every pass: rows (pointers `ptrs` advanced c4 bytes a row), then 4-channel
   * groups (L.cb their byte offset, L.sc = s + cb), `body` once per group. With `flush`, the rows
   * run `chunk` at a time and `flush` runs over the groups after each chunk.
   */
  const nest = (
    L: { r: number; cnt: number; j: number; cb: number; sc: number },
    P: { s: number; rows: number; chunk?: number },
    ptrs: number[],
    body: number[],
    flush?: number[],
  ): number[] => {
    const overC = [...op.i32(0), ...s(L.cb), ...op.loop,
      ...g(P.s), ...g(L.cb), ...op.add, ...s(L.sc),
      ...body,
      ...g(L.cb), ...op.i32(16), ...op.add, ...op.tee(L.cb), ...op.i32(c4), ...op.ltS, ...op.brIf(0), ...op.end];
    const advance = ptrs.flatMap((p) => [...g(p), ...op.i32(c4), ...op.add, ...s(p)]);
    if (flush == null) {
      return [...op.i32(0), ...s(L.r), ...op.loop, ...overC, ...advance,
        ...g(L.r), ...op.i32(1), ...op.add, ...op.tee(L.r), ...g(P.rows), ...op.ltS, ...op.brIf(0), ...op.end];
    }
    const overFlush = [...op.i32(0), ...s(L.cb), ...op.loop,
      ...g(P.s), ...g(L.cb), ...op.add, ...s(L.sc),
      ...flush,
      ...g(L.cb), ...op.i32(16), ...op.add, ...op.tee(L.cb), ...op.i32(c4), ...op.ltS, ...op.brIf(0), ...op.end];
    return [...op.i32(0), ...s(L.r), ...op.loop,
      // cnt = min(chunk, rows - r)
      ...g(P.chunk!), ...g(P.rows), ...g(L.r), ...I32_SUB, ...g(P.chunk!), ...g(P.rows), ...g(L.r), ...I32_SUB, ...op.ltS, ...SELECT, ...s(L.cnt),
      ...op.i32(0), ...s(L.j), ...op.loop, ...overC, ...advance,
      ...g(L.j), ...op.i32(1), ...op.add, ...op.tee(L.j), ...g(L.cnt), ...op.ltS, ...op.brIf(0), ...op.end,
      ...overFlush,
      ...g(L.r), ...g(L.cnt), ...op.add, ...op.tee(L.r), ...g(P.rows), ...op.ltS, ...op.brIf(0), ...op.end];
  };
  /** PS += vs, PQ += vq (vectors left by `vs` and `vq` code), at L.sc. */
  const accumulate = (sc: number, vs: number[], vq: number[]) => [
    ...g(sc), ...ld(sc, O.PS), ...vs, ...op.f32x4add, ...op.v128store(O.PS),
    ...g(sc), ...ld(sc, O.PQ), ...vq, ...op.f32x4add, ...op.v128store(O.PQ),
  ];
  /** TS, TQ (float64) += PS, PQ of the group at L.sc (TS at s + 2 cb), then PS = PQ = 0. */
  const flushSums = (L: { cb: number; sc: number; t: number }, P: { s: number }) => {
    const out: number[] = [...g(P.s), ...g(L.cb), ...op.i32(2), ...op.mul, ...op.add, ...s(L.t)];
    for (const [T, Pp] of [[O.TS, O.PS], [O.TQ, O.PQ]]) {
      for (const h of [0, 1]) {
        out.push(...g(L.t), ...ld(L.t, T + 16 * h), ...g(L.sc), ...load64zero(Pp + 8 * h), ...F64X2_PROMOTE_LOW, ...F64X2_ADD, ...op.v128store(T + 16 * h));
      }
      out.push(...g(L.sc), ...op.v128zero, ...op.v128store(Pp));
    }
    return out;
  };

  // --- fsum(x 0, s 1, rows 2, chunk 3)
  const fsum = (() => {
    const P = { x: 0, s: 1, rows: 2, chunk: 3 };
    let n = 4;
    const L = { r: n++, cnt: n++, j: n++, cb: n++, sc: n++, t: n++ };
    const V = { v: n };
    const body = [
      ...g(P.x), ...g(L.cb), ...op.add, ...op.v128load(0), ...ld(L.sc, O.A), ...op.f32x4sub, ...s(V.v),
      ...accumulate(L.sc, g(V.v), [...g(V.v), ...g(V.v), ...op.f32x4mul]),
    ];
    return { nparams: 4, ni32: n - 4, nv128: 1, body: [...nest(L, P, [P.x], body, flushSums(L, P)), ...op.end] };
  })();

  /** z = (x - A) * B + C at L.sc, x at `xp + cb`; sets V.xc (x - A) and V.z. */
  const zOf = (xp: number, L: { cb: number; sc: number }, V: { xc: number; z: number }) => [
    ...g(xp), ...g(L.cb), ...op.add, ...op.v128load(0), ...ld(L.sc, O.A), ...op.f32x4sub, ...op.tee(V.xc),
    ...ld(L.sc, O.B), ...op.f32x4mul, ...ld(L.sc, O.C), ...op.f32x4add, ...s(V.z),
  ];
  /** dz = bitselect(dy, dy * alpha, z > 0) into V.dz. */
  const dzOf = (dyp: number, L: { cb: number }, V: { z: number; dz: number; al: number; dy: number }) => [
    ...g(dyp), ...g(L.cb), ...op.add, ...op.v128load(0), ...op.tee(V.dy),
    ...g(V.dy), ...g(V.al), ...op.f32x4mul,
    ...g(V.z), ...op.v128zero, ...F32X4_GT, ...BITSELECT, ...s(V.dz),
  ];

  // --- fapply(x 0, y 1, s 2, rows 3)
  const fapply = (() => {
    const P = { x: 0, y: 1, s: 2, rows: 3 };
    let n = 4;
    const L = { r: n++, cnt: n++, j: n++, cb: n++, sc: n++ };
    const V = { xc: n, z: n + 1, al: n + 2 };
    const body = [
      ...zOf(P.x, L, V),
      ...g(P.y), ...g(L.cb), ...op.add,
      ...g(V.z), ...g(V.z), ...g(V.al), ...op.f32x4mul, ...g(V.z), ...op.v128zero, ...F32X4_GT, ...BITSELECT,
      ...op.v128store(0),
    ];
    const pre = [...ld(P.s, O.ALPHA), ...s(V.al)];
    return { nparams: 4, ni32: n - 4, nv128: 3, body: [...pre, ...nest(L, P, [P.x, P.y], body), ...op.end] };
  })();

  // --- bsum(x 0, dy 1, s 2, rows 3, chunk 4)
  const bsum = (() => {
    const P = { x: 0, dy: 1, s: 2, rows: 3, chunk: 4 };
    let n = 5;
    const L = { r: n++, cnt: n++, j: n++, cb: n++, sc: n++, t: n++ };
    const V = { xc: n, z: n + 1, al: n + 2, dy: n + 3, dz: n + 4 };
    const body = [
      ...zOf(P.x, L, V),
      ...dzOf(P.dy, L, V),
      ...accumulate(L.sc, g(V.dz), [...g(V.dz), ...g(V.xc), ...op.f32x4mul]),
    ];
    const pre = [...ld(P.s, O.ALPHA), ...s(V.al)];
    return { nparams: 5, ni32: n - 5, nv128: 5, body: [...pre, ...nest(L, P, [P.x, P.dy], body, flushSums(L, P)), ...op.end] };
  })();

  // --- bapply(x 0, dy 1, dx 2, s 3, rows 4)
  const bapply = (() => {
    const P = { x: 0, dy: 1, dx: 2, s: 3, rows: 4 };
    let n = 5;
    const L = { r: n++, cnt: n++, j: n++, cb: n++, sc: n++ };
    const V = { xc: n, z: n + 1, al: n + 2, dy: n + 3, dz: n + 4 };
    const body = [
      ...zOf(P.x, L, V),
      ...dzOf(P.dy, L, V),
      ...g(P.dx), ...g(L.cb), ...op.add,
      ...g(V.dz), ...ld(L.sc, O.B), ...op.f32x4mul,
      ...g(V.xc), ...ld(L.sc, O.D), ...op.f32x4mul, ...op.f32x4add,
      ...ld(L.sc, O.E), ...op.f32x4add,
      ...op.v128store(0),
    ];
    const pre = [...ld(P.s, O.ALPHA), ...s(V.al)];
    return { nparams: 5, ni32: n - 5, nv128: 5, body: [...pre, ...nest(L, P, [P.x, P.dy, P.dx], body), ...op.end] };
  })();

  // --- the activation alone, over n vectors (no channels): afwd(x 0, y 1, n 2; alpha 3) y = act(x);
  // abwd(x 0, dy 1, dx 2, n 3; alpha 4) dx = dy * (x > 0 ? 1 : alpha); alpha an f32 parameter
  const activation = (backward: boolean) => {
    const P = backward ? { x: 0, dy: 1, out: 2, n: 3, a: 4 } : { x: 0, dy: -1, out: 1, n: 2, a: 3 };
    const ni = backward ? 4 : 3;
    const np = ni + 1;
    const L = { i: np };
    const V = { x: np + 1, v: np + 2, al: np + 3 };
    const ptrs = backward ? [P.x, P.dy, P.out] : [P.x, P.out];
    const body = [
      ...g(P.x), ...op.v128load(0), ...s(V.x),
      ...(backward ? [...g(P.dy), ...op.v128load(0), ...s(V.v)] : [...g(V.x), ...s(V.v)]),
      ...g(P.out),
      ...g(V.v), ...g(V.v), ...g(V.al), ...op.f32x4mul, ...g(V.x), ...op.v128zero, ...F32X4_GT, ...BITSELECT,
      ...op.v128store(0),
      ...ptrs.flatMap((q) => [...g(q), ...op.i32(16), ...op.add, ...s(q)]),
    ];
    const loop = [...op.i32(0), ...s(L.i), ...op.loop, ...body,
      ...g(L.i), ...op.i32(1), ...op.add, ...op.tee(L.i), ...g(P.n), ...op.ltS, ...op.brIf(0), ...op.end];
    return { nparams: ni, nf32params: 1, ni32: 1, nv128: 3, body: [...g(P.a), ...SIMD(0x13), ...s(V.al), ...loop, ...op.end] };
  };
  const afwd = activation(false);
  const abwd = activation(true);

  const fns = [fsum, fapply, bsum, bapply, afwd, abwd];
  const exportNames = ['fsum', 'fapply', 'bsum', 'bapply', 'afwd', 'abwd'];
  const profileNames = ['bnact_forward_sums', 'bnact_forward_apply', 'bnact_backward_sums', 'bnact_backward_apply', 'bnact_activation', 'bnact_activation_grad'];
  return assembleModule(fns, exportNames, profileNames, shared);
}

function getInstance(mem: WasmMemory, c: number) {
  return heapInstance(mem, `bn-act/${c}`, (shared) => buildModule(c, shared));
}

let enabled = true;
/** Turns the fused wasm path off/on (benchmarks, tests); off, the tensor path runs everywhere. */
export function setBnActEnabled(on: boolean): void {
  enabled = on;
}

function wasmBackend(): { be: WasmBackendLike; mem: WasmMemory } | null {
  return enabled ? heapBackend() : null;
}

/** True when {@link batchNormAct} takes the fused wasm path for a tensor [..., c]. */
export function bnActFused(x: tf.Tensor): boolean {
  const lanes = laneChannels(x);
  if (x.dtype !== 'float32' || lanes == null || x.size === 0) return false;
  const wb = wasmBackend();
  return wb != null && getInstance(wb.mem, lanes) != null;
}

/**
 * The channel count the module runs with for x [..., c]: c when a multiple of 4; 4 for 1 or 2
 * channels (a vector then holds 4 / c consecutive pixels, lane j of channel j % c, their sums
 * added per channel afterwards) when x's size is a multiple of 4; else null (the tensor path).
 */
function laneChannels(x: tf.Tensor): number | null {
  const c = x.shape[x.rank - 1];
  if (c % 4 === 0) return c;
  return (c === 1 || c === 2) && x.size % 4 === 0 ? 4 : null;
}

function slopeOf(act: BnActivation): number {
  return act === 'none' ? 1 : act === 'relu' ? 0 : act.leakyRelu;
}

/**
 * The activation alone (LeakyReLU, ReLU; none returns x): on wasm one SIMD pass each way,
 * y = x > 0 ? x : alpha * x and dx = dy * (x > 0 ? 1 : alpha), the same values as the tensor path
 * (leakyRelu, relu of layers.ts: x * step(x, alpha), dy * step(x, alpha)), which runs elsewhere.
 */
export function applyActivation<T extends tf.Tensor>(x: T, act: BnActivation): T {
  if (act === 'none') return x;
  if (!activationFused(x)) return act === 'relu' ? relu(x) : leakyRelu(x, act.leakyRelu);
  const alpha = slopeOf(act);
  const nvec = x.size / 4;
  const f = customGradient((xx: tf.Tensor, save: tf.GradSaveFunc) => {
    const { be, mem } = wasmBackend()!;
    const inst = getInstance(mem, 4)!;
    const y = heapTensor(be, xx.shape);
    inst.exports.afwd(heapOffset(be, xx), heapOffset(be, y), nvec, alpha);
    save([xx]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const w = wasmBackend();
        if (w == null) throw new Error('bn-act: the backward pass needs the wasm backend of its forward pass');
        const dx = heapTensor(w.be, dy.shape);
        inst.exports.abwd(heapOffset(w.be, saved[0]), heapOffset(w.be, dy), heapOffset(w.be, dx), nvec, alpha);
        return dx;
      },
    };
  });
  return f(x) as T;
}

/** True when {@link applyActivation} takes the wasm path for x (float32, size a multiple of 4). */
export function activationFused(x: tf.Tensor): boolean {
  if (x.dtype !== 'float32' || x.size % 4 !== 0 || x.size === 0) return false;
  const wb = wasmBackend();
  return wb != null && getInstance(wb.mem, 4) != null;
}

/**
 * act(BatchNorm(x)) in training mode over all axes but the last, eps as PyTorch's default; returns
 * the output and the batch statistics (kept tensors the caller disposes, for the running
 * statistics), as batchNormTrain does. Gradients to x, gamma and beta.
 */
export function batchNormAct<T extends tf.Tensor>(x: T, gamma: tf.Tensor1D, beta: tf.Tensor1D, act: BnActivation, eps = 1e-5): { y: T; stats: BatchStats } {
  if (!bnActFused(x)) {
    const { y, stats } = batchNormTrain(x, gamma, beta, eps);
    return { y: applyActivation(y, act), stats };
  }
  const c = x.shape[x.rank - 1];
  const m = x.size / c;
  const alpha = slopeOf(act);
  const cc = laneChannels(x)!; // the module's channels: c, or 4 lanes for 1 or 2 channels
  const rows = x.size / cc;
  const O = layout(cc);
  /** A per-channel array spread over the module's lanes (lane j holds channel j % c). */
  const lanes = (v: Float32Array): Float32Array => (cc === c ? v : Float32Array.from({ length: cc }, (_, j) => v[j % c]));
  /** Channel k's float64 sum at byte offset `at` of the scratch: its lanes' sums added. */
  const channelTotal = (d: DataView, base: number, at: number, k: number): number => {
    let t = 0;
    for (let j = k; j < cc; j += c) t += d.getFloat64(base + at + 8 * j, true);
    return t;
  };
  let stats: BatchStats | null = null;
  const f = customGradient((xx: tf.Tensor, gt: tf.Tensor, bt: tf.Tensor, save: tf.GradSaveFunc) => {
    const { be, mem } = wasmBackend()!;
    const inst = getInstance(mem, cc)!;
    const gv = Float32Array.from(readValues(gt));
    const bv = Float32Array.from(readValues(bt));
    const y = heapTensor(be, xx.shape);
    const scratch = heapTensor(be, [O.floats]);
    const so = heapOffset(be, scratch);
    const xo = heapOffset(be, xx);
    let heap = new Float32Array(mem.buffer);
    heap.fill(0, so / 4, (so + O.A) / 4);
    // the shift: x's first pixel, channel by channel (the same value in every lane of a channel)
    for (let j = 0; j < cc; j++) heap[(so + O.A) / 4 + j] = heap[xo / 4 + (j % c)];
    inst.exports.fsum(xo, so, rows, CHUNK);
    heap = new Float32Array(mem.buffer);
    const dv = new DataView(mem.buffer);
    const mean = new Float32Array(c);
    const variance = new Float32Array(c);
    const invstd = new Float64Array(c);
    const scale = new Float32Array(c);
    for (let k = 0; k < c; k++) {
      const d1 = channelTotal(dv, so, O.TS, k) / m;
      const d2 = channelTotal(dv, so, O.TQ, k) / m;
      mean[k] = heap[(so + O.A) / 4 + k] + d1;
      variance[k] = Math.max(0, d2 - d1 * d1);
      invstd[k] = 1 / Math.sqrt(variance[k] + eps);
      scale[k] = gv[k] * invstd[k];
    }
    const meanL = lanes(mean), scaleL = lanes(scale), betaL = lanes(bv);
    heap.set(meanL, (so + O.A) / 4);
    heap.set(scaleL, (so + O.B) / 4);
    heap.set(betaL, (so + O.C) / 4);
    heap.fill(alpha, (so + O.ALPHA) / 4, (so + O.ALPHA) / 4 + 4);
    inst.exports.fapply(xo, heapOffset(be, y), so, rows);
    scratch.dispose();
    stats = { mean: tf.keep(tf.tensor1d(mean)), variance: tf.keep(tf.tensor1d(variance)), count: m };
    save([xx]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const w = wasmBackend();
        if (w == null) throw new Error('bn-act: the backward pass needs the wasm backend of its forward pass');
        const sx = saved[0];
        const dx = heapTensor(w.be, sx.shape);
        const sc = heapTensor(w.be, [O.floats]);
        const so2 = heapOffset(w.be, sc);
        const h = new Float32Array(w.mem.buffer);
        h.fill(0, so2 / 4, (so2 + O.A) / 4);
        h.set(meanL, (so2 + O.A) / 4);
        h.set(scaleL, (so2 + O.B) / 4);
        h.set(betaL, (so2 + O.C) / 4);
        h.fill(alpha, (so2 + O.ALPHA) / 4, (so2 + O.ALPHA) / 4 + 4);
        const sxo = heapOffset(w.be, sx), dyo = heapOffset(w.be, dy);
        inst.exports.bsum(sxo, dyo, so2, rows, CHUNK);
        const d = new DataView(w.mem.buffer);
        const dgamma = new Float32Array(c);
        const dbeta = new Float32Array(c);
        const coefD = new Float32Array(c);
        const coefE = new Float32Array(c);
        for (let k = 0; k < c; k++) {
          const sdz = channelTotal(d, so2, O.TS, k);
          const sdzxc = channelTotal(d, so2, O.TQ, k);
          dbeta[k] = sdz;
          dgamma[k] = sdzxc * invstd[k];
          // dx = scale * (dz - mean(dz) - xhat * mean(dz * xhat)), xhat = (x - mean) * invstd
          coefD[k] = -scale[k] * invstd[k] * invstd[k] * (sdzxc / m);
          coefE[k] = -scale[k] * (sdz / m);
        }
        const h2 = new Float32Array(w.mem.buffer);
        h2.set(lanes(coefD), (so2 + O.D) / 4);
        h2.set(lanes(coefE), (so2 + O.E) / 4);
        inst.exports.bapply(sxo, dyo, heapOffset(w.be, dx), so2, rows);
        sc.dispose();
        return [dx, tf.tensor1d(dgamma), tf.tensor1d(dbeta)];
      },
    };
  });
  const y = f(x, gamma, beta) as T;
  return { y, stats: stats! };
}
