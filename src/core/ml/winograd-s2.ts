/**
 * 4x4 stride-2 pad-1 convolutions (NHWC) and their transposes by Winograd F(3x3, 2x2) on the wasm
 * backend: 16 multiplications per 3x3 outputs of a 2x2 filter against 36, 2.25x fewer.
 *
 * - Forward: a 4x4 stride-2 convolution of x [n, 2H, 2W, ci] zero-padded by 1 is a 2x2 stride-1
 *   convolution of its space-to-depth S [n, H+1, W+1, 4ci] (S[u, v, (r, s, c)] = xpad[2u+r, 2v+s, c])
 *   by the filter W'[p, q, (r, s, c), o] = w[2p+r, 2q+s, c, o]. The input transform reads S's 4x4
 *   tiles straight from the padded input (4 channel groups, one per (r, s), each tap 2 pixels apart).
 * - Transposed (the input gradient of that convolution, a 4x4 stride-2 ConvTranspose2d): each of
 *   the four output phases (a, b) (out[2i+a, 2j+b]) is a 2x2 stride-1 convolution of dy padded by 1,
 *   starting at (a, b), by the taps PHASE_TAPS (layers.ts) of w; the output transform writes each
 *   phase's pixels 2 apart, so the phases interleave in place.
 *
 * Each 4x4 tile d and 2x2 filter g give a 3x3 output tile y = G^T [ (A g A^T) (.) (B^T d B) ] G, the
 * transposition of F(2x2, 3x3) (winograd.ts: the same B, with A and G swapping roles); the 0.5 of
 * G^T is folded into the filter transform, so the output transform only adds. The 16 products
 * [tiles, inC] x [inC, outC] are winograd.ts's `mm`. Tiles start every 3 pixels; the last row and
 * column of tiles start at size - 3 instead (overlapping the one before, whose shared outputs are
 * written twice), so no size needs to be a multiple of 3 and nothing is cropped. The input is
 * copied once, zero-padded, inside the backend's heap; nothing else leaves it.
 *
 * Pure module: WebAssembly is reached through globalThis (wasm-heap.ts); no Node or DOM APIs.
 */
import * as tf from '@tensorflow/tfjs';
import { forLoop, op } from './wasm-kernels';
import { mmFunction, mmtFunction, wasmBackend } from './winograd';
import { assembleModule, heapInstance, heapOffset as offsetOf, heapTensor as makeTensor } from './wasm-heap';
import type { WasmBackendLike, WasmFunction, WasmInstance, WasmMemory } from './wasm-heap';

const g = op.get;
const s = op.set;
const ADD = op.f32x4add;
const SUB = op.f32x4sub;

/** The locals the three transforms share (indices), after their 7 parameters. */
interface TileLocals {
  nn: number; ty: number; tx: number; cb: number; mo: number; im: number; row: number; ctab: number; q: number; qc: number;
  /** The first of 16: the 16 buffers' byte offsets, loaded from the table. */
  p: number;
}

/**
 * A transform over every tile: params (base, tab: 0 and 1 in either order; n 2, img 3, ptab 4, th 5, tw 6); the 16
 * buffer offsets loaded from the int32 table at tab, L.mo zeroed; for each image nn (at base + nn *
 * img), tile row ty and tile column tx, L.q the tile's first byte (ptab[ty] + ptab[th + tx] from the
 * image), then `perTile(L, v)` (v: the first v128 local index) once.
 */
function tileFunction(nv128: number, perTile: (L: TileLocals, v: number) => number[], base = 0, tab = 1): WasmFunction {
  const P = { base, tab, n: 2, img: 3, ptab: 4, th: 5, tw: 6 };
  let next = 7;
  const L: TileLocals = { nn: next++, ty: next++, tx: next++, cb: next++, mo: next++, im: next++, row: next++, ctab: next++, q: next++, qc: next++, p: next };
  next += 16;
  const ni32 = next - 7;
  const body: number[] = [];
  for (let k = 0; k < 16; k++) body.push(...g(P.tab), ...op.i32load(4 * k), ...s(L.p + k));
  body.push(...op.i32(0), ...s(L.mo), ...g(P.ptab), ...g(P.th), ...op.i32(4), ...op.mul, ...op.add, ...s(L.ctab));
  const overX = forLoop(L.tx, g(P.tw), [
    ...g(L.row), ...g(L.ctab), ...g(L.tx), ...op.i32(4), ...op.mul, ...op.add, ...op.i32load(0), ...op.add, ...s(L.q),
    ...perTile(L, next),
  ]);
  const overY = forLoop(L.ty, g(P.th), [
    ...g(L.im), ...g(P.ptab), ...g(L.ty), ...op.i32(4), ...op.mul, ...op.add, ...op.i32load(0), ...op.add, ...s(L.row),
    ...overX,
  ]);
  body.push(...forLoop(L.nn, g(P.n), [...g(P.base), ...g(L.nn), ...g(P.img), ...op.mul, ...op.add, ...s(L.im), ...overY]), ...op.end);
  return { nparams: 7, ni32, nv128, body };
}

/** do { inner } while ((L.cb += 16) < cBytes), L.cb from 0: the channel groups of 4 of a tile. */
function overChannels(L: TileLocals, cBytes: number, inner: number[]): number[] {
  return [...op.i32(0), ...s(L.cb), ...op.loop, ...inner,
    ...g(L.cb), ...op.i32(16), ...op.add, ...op.tee(L.cb), ...op.i32(cBytes), ...op.ltS, ...op.brIf(0), ...op.end];
}

/**
 * vin(x, vtab, n, img, ptab, th, tw): the input transform V = B^T d B of every 4x4 tile into the
 * 16 buffers V_k [tiles, groups * C] whose byte offsets the int32 table at vtab holds. Image nn
 * starts at x + nn * img; tile (ty, tx) at the byte offsets ptab[ty] + ptab[th + tx] from it; tap
 * (i, j) of channel group gr at taps[i * 4 + j] + groups[gr] from there (all bytes, baked in).
 */
function vinFunction(taps: number[], groups: number[], cBytes: number): WasmFunction {
  return tileFunction(32, (L, v) => {
    const D = v; // 16 v128: the tile
    const T = v + 16; // 16 v128: d B
    const overGroups: number[] = [];
    for (const gOff of groups) {
      const inner: number[] = [...g(L.q), ...g(L.cb), ...op.add, ...s(L.qc)];
      for (let k = 0; k < 16; k++) inner.push(...g(L.qc), ...op.v128load(taps[k] + gOff), ...s(D + k));
      for (let r = 0; r < 4; r++) {
        const d = (c: number) => g(D + r * 4 + c);
        const t = (c: number) => T + r * 4 + c;
        inner.push(...d(0), ...d(2), ...SUB, ...s(t(0)));
        inner.push(...d(1), ...d(2), ...ADD, ...s(t(1)));
        inner.push(...d(2), ...d(1), ...SUB, ...s(t(2)));
        inner.push(...d(1), ...d(3), ...SUB, ...s(t(3)));
      }
      const store = (k: number, a: number, b: number, sub: boolean) => [
        ...g(L.p + k), ...g(L.mo), ...op.add, ...g(T + a), ...g(T + b), ...(sub ? SUB : ADD), ...op.v128store(0)];
      for (let j = 0; j < 4; j++) {
        inner.push(...store(0 * 4 + j, 0 * 4 + j, 2 * 4 + j, true));
        inner.push(...store(1 * 4 + j, 1 * 4 + j, 2 * 4 + j, false));
        inner.push(...store(2 * 4 + j, 2 * 4 + j, 1 * 4 + j, true));
        inner.push(...store(3 * 4 + j, 1 * 4 + j, 3 * 4 + j, true));
      }
      inner.push(...g(L.mo), ...op.i32(16), ...op.add, ...s(L.mo));
      overGroups.push(...overChannels(L, cBytes, inner));
    }
    return overGroups;
  });
}

/**
 * vout(mtab, y, n, img, ptab, th, tw): the output transform G'^T M G' (G'^T = [[1, 1, 1, 0],
 * [0, 1, -1, 0], [0, 1, 1, 1]]) of the products M_k [tiles, C] into y: output (i, j) of tile
 * (ty, tx) of image nn at y + nn * img + ptab[ty] + ptab[th + tx] + outs[i * 3 + j] (bytes).
 */
function voutFunction(outs: number[], cBytes: number): WasmFunction {
  return tileFunction(28, (L, v) => {
    const M = v; // 16 v128
    const S = v + 16; // 12 v128: G'^T M (3x4)
    const inner: number[] = [...g(L.q), ...g(L.cb), ...op.add, ...s(L.qc)];
    for (let k = 0; k < 16; k++) inner.push(...g(L.p + k), ...g(L.mo), ...op.add, ...op.v128load(0), ...s(M + k));
    for (let j = 0; j < 4; j++) {
      const m = (i: number) => g(M + i * 4 + j);
      inner.push(...m(0), ...m(1), ...ADD, ...m(2), ...ADD, ...s(S + j));
      inner.push(...m(1), ...m(2), ...SUB, ...s(S + 4 + j));
      inner.push(...m(1), ...m(2), ...ADD, ...m(3), ...ADD, ...s(S + 8 + j));
    }
    for (let a = 0; a < 3; a++) {
      const sv = (j: number) => g(S + a * 4 + j);
      inner.push(...g(L.qc), ...sv(0), ...sv(1), ...ADD, ...sv(2), ...ADD, ...op.v128store(outs[a * 3]));
      inner.push(...g(L.qc), ...sv(1), ...sv(2), ...SUB, ...op.v128store(outs[a * 3 + 1]));
      inner.push(...g(L.qc), ...sv(1), ...sv(2), ...ADD, ...sv(3), ...ADD, ...op.v128store(outs[a * 3 + 2]));
    }
    inner.push(...g(L.mo), ...op.i32(16), ...op.add, ...s(L.mo));
    return overChannels(L, cBytes, inner);
  }, 1, 0);
}

/**
 * gin(dy, mtab, n, img, ptab, th, tw): the output-gradient transform dM = G' dY G'^T (G' the
 * transpose of vout's G'^T) of each 3x3 block of dy into the 16 buffers dM_k [tiles, C]: entry
 * (i, j) of tile (ty, tx) of image nn at dy + nn * img + ptab[ty] + ptab[th + tx] + ins[i * 3 + j].
 */
function ginFunction(ins: number[], cBytes: number): WasmFunction {
  return tileFunction(21, (L, v) => {
    const Y = v; // 9 v128
    const E = v + 9; // 12 v128: G' dY (4x3)
    const inner: number[] = [...g(L.q), ...g(L.cb), ...op.add, ...s(L.qc)];
    for (let k = 0; k < 9; k++) inner.push(...g(L.qc), ...op.v128load(ins[k]), ...s(Y + k));
    for (let j = 0; j < 3; j++) {
      const y = (i: number) => g(Y + i * 3 + j);
      inner.push(...y(0), ...s(E + j));
      inner.push(...y(0), ...y(1), ...ADD, ...y(2), ...ADD, ...s(E + 3 + j));
      inner.push(...y(0), ...y(1), ...SUB, ...y(2), ...ADD, ...s(E + 6 + j));
      inner.push(...y(2), ...s(E + 9 + j));
    }
    const store = (k: number, val: number[]) => [...g(L.p + k), ...g(L.mo), ...op.add, ...val, ...op.v128store(0)];
    for (let i = 0; i < 4; i++) {
      const e = (j: number) => g(E + i * 3 + j);
      inner.push(...store(i * 4, e(0)));
      inner.push(...store(i * 4 + 1, [...e(0), ...e(1), ...ADD, ...e(2), ...ADD]));
      inner.push(...store(i * 4 + 2, [...e(0), ...e(1), ...SUB, ...e(2), ...ADD]));
      inner.push(...store(i * 4 + 3, e(2)));
    }
    inner.push(...g(L.mo), ...op.i32(16), ...op.add, ...s(L.mo));
    return overChannels(L, cBytes, inner);
  });
}

/**
 * vin's byte offsets for the space-to-depth tiles of a padded input [.., wp, ci]: tap (i, j) of a
 * 4x4 tile 2 pixels apart, and the 4 channel groups (r, s) one pixel apart, as the forward
 * convolution and its filter gradient read them.
 */
function spaceToDepthTaps(wp: number, ci: number): { taps: number[]; groups: number[] } {
  const taps: number[] = [];
  for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) taps.push((2 * i * wp + 2 * j) * ci * 4);
  return { taps, groups: [0, ci * 4, wp * ci * 4, (wp + 1) * ci * 4] };
}

/** Tile starts along a side of `size` outputs: every 3, the last at size - 3. */
function tileStarts(size: number): number[] {
  const t = Math.ceil(size / 3);
  return Array.from({ length: t }, (_, i) => Math.min(3 * i, size - 3));
}

/**
 * Writes the 16 transformed values U = A' g A'^T (A' = [[1, 0], [.5, .5], [.5, -.5], [0, -1]]) of
 * the 2x2 filter g = [[g00, g01], [g10, g11]] to heap[base[k] + e], k = i * 4 + j.
 */
function writeU(heap: Float32Array, base: number[], e: number, g00: number, g01: number, g10: number, g11: number): void {
  // t = A' g (4x2), rows i
  const t00 = g00, t01 = g01;
  const t10 = 0.5 * (g00 + g10), t11 = 0.5 * (g01 + g11);
  const t20 = 0.5 * (g00 - g10), t21 = 0.5 * (g01 - g11);
  const t30 = -g10, t31 = -g11;
  heap[base[0] + e] = t00; heap[base[1] + e] = 0.5 * (t00 + t01); heap[base[2] + e] = 0.5 * (t00 - t01); heap[base[3] + e] = -t01;
  heap[base[4] + e] = t10; heap[base[5] + e] = 0.5 * (t10 + t11); heap[base[6] + e] = 0.5 * (t10 - t11); heap[base[7] + e] = -t11;
  heap[base[8] + e] = t20; heap[base[9] + e] = 0.5 * (t20 + t21); heap[base[10] + e] = 0.5 * (t20 - t21); heap[base[11] + e] = -t21;
  heap[base[12] + e] = t30; heap[base[13] + e] = 0.5 * (t30 + t31); heap[base[14] + e] = 0.5 * (t30 - t31); heap[base[15] + e] = -t31;
}

/**
 * The forward's 16 transformed filters [4ci, co] of w [4, 4, ci, co] written to the heap at the
 * float offsets `base`: row (r * 2 + s) * ci + c holds g[p][q] = w[2p + r, 2q + s, c, o].
 */
function s2dFilters(heap: Float32Array, base: number[], wv: Float32Array, ci: number, co: number): void {
  const cc = ci * co;
  for (let r = 0; r < 2; r++) for (let sc = 0; sc < 2; sc++) {
    const out = (r * 2 + sc) * cc;
    const w00 = (r * 4 + sc) * cc, w01 = (r * 4 + 2 + sc) * cc, w10 = ((2 + r) * 4 + sc) * cc, w11 = ((2 + r) * 4 + 2 + sc) * cc;
    for (let e = 0; e < cc; e++) writeU(heap, base, out + e, wv[w00 + e], wv[w01 + e], wv[w10 + e], wv[w11 + e]);
  }
}

// output phase a reads dy rows (m - 1, m) with taps (3, 1) for a = 0, (m, m + 1) with taps (2, 0) for a = 1
const PHASE_TAPS = [[3, 1], [2, 0]];

/**
 * Phase (a, b)'s 16 transformed filters [co, ci] of w [4, 4, ci, co] written to the heap at the
 * float offsets `base`: g[u][v] = w[PHASE_TAPS[a][u], PHASE_TAPS[b][v], c, o] at row o, column c.
 */
function phaseFilters(heap: Float32Array, base: number[], wv: Float32Array, ci: number, co: number, a: number, b: number): void {
  const cc = ci * co;
  const [u0, u1] = PHASE_TAPS[a], [v0, v1] = PHASE_TAPS[b];
  const w00 = (u0 * 4 + v0) * cc, w01 = (u0 * 4 + v1) * cc, w10 = (u1 * 4 + v0) * cc, w11 = (u1 * 4 + v1) * cc;
  for (let o = 0; o < co; o++) for (let c = 0; c < ci; c++) {
    const i = c * co + o;
    writeU(heap, base, o * ci + c, wv[w00 + i], wv[w01 + i], wv[w10 + i], wv[w11 + i]);
  }
}

/**
 * x [n, h, w, c] zero-padded by `top` rows above, `left` columns before and zeros after, to
 * [n, hp, wp, c], as a new tensor in the backend's heap.
 */
function padCopy(be: WasmBackendLike, mem: WasmMemory, x: tf.Tensor4D, top = 1, left = 1, hp = x.shape[1] + 2, wp = x.shape[2] + 2): tf.Tensor4D {
  const [n, h, wd, c] = x.shape;
  const xp = makeTensor(be, [n, hp, wp, c]) as tf.Tensor4D;
  const heap = new Float32Array(mem.buffer);
  const xo = offsetOf(be, x) / 4;
  const po = offsetOf(be, xp) / 4;
  const row = wd * c;
  const gap = (wp - wd) * c; // this row's right pixels and the next row's left ones
  for (let b = 0; b < n; b++) {
    // zeros only where the copy does not write
    const img = po + b * hp * wp * c;
    heap.fill(0, img, img + (top * wp + left) * c);
    for (let r = 0; r < h; r++) {
      const src = xo + (b * h + r) * row;
      const dst = img + ((r + top) * wp + left) * c;
      heap.copyWithin(dst, src, src + row);
      heap.fill(0, dst + row, Math.min(dst + row + gap, img + hp * wp * c));
    }
    heap.fill(0, img + ((h + top) * wp + left) * c, img + hp * wp * c);
  }
  return xp;
}

function int32Table(values: number[]): tf.Tensor {
  return tf.tensor1d(Int32Array.from(values), 'int32');
}

/** The wasm backend, its memory and the module for this geometry, or null where the path does not apply. */
function setup(key: string, build: () => WasmFunction[], grad = false): { be: WasmBackendLike; mem: WasmMemory; inst: WasmInstance } | null {
  const wb = wasmBackend();
  if (wb == null) return null;
  const inst = heapInstance(wb.mem, key, (shared) => assembleModule(build(), grad ? ['vin', 'gin', 'mmt'] : ['vin', 'vout', 'mm'],
    grad ? ['winograd_s2_in', 'winograd_s2_grad_in', 'winograd_s2_filter_products'] : ['winograd_s2_in', 'winograd_s2_out', 'winograd_s2_products'], shared));
  return inst == null ? null : { ...wb, inst };
}

/**
 * The 16 buffers [rows rounded up to a multiple of `multiple`, cols] (the rows past `rows` zeroed:
 * `mm` works 4 rows at a time, `mmt` a chunk) and the int32 table of their offsets.
 */
function buffers(be: WasmBackendLike, mem: WasmMemory, rows: number, cols: number, multiple = 4): { ts: tf.Tensor[]; tab: tf.Tensor } {
  const rp = Math.ceil(rows / multiple) * multiple;
  const ts = Array.from({ length: 16 }, () => makeTensor(be, [rp, cols]));
  const tab = int32Table(ts.map((t) => offsetOf(be, t)));
  if (rp > rows) {
    const heap = new Float32Array(mem.buffer);
    for (const t of ts) heap.fill(0, offsetOf(be, t) / 4 + rows * cols, offsetOf(be, t) / 4 + rp * cols);
  }
  return { ts, tab };
}

/**
 * True when the 4x4 stride-2 Winograd path runs for a convolution of x [n, 2H, 2W, ci] to co
 * channels (forward) or, with `transposed`, for the transposed convolution of dy [n, H, W, ci] to
 * co channels: the wasm backend, H and W >= 3, >= 32 channels, the input's a multiple of 4 and
 * the output's of 8 (the products' register block).
 */
export function winogradS2Applies(x: tf.Tensor4D, ci: number, co: number, transposed: boolean): boolean {
  const [, h, w] = x.shape;
  const sizes = transposed ? h >= 3 && w >= 3 : h % 2 === 0 && w % 2 === 0 && h >= 6 && w >= 6;
  return sizes && ci % 4 === 0 && co % 8 === 0 && ci >= 32 && co >= 32 && wasmBackend() != null;
}

/**
 * conv2d(x, w, stride 2, pad 1) for w [4, 4, ci, co] and x [n, 2H, 2W, ci], or null where the
 * path does not apply ({@link winogradS2Applies}).
 */
export function conv4x4s2Winograd(x: tf.Tensor4D, w: tf.Tensor4D): tf.Tensor4D | null {
  const [n, hx, wx, ci] = x.shape;
  const co = w.shape[3];
  if (w.shape[0] !== 4 || w.shape[1] !== 4 || w.shape[2] !== ci || !winogradS2Applies(x, ci, co, false)) return null;
  const h = hx / 2, wd = wx / 2;
  const wp = wx + 2;
  const env = setup(`s2f/${ci}/${co}/${wp}/${wd}`, () => {
    const { taps, groups } = spaceToDepthTaps(wp, ci);
    const outs: number[] = [];
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) outs.push((i * wd + j) * co * 4);
    return [vinFunction(taps, groups, ci * 4), voutFunction(outs, co * 4), mmFunction(4 * ci, co)];
  });
  if (env == null) return null;
  const { be, mem, inst } = env;
  return tf.tidy(() => {
    const wv = w.dataSync() as Float32Array; // a filter: small (a copy)
    const ut = Array.from({ length: 16 }, () => makeTensor(be, [4 * ci, co]));
    const utab = int32Table(ut.map((u) => offsetOf(be, u)));
    s2dFilters(new Float32Array(mem.buffer), ut.map((u) => offsetOf(be, u) / 4), wv, ci, co);
    const rows = tileStarts(h), cols = tileStarts(wd);
    const tiles = n * rows.length * cols.length;
    const xp = padCopy(be, mem, x);
    const v = buffers(be, mem, tiles, 4 * ci);
    const ptab = int32Table([...rows.map((r) => 2 * r * wp * ci * 4), ...cols.map((c) => 2 * c * ci * 4)]);
    inst.exports.vin(offsetOf(be, xp), offsetOf(be, v.tab), n, (hx + 2) * wp * ci * 4, offsetOf(be, ptab), rows.length, cols.length);
    xp.dispose();
    const m = buffers(be, mem, tiles, co);
    inst.exports.mm(offsetOf(be, v.tab), offsetOf(be, utab), offsetOf(be, m.tab), Math.ceil(tiles / 4) * 4);
    const y = makeTensor(be, [n, h, wd, co]) as tf.Tensor4D;
    const otab = int32Table([...rows.map((r) => r * wd * co * 4), ...cols.map((c) => c * co * 4)]);
    inst.exports.vout(offsetOf(be, m.tab), offsetOf(be, y), n, h * wd * co * 4, offsetOf(be, otab), rows.length, cols.length);
    return y;
  });
}

/**
 * The transposed convolution of dy [n, H, W, co] by w [4, 4, ci, co] (stride 2, pad 1: the input
 * gradient of conv2d(x, w, 2, 1) for x [n, 2H, 2W, ci]), or null where the path does not apply
 * ({@link winogradS2Applies} with co as the input's channels).
 */
export function convTranspose4x4s2Winograd(dy: tf.Tensor4D, w: tf.Tensor4D): tf.Tensor4D | null {
  const [n, h, wd, co] = dy.shape;
  const ci = w.shape[2];
  if (w.shape[0] !== 4 || w.shape[1] !== 4 || w.shape[3] !== co || !winogradS2Applies(dy, co, ci, true)) return null;
  const wp = wd + 2;
  const yw = 2 * wd;
  const env = setup(`s2t/${co}/${ci}/${wp}/${yw}`, () => {
    const taps: number[] = [];
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) taps.push((i * wp + j) * co * 4);
    const outs: number[] = [];
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) outs.push((2 * i * yw + 2 * j) * ci * 4);
    return [vinFunction(taps, [0], co * 4), voutFunction(outs, ci * 4), mmFunction(co, ci)];
  });
  if (env == null) return null;
  const { be, mem, inst } = env;
  return tf.tidy(() => {
    const wv = w.dataSync() as Float32Array; // a filter: small (a copy)
    const uts = [0, 1, 2, 3].map(() => Array.from({ length: 16 }, () => makeTensor(be, [co, ci])));
    const utabs = uts.map((ut) => int32Table(ut.map((u) => offsetOf(be, u))));
    const heapU = new Float32Array(mem.buffer);
    uts.forEach((ut, ab) => phaseFilters(heapU, ut.map((u) => offsetOf(be, u) / 4), wv, ci, co, ab >> 1, ab & 1));
    const rows = tileStarts(h), cols = tileStarts(wd);
    const tiles = n * rows.length * cols.length;
    const dyp = padCopy(be, mem, dy);
    const v = buffers(be, mem, tiles, co);
    const m = buffers(be, mem, tiles, ci);
    const ptab = int32Table([...rows.map((r) => r * wp * co * 4), ...cols.map((c) => c * co * 4)]);
    const otab = int32Table([...rows.map((r) => 2 * r * yw * ci * 4), ...cols.map((c) => 2 * c * ci * 4)]);
    const y = makeTensor(be, [n, 2 * h, yw, ci]) as tf.Tensor4D;
    for (let ab = 0; ab < 4; ab++) {
      const a = ab >> 1, b = ab & 1;
      inst.exports.vin(offsetOf(be, dyp) + (a * wp + b) * co * 4, offsetOf(be, v.tab), n, (h + 2) * wp * co * 4, offsetOf(be, ptab), rows.length, cols.length);
      inst.exports.mm(offsetOf(be, v.tab), offsetOf(be, utabs[ab]), offsetOf(be, m.tab), Math.ceil(tiles / 4) * 4);
      inst.exports.vout(offsetOf(be, m.tab), offsetOf(be, y) + (a * yw + b) * ci * 4, n, 2 * h * yw * ci * 4, offsetOf(be, otab), rows.length, cols.length);
    }
    return y;
  });
}

/** Column j of the first row of A'^T dU (dU_k at heap[base[k] + f]): u0j + (u1j + u2j) / 2. */
function rowA(heap: Float32Array, base: number[], f: number, j: number): number {
  return heap[base[j] + f] + 0.5 * (heap[base[4 + j] + f] + heap[base[8 + j] + f]);
}
/** Column j of the second row of A'^T dU: (u1j - u2j) / 2 - u3j. */
function rowB(heap: Float32Array, base: number[], f: number, j: number): number {
  return 0.5 * (heap[base[4 + j] + f] - heap[base[8 + j] + f]) - heap[base[12 + j] + f];
}

/**
 * The filter gradient [4, 4, ci, co] of conv2d(x, w, stride 2, pad 1) for x [n, 2H, 2W, ci] and the
 * output gradient dy [n, H, W, co] (also the filter gradient of the transposed convolution, with
 * the roles of its input and output gradient swapped), or null where the path does not apply
 * ({@link winogradS2Applies}). dU_k = V_k^T dM_k summed over the tiles (V of the space-to-depth
 * input as in the forward, dM = G' dY G'^T of each 3x3 block of dy), then A'^T dU A'. Tiles start
 * every 3 outputs here (no overlap: each output counted once), dy zero-padded to whole tiles.
 */
export function filterGrad4x4s2Winograd(x: tf.Tensor4D, dy: tf.Tensor4D): tf.Tensor4D | null {
  const [n, hx, wx, ci] = x.shape;
  const [, h, wd, co] = dy.shape;
  if (dy.shape[0] !== n || 2 * h !== hx || 2 * wd !== wx || !winogradS2Applies(x, ci, co, false)) return null;
  const th = Math.ceil(h / 3), tw = Math.ceil(wd / 3);
  const hp = 2 * (3 * th + 1), wp = 2 * (3 * tw + 1);
  const dw = 3 * tw;
  const env = setup(`s2g/${ci}/${co}/${wp}/${dw}`, () => {
    const { taps, groups } = spaceToDepthTaps(wp, ci);
    const ins: number[] = [];
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) ins.push((i * dw + j) * co * 4);
    return [vinFunction(taps, groups, ci * 4), ginFunction(ins, co * 4), mmtFunction(4 * ci, co)];
  }, true);
  if (env == null) return null;
  const { be, mem, inst } = env;
  const CHUNK = 32; // tiles of V and dM summed at a time (their rows in L1, as winograd.ts)
  return tf.tidy(() => {
    const tiles = n * th * tw;
    const tp = Math.ceil(tiles / CHUNK) * CHUNK;
    const rows = Array.from({ length: th }, (_, i) => 3 * i), cols = Array.from({ length: tw }, (_, i) => 3 * i);
    const xp = padCopy(be, mem, x, 1, 1, hp, wp);
    const v = buffers(be, mem, tiles, 4 * ci, CHUNK);
    const ptab = int32Table([...rows.map((r) => 2 * r * wp * ci * 4), ...cols.map((c) => 2 * c * ci * 4)]);
    inst.exports.vin(offsetOf(be, xp), offsetOf(be, v.tab), n, hp * wp * ci * 4, offsetOf(be, ptab), th, tw);
    xp.dispose();
    const dyp = 3 * th === h && 3 * tw === wd ? dy : padCopy(be, mem, dy, 0, 0, 3 * th, dw);
    const m = buffers(be, mem, tiles, co, CHUNK);
    const qtab = int32Table([...rows.map((r) => r * dw * co * 4), ...cols.map((c) => c * co * 4)]);
    inst.exports.gin(offsetOf(be, dyp), offsetOf(be, m.tab), n, 3 * th * dw * co * 4, offsetOf(be, qtab), th, tw);
    if (dyp !== dy) dyp.dispose();
    const cs = Array.from({ length: 16 }, () => makeTensor(be, [4 * ci, co]));
    const ctab = int32Table(cs.map((c) => offsetOf(be, c)));
    const heap = new Float32Array(mem.buffer);
    for (const c of cs) heap.fill(0, offsetOf(be, c) / 4, offsetOf(be, c) / 4 + 4 * ci * co);
    inst.exports.mmt(offsetOf(be, v.tab), offsetOf(be, m.tab), offsetOf(be, ctab), tp, CHUNK);
    // dg = A'^T dU A' (A'^T = [[1, .5, .5, 0], [0, .5, -.5, -1]]) per (row, o), read from the heap
    // before any other allocation; row (r * 2 + s) * ci + c of dg[p][q] is dW[2p + r, 2q + s, c, o]
    const base = cs.map((c) => offsetOf(be, c) / 4);
    const out = new Float32Array(16 * ci * co);
    const cc = ci * co;
    for (let r = 0; r < 2; r++) for (let sc = 0; sc < 2; sc++) {
      const from = (r * 2 + sc) * cc;
      // dW rows 2p + r, columns 2q + s
      const o00 = (r * 4 + sc) * cc, o01 = (r * 4 + 2 + sc) * cc, o10 = ((2 + r) * 4 + sc) * cc, o11 = ((2 + r) * 4 + 2 + sc) * cc;
      for (let e = 0; e < cc; e++) {
        const f = from + e;
        // t = A'^T dU (2x4): rows a and b
        const a0 = rowA(heap, base, f, 0), a1 = rowA(heap, base, f, 1), a2 = rowA(heap, base, f, 2), a3 = rowA(heap, base, f, 3);
        const b0 = rowB(heap, base, f, 0), b1 = rowB(heap, base, f, 1), b2 = rowB(heap, base, f, 2), b3 = rowB(heap, base, f, 3);
        out[o00 + e] = a0 + 0.5 * (a1 + a2);
        out[o01 + e] = 0.5 * (a1 - a2) - a3;
        out[o10 + e] = b0 + 0.5 * (b1 + b2);
        out[o11 + e] = 0.5 * (b1 - b2) - b3;
      }
    }
    return tf.tensor4d(out, [4, 4, ci, co]);
  });
}
