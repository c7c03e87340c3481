/**
 * Layers as plain functions over explicit weight tensors, NHWC layout, with hand-written
 * gradients (tf.customGrad) built only from ops that are fast on every backend.
 *
 * Why: on the wasm backend (the best one available without libtensorflow) the built-in
 * `Conv2DBackpropInput` is slow and `Conv2DBackpropFilter` is missing, and many element-wise
 * kernels (`LeakyRelu`, `Maximum`, `Sum` over leading axes, `Greater`, `Select`, `Tanh`...) run
 * 20-50x slower than the XNNPACK-backed ones (`Relu`, `Add`, `Mul`, `Step`, `MatMul`, `Conv2D`).
 * Measured on a 2-core EPYC (Zen 5), wasm SIMD, 8x32x32x64 tensors: forward Conv2D 3x3 ~30 GFLOPS,
 * LeakyRelu 0.18 Gelem/s vs Relu 5 Gelem/s, Sum over [0,1,2] 0.44 Gelem/s vs a global AvgPool
 * ~3 Gelem/s. So:
 * - on wasm, 3x3 stride-1 pad-1 convolutions with >= 32 channels run as Winograd in the backend's
 *   heap: forward and input gradient as F(4x4, 3x3) where the sizes are multiples of 4
 *   (winograd-f43.ts, 4x fewer multiplications), else F(2x2, 3x3) (winograd.ts, 2.25x fewer),
 *   the filter gradient as F(2x2, 3x3);
 *   4x4 stride-2 pad-1 forward convolutions as Winograd F(3x3, 2x2) of the space-to-depth input,
 *   their input gradients (transposed convolutions) as F(3x3, 2x2) per output phase, and their
 *   filter gradients by the same transforms (winograd-s2.ts), also 2.25x fewer;
 * - convolution input gradients are forward convolutions (stride 1: flipped, transposed filter;
 *   4x4 stride 2 pad 1: a sub-pixel decomposition, four 2x2 convolutions, one per output phase,
 *   interleaved by stack/reshape/transpose);
 * - convolution filter gradients: on wasm/cpu a hand-assembled WebAssembly SIMD kernel
 *   (wasm-kernels.ts); elsewhere, or for channel counts it does not handle, forward convolutions
 *   (x^T correlated with dy^T at dilation = stride) or a matrix product (1x1, few channels);
 * - transposed convolutions are the input gradient of a convolution (forward) and a strided
 *   forward convolution (input gradient);
 * - channel reductions (BatchNorm statistics, bias gradients) are global average pools;
 * - LeakyReLU is x * step(x, alpha), its gradient dy * step(x, alpha).
 * - BatchNorm in training mode and the activation after it: on wasm, one fused WebAssembly SIMD
 *   pass each way over the backend's heap (bn-act.ts), else batchNormTrain and the activation below.
 *
 * Filter layouts follow tfjs: conv2d filter [kh, kw, inC, outC]; conv2dTranspose filter
 * [kh, kw, outC, inC] (the filter of the convolution it is the transpose of). Padding is symmetric
 * `pad` pixels as in PyTorch (`Conv2d(k, s, p)`, `ConvTranspose2d(k, s, p)`).
 */
import * as tf from '@tensorflow/tfjs';
import { customGradient } from './backend';
import { convFilterGradSimd, readValues } from './wasm-kernels';
import { conv3x3Winograd, filterGrad3x3Winograd } from './winograd';
import { conv3x3WinogradF43 } from './winograd-f43';
import { conv4x4s2Winograd, convTranspose4x4s2Winograd, filterGrad4x4s2Winograd } from './winograd-s2';

// ---------------------------------------------------------------------------------------------
// Small helpers

/** The weights' seeded stream (mulberry32, src/core/random.ts), re-exported for the model code. */
export { mulberry32 } from '../random';

/** Float32Array of `n` values uniform in [-bound, bound) from `rng`. */
export function uniformArray(n: number, bound: number, rng: () => number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rng() * 2 - 1) * bound;
  return a;
}

/**
 * Per-channel mean of a tensor [..., C] over all other axes, as [1, C]. Computed with a global
 * average pool (XNNPACK on wasm: ~3 Gelem/s, versus 0.06 for `Sum` over axis 0 and 0.3 for a
 * matrix product with ones, whose right operand is repacked at every call).
 */
export function channelMean(x: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() => {
    const c = x.shape[x.rank - 1];
    const m = x.size / c;
    // [1, rows, cols, C] with rows * cols = m and a window covering everything
    let rows = x.rank >= 3 ? x.shape.slice(0, x.rank - 2).reduce((a, b) => a * b, 1) : 1;
    let cols = m / rows;
    if (x.rank < 3) {
      rows = m;
      cols = 1;
    }
    const pooled = tf.avgPool(x.reshape([1, rows, cols, c]) as tf.Tensor4D, [rows, cols], 1, 'valid');
    return pooled.reshape([1, c]) as tf.Tensor2D;
  });
}

/** Per-channel sum of a tensor [..., C] over all other axes, as [C]. */
export function channelSum(x: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => {
    const c = x.shape[x.rank - 1];
    return tf.mul(channelMean(x), x.size / c).reshape([c]) as tf.Tensor1D;
  });
}

/** Spatial flip and in/out channel swap of a conv filter [kh,kw,a,b] -> [kh,kw,b,a] flipped. */
export function flipTranspose(w: tf.Tensor4D): tf.Tensor4D {
  if (inMemoryBackend() && w.dtype === 'float32') {
    // a filter is small: one loop instead of the gather and transpose kernels (slow on wasm)
    const [kh, kw, a, b] = w.shape;
    const src = readValues(w);
    const out = new Float32Array(w.size);
    for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) {
      const from = ((kh - 1 - i) * kw + (kw - 1 - j)) * a * b;
      const to = (i * kw + j) * b * a;
      for (let p = 0; p < a; p++) for (let q = 0; q < b; q++) out[to + q * a + p] = src[from + p * b + q];
    }
    return tf.tensor4d(out, [kh, kw, b, a]);
  }
  return tf.tidy(() => {
    const [kh, kw, a, b] = w.shape;
    const rev = new Int32Array(kh * kw);
    for (let i = 0; i < kh * kw; i++) rev[i] = kh * kw - 1 - i;
    const flipped = tf.gather(w.reshape([kh * kw, a * b]), tf.tensor1d(rev, 'int32')).reshape([kh, kw, a, b]);
    return tf.transpose(flipped, [0, 1, 3, 2]) as tf.Tensor4D;
  });
}

function outSize(inSize: number, k: number, s: number, p: number): number {
  return Math.floor((inSize + 2 * p - k) / s) + 1;
}

// ---------------------------------------------------------------------------------------------
// Convolution primitives (no autograd: used inside the custom gradients)

/** Forward convolution, symmetric padding `pad`, NHWC. */
export function convForward(x: tf.Tensor4D, w: tf.Tensor4D, stride: number, pad: number): tf.Tensor4D {
  if (stride === 1 && pad === 1 && w.shape[0] === 3 && w.shape[1] === 3) {
    // wasm: Winograd F(4x4, 3x3) where the sizes are multiples of 4 (winograd-f43.ts), else
    // F(2x2, 3x3), 2.25x fewer multiplications (winograd.ts); null where neither applies
    const y = conv3x3WinogradF43(x, w) ?? conv3x3Winograd(x, w);
    if (y != null) return y;
  }
  if (stride === 2 && pad === 1 && w.shape[0] === 4 && w.shape[1] === 4) {
    // wasm, >= 32 channels: Winograd F(3x3, 2x2) of the space-to-depth input (winograd-s2.ts)
    const y = conv4x4s2Winograd(x, w);
    if (y != null) return y;
  }
  return tf.conv2d(x, w, stride, [[0, 0], [pad, pad], [pad, pad], [0, 0]]);
}

// Sub-pixel decomposition of the 4x4 stride-2 pad-1 transposed convolution: output phase a (row
// parity) reads dy rows (m-1, m) with filter taps (3, 1) for a = 0, and rows (m, m+1) with taps
// (2, 0) for a = 1; the same holds for columns.
const PHASE_TAPS = [[3, 1], [2, 0]];
const PHASE_PADS: [number, number][] = [[1, 0], [0, 1]];

// The same decomposition as one 3x3 convolution producing the four phases as channels (window
// offset u of dy padded by 1 uses tap KMAP[a][u], -1: unused). 2.25x the arithmetic, but one
// convolution instead of four plus a stack: faster when the output has few channels.
const KMAP = [[3, 1, -1], [-1, 2, 0]];
let subpixelSelect: tf.Tensor2D | null = null;
function subpixelSelection(): tf.Tensor2D {
  // rows: (u, v, a, b) in 3x3x2x2; cols: (kh, kw) in 4x4
  if (subpixelSelect == null || subpixelSelect.isDisposed) {
    const s = new Float32Array(36 * 16);
    for (let u = 0; u < 3; u++) for (let v = 0; v < 3; v++) for (let a = 0; a < 2; a++) for (let b = 0; b < 2; b++) {
      const kh = KMAP[a][u];
      const kw = KMAP[b][v];
      if (kh < 0 || kw < 0) continue;
      s[(((u * 3 + v) * 2 + a) * 2 + b) * 16 + kh * 4 + kw] = 1;
    }
    subpixelSelect = tf.keep(tf.tensor2d(s, [36, 16]));
  }
  return subpixelSelect;
}

let phaseIndex: tf.Tensor1D[] | null = null;
function phaseTapIndices(): tf.Tensor1D[] {
  if (phaseIndex == null || phaseIndex[0].isDisposed) {
    phaseIndex = [];
    for (let a = 0; a < 2; a++) for (let b = 0; b < 2; b++) {
      const idx: number[] = [];
      for (const kh of PHASE_TAPS[a]) for (const kw of PHASE_TAPS[b]) idx.push(kh * 4 + kw);
      phaseIndex.push(tf.keep(tf.tensor1d(idx, 'int32')));
    }
  }
  return phaseIndex;
}

/** True on the backends whose tensors live in this process's memory (a small loop beats a kernel call there). */
function inMemoryBackend(): boolean {
  const b = tf.getBackend();
  return b === 'wasm' || b === 'cpu';
}

/**
 * The four 2x2 filters [2, 2, co, ci] of the sub-pixel decomposition of a 4x4 filter w
 * [4, 4, ci, co], phase (a, b) at index a * 2 + b: f[u, v, o, c] = w[PHASE_TAPS[a][u], PHASE_TAPS[b][v], c, o].
 */
function phaseFilters(w: tf.Tensor4D): tf.Tensor4D[] {
  const [, , ci, co] = w.shape;
  const src = readValues(w);
  const outs: Float32Array[] = [];
  for (let a = 0; a < 2; a++) for (let b = 0; b < 2; b++) {
    const out = new Float32Array(4 * co * ci);
    for (let u = 0; u < 2; u++) for (let v = 0; v < 2; v++) {
      const from = (PHASE_TAPS[a][u] * 4 + PHASE_TAPS[b][v]) * ci * co;
      const to = (u * 2 + v) * co * ci;
      for (let c = 0; c < ci; c++) for (let o = 0; o < co; o++) out[to + o * ci + c] = src[from + c * co + o];
    }
    outs.push(out);
  }
  // tensors made after every read: a view of the backend's memory is valid until it allocates
  return outs.map((o) => tf.tensor4d(o, [2, 2, co, ci]));
}

/** out[n, 2i + a, 2j + b, c] = phases[a * 2 + b][n, i, j, c], as one loop (the stack and transpose kernels copy twice). */
function interleavePhases(phases: tf.Tensor4D[], shape: [number, number, number, number]): tf.Tensor4D {
  const [n, h, w, c] = shape;
  const oh = h / 2, ow = w / 2;
  const out = new Float32Array(n * h * w * c);
  const src = phases.map((p) => readValues(p));
  for (let a = 0; a < 2; a++) for (let b = 0; b < 2; b++) {
    const ph = src[a * 2 + b];
    for (let b0 = 0; b0 < n; b0++) for (let i = 0; i < oh; i++) {
      const rowOut = ((b0 * h + 2 * i + a) * w + b) * c;
      const rowIn = (b0 * oh + i) * ow * c;
      for (let j = 0; j < ow; j++) {
        const o = rowOut + 2 * j * c;
        const s0 = rowIn + j * c;
        for (let k = 0; k < c; k++) out[o + k] = ph[s0 + k];
      }
    }
  }
  return tf.tensor4d(out, shape);
}

/**
 * Gradient of `convForward(x, w, stride, pad)` with respect to x, given dy; equivalently the
 * transposed convolution of dy with w. `xShape` is the shape of x (resolves the ambiguity of
 * strided sizes). Implemented with forward convolutions only.
 */
export function convInputGrad(dy: tf.Tensor4D, w: tf.Tensor4D, stride: number, pad: number, xShape: [number, number, number, number]): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, ci] = w.shape;
    const [n, h, wd] = xShape;
    const [, oh, ow] = dy.shape;
    if (stride === 1 && kh - 1 - pad >= 0 && kw - 1 - pad >= 0 && oh === h + 2 * pad - kh + 1) {
      if (kh === 3 && kw === 3 && pad === 1) {
        const g = conv3x3WinogradF43(dy, w, true) ?? conv3x3Winograd(dy, w, true); // the flipped filter folded into its transform
        if (g != null) return g;
      }
      const ph = kh - 1 - pad;
      const pw = kw - 1 - pad;
      return tf.conv2d(dy, flipTranspose(w), 1, [[0, 0], [ph, ph], [pw, pw], [0, 0]]) as tf.Tensor4D;
    }
    if (stride === 2 && kh === 4 && kw === 4 && pad === 1 && h === 2 * oh && wd === 2 * ow) {
      // wasm, >= 32 channels: Winograd F(3x3, 2x2) per output phase, interleaved in place (winograd-s2.ts)
      const gw = convTranspose4x4s2Winograd(dy, w);
      if (gw != null) return gw;
      const co = w.shape[3];
      const wt = () => tf.transpose(w, [0, 1, 3, 2]).reshape([16, co * ci]);
      if (ci <= 8) {
        // few output channels: one 3x3 convolution producing the four phases
        const f = tf.matMul(subpixelSelection(), wt()).reshape([3, 3, 2, 2, co, ci]).transpose([0, 1, 4, 2, 3, 5]).reshape([3, 3, co, 4 * ci]) as tf.Tensor4D;
        const ph = tf.conv2d(dy, f, 1, [[0, 0], [1, 1], [1, 1], [0, 0]]);
        return ph.reshape([n, oh, ow, 2, 2, ci]).transpose([0, 1, 3, 2, 4, 5]).reshape([n, h, wd, ci]) as tf.Tensor4D;
      }
      // four 2x2 stride-1 convolutions (one per output phase), interleaved by stack + reshape +
      // transpose: ~2x faster on wasm than one 3x3 convolution producing all phases
      const idx = phaseTapIndices();
      const phases: tf.Tensor4D[] = [];
      const filters = inMemoryBackend() && w.dtype === 'float32' ? phaseFilters(w) : null;
      for (let a = 0; a < 2; a++) for (let b = 0; b < 2; b++) {
        const f = filters != null ? filters[a * 2 + b] : tf.gather(wt(), idx[a * 2 + b]).reshape([2, 2, co, ci]) as tf.Tensor4D;
        phases.push(tf.conv2d(dy, f, 1, [[0, 0], PHASE_PADS[a], PHASE_PADS[b], [0, 0]]));
      }
      if (filters != null) return interleavePhases(phases, [n, h, wd, ci]);
      // [n, oh, ow, (a, b), ci] -> [n, oh, a, ow, b, ci]
      return tf.stack(phases, 3).reshape([n, oh, ow, 2, 2, ci]).transpose([0, 1, 3, 2, 4, 5]).reshape([n, h, wd, ci]) as tf.Tensor4D;
    }
    // General case: dilate dy by the stride, pad, stride-1 convolution with the flipped filter.
    const co = dy.shape[3];
    let d: tf.Tensor4D = dy;
    if (stride > 1) {
      d = dy.reshape([n, oh, 1, ow, 1, co])
        .pad([[0, 0], [0, 0], [0, stride - 1], [0, 0], [0, stride - 1], [0, 0]])
        .reshape([n, oh * stride, ow * stride, co])
        .slice([0, 0, 0, 0], [n, (oh - 1) * stride + 1, (ow - 1) * stride + 1, co]) as tf.Tensor4D;
    }
    const top = kh - 1 - pad;
    const left = kw - 1 - pad;
    const bottom = h + kh - 1 - top - d.shape[1];
    const right = wd + kw - 1 - left - d.shape[2];
    const padSpec: tf.backend_util.ExplicitPadding = [[0, 0], [top, bottom], [left, right], [0, 0]];
    if (padSpec.some(([a, b]) => a < 0 || b < 0)) {
      // negative padding: pad generously then crop
      const pt = Math.max(top, 0), pb = Math.max(bottom, 0), pl = Math.max(left, 0), pr = Math.max(right, 0);
      const dp = d.pad([[0, 0], [pt, pb], [pl, pr], [0, 0]]).slice(
        [0, pt - top, pl - left, 0], [n, h + kh - 1, wd + kw - 1, co]) as tf.Tensor4D;
      return tf.conv2d(dp, flipTranspose(w), 1, 'valid');
    }
    return tf.conv2d(d, flipTranspose(w), 1, padSpec);
  });
}

/**
 * Gradient of `convForward(x, w, stride, pad)` with respect to w (shape [kh, kw, inC, outC]),
 * given dy. General case: a forward convolution of x^T ([inC, H, W, N]) with dy^T
 * ([OH, OW, N, outC]) at dilation = stride. 1x1 filters and filters with few inputs
 * (kh*kw*inC <= 32) use a matrix product instead (measured 3-10x faster on wasm there).
 */
export function convFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, stride: number, pad: number, kh: number, kw: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, wd, ci] = x.shape;
    const [, oh, ow, co] = dy.shape;
    const m = n * oh * ow;
    const backend = tf.getBackend();
    const simd = backend === 'wasm' || backend === 'cpu';
    if (kh === 3 && kw === 3 && stride === 1 && pad === 1) {
      const g = filterGrad3x3Winograd(x, dy); // wasm, >= 32 channels: Winograd (winograd.ts)
      if (g != null) return g;
    }
    if (kh === 4 && kw === 4 && stride === 2 && pad === 1) {
      const g = filterGrad4x4s2Winograd(x, dy); // wasm, >= 32 channels: Winograd (winograd-s2.ts)
      if (g != null) return g;
    }
    if (simd) {
      // hand-written SIMD kernel (wasm-kernels.ts): 1.6-2.3x faster than the correlation below,
      // and than matrix products whose large right operand XNNPACK repacks at every call
      const g = convFilterGradSimd(x, dy, stride, pad, kh, kw);
      if (g != null) return g;
    }
    if (kh * kw * ci <= 32 && (kh > 1 || kw > 1)) {
      // few input channels (first layer, last transposed layer): im2col by a convolution with a
      // one-hot filter (cheap when kh*kw*ci is small), then a 1x1 filter gradient / matmul
      const k = kh * kw * ci;
      const patches = convForward(x, im2colFilter(kh, kw, ci), stride, pad); // [n, oh, ow, k]
      const g = simd ? convFilterGradSimd(patches, dy, 1, 0, 1, 1) : null;
      if (g != null) return g.reshape([kh, kw, ci, co]) as tf.Tensor4D;
      const pt = patches.transpose([3, 0, 1, 2]).reshape([k, m]) as tf.Tensor2D;
      return tf.matMul(pt, dy.reshape([m, co]) as tf.Tensor2D).reshape([kh, kw, ci, co]) as tf.Tensor4D;
    }
    if (kh === 1 && kw === 1 && stride === 1 && pad === 0) {
      // 1x1: dW = x^T dy as one matrix product (a 4-D transpose is fast, a 2-D one is not)
      const xt = x.transpose([3, 0, 1, 2]).reshape([ci, m]) as tf.Tensor2D;
      return tf.matMul(xt, dy.reshape([m, co]) as tf.Tensor2D).reshape([1, 1, ci, co]) as tf.Tensor4D;
    }
    const needH = (oh - 1) * stride + kh;
    const needW = (ow - 1) * stride + kw;
    let xp: tf.Tensor4D = x;
    const bottom = needH - h - pad;
    const right = needW - wd - pad;
    if (pad > 0 || bottom > 0 || right > 0) {
      xp = x.pad([[0, 0], [pad, Math.max(bottom, 0)], [pad, Math.max(right, 0)], [0, 0]]);
    }
    if (xp.shape[1] > needH || xp.shape[2] > needW) {
      xp = xp.slice([0, 0, 0, 0], [xp.shape[0], needH, needW, ci]);
    }
    const xt = xp.transpose([3, 1, 2, 0]) as tf.Tensor4D;
    const dyt = dy.transpose([1, 2, 0, 3]) as tf.Tensor4D;
    const r = tf.conv2d(xt, dyt, 1, 'valid', 'NHWC', stride);
    return r.transpose([1, 2, 0, 3]) as tf.Tensor4D;
  });
}

const im2colFilters = new Map<string, tf.Tensor4D>();
/** One-hot filter [kh, kw, ci, kh*kw*ci] whose convolution extracts patches in (kh, kw, ci) order. */
function im2colFilter(kh: number, kw: number, ci: number): tf.Tensor4D {
  const key = `${kh}x${kw}x${ci}`;
  const hit = im2colFilters.get(key);
  if (hit != null && !hit.isDisposed) return hit;
  const k = kh * kw * ci;
  const f = new Float32Array(k * k);
  for (let i = 0; i < k; i++) f[i * k + i] = 1; // [kh,kw,ci] flattened index i -> output channel i
  const t = tf.keep(tf.tensor4d(f, [kh, kw, ci, k]));
  im2colFilters.set(key, t);
  return t;
}

// ---------------------------------------------------------------------------------------------
// Differentiable layers

export interface ConvOptions {
  stride?: number;
  pad?: number;
  /** When false, no gradient is computed for the filter (fixed filters, e.g. SSIM windows). */
  filterGrad?: boolean;
  /** When false, the gradient w.r.t. the input is zeros (first layer: images need none). */
  inputGrad?: boolean;
}

/**
 * 2-D convolution (NHWC) with optional bias and hand-written gradients. w: [kh, kw, inC, outC].
 */
export function conv2d(x: tf.Tensor4D, w: tf.Tensor4D, bias: tf.Tensor1D | null, opts: ConvOptions = {}): tf.Tensor4D {
  const stride = opts.stride ?? 1;
  const pad = opts.pad ?? 0;
  const filterGrad = opts.filterGrad ?? true;
  const inputGrad = opts.inputGrad ?? true;
  const [kh, kw] = w.shape;
  const xShape = x.shape as [number, number, number, number];
  if (x.shape[3] !== w.shape[2]) {
    throw new Error(`conv2d: x has ${x.shape[3]} channels, filter expects ${w.shape[2]}`);
  }
  if (bias == null) {
    const f = customGradient((xx: tf.Tensor, ww: tf.Tensor, save: tf.GradSaveFunc) => {
      save([xx, ww]);
      return {
        value: convForward(xx as tf.Tensor4D, ww as tf.Tensor4D, stride, pad),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [sx, sw] = saved as tf.Tensor4D[];
          const dx = inputGrad ? convInputGrad(dy as tf.Tensor4D, sw, stride, pad, xShape) : tf.zerosLike(sx);
          const dw = filterGrad ? convFilterGrad(sx, dy as tf.Tensor4D, stride, pad, kh, kw) : tf.zerosLike(sw);
          return [dx, dw];
        },
      };
    });
    return f(x, w) as tf.Tensor4D;
  }
  const f = customGradient((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor, save: tf.GradSaveFunc) => {
    save([xx, ww]);
    return {
      value: tf.add(convForward(xx as tf.Tensor4D, ww as tf.Tensor4D, stride, pad), bb) as tf.Tensor4D,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sw] = saved as tf.Tensor4D[];
        const dx = inputGrad ? convInputGrad(dy as tf.Tensor4D, sw, stride, pad, xShape) : tf.zerosLike(sx);
        const dw = filterGrad ? convFilterGrad(sx, dy as tf.Tensor4D, stride, pad, kh, kw) : tf.zerosLike(sw);
        return [dx, dw, channelSum(dy)];
      },
    };
  });
  return f(x, w, bias) as tf.Tensor4D;
}

/**
 * Transposed 2-D convolution (NHWC), PyTorch `ConvTranspose2d(k, stride, pad)` semantics with
 * output size (H - 1) * stride - 2 * pad + k. w: [kh, kw, outC, inC] (tfjs layout).
 */
export function conv2dTranspose(x: tf.Tensor4D, w: tf.Tensor4D, bias: tf.Tensor1D | null, opts: ConvOptions = {}): tf.Tensor4D {
  const stride = opts.stride ?? 1;
  const pad = opts.pad ?? 0;
  const [kh, kw, outC, inC] = w.shape;
  if (x.shape[3] !== inC) throw new Error(`conv2dTranspose: x has ${x.shape[3]} channels, filter expects ${inC}`);
  const [n, h, wd] = x.shape;
  const outShape: [number, number, number, number] = [n, (h - 1) * stride - 2 * pad + kh, (wd - 1) * stride - 2 * pad + kw, outC];
  if (outSize(outShape[1], kh, stride, pad) !== h || outSize(outShape[2], kw, stride, pad) !== wd) {
    throw new Error('conv2dTranspose: unsupported size/stride/pad combination');
  }
  const forward = (xx: tf.Tensor4D, ww: tf.Tensor4D) => convInputGrad(xx, ww, stride, pad, outShape);
  const grads = (dy: tf.Tensor4D, sx: tf.Tensor4D, sw: tf.Tensor4D): [tf.Tensor, tf.Tensor] => [
    convForward(dy, sw, stride, pad),
    convFilterGrad(dy, sx, stride, pad, kh, kw),
  ];
  if (bias == null) {
    const f = customGradient((xx: tf.Tensor, ww: tf.Tensor, save: tf.GradSaveFunc) => {
      save([xx, ww]);
      return {
        value: forward(xx as tf.Tensor4D, ww as tf.Tensor4D),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => grads(dy as tf.Tensor4D, saved[0] as tf.Tensor4D, saved[1] as tf.Tensor4D),
      };
    });
    return f(x, w) as tf.Tensor4D;
  }
  const f = customGradient((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor, save: tf.GradSaveFunc) => {
    save([xx, ww]);
    return {
      value: tf.add(forward(xx as tf.Tensor4D, ww as tf.Tensor4D), bb) as tf.Tensor4D,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [
        ...grads(dy as tf.Tensor4D, saved[0] as tf.Tensor4D, saved[1] as tf.Tensor4D), channelSum(dy)],
    };
  });
  return f(x, w, bias) as tf.Tensor4D;
}

/** LeakyReLU, computed as x * step(x, alpha) (fast on wasm), gradient dy * step(x, alpha). */
export function leakyRelu<T extends tf.Tensor>(x: T, alpha = 0.01): T {
  const f = customGradient((xx: tf.Tensor, save: tf.GradSaveFunc) => {
    const s = tf.step(xx, alpha);
    save([s]);
    return { value: tf.mul(xx, s), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, saved[0]) };
  });
  return f(x) as T;
}

/** ReLU with gradient dy * step(x) (tf's own gradient adds a slow float32 Cast on wasm). */
export function relu<T extends tf.Tensor>(x: T): T {
  const f = customGradient((xx: tf.Tensor, save: tf.GradSaveFunc) => {
    save([xx]);
    return { value: tf.relu(xx), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, tf.step(saved[0])) };
  });
  return f(x) as T;
}

/** tanh as 2 * sigmoid(2x) - 1 (sigmoid is ~20x faster than tanh on wasm); grad dy * (1 - y^2). */
export function tanh<T extends tf.Tensor>(x: T): T {
  const f = customGradient((xx: tf.Tensor, save: tf.GradSaveFunc) => {
    const y = tf.tidy(() => tf.sub(tf.mul(tf.sigmoid(tf.mul(xx, 2)), 2), 1));
    save([y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, tf.sub(1, tf.square(saved[0]))),
    };
  });
  return f(x) as T;
}

/** Batch statistics produced by a BatchNorm layer in training mode (biased variance). */
export interface BatchStats {
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
  /** Number of values per channel the statistics were computed over. */
  count: number;
}

/**
 * Batch normalisation in training mode over all axes but the last (NHWC), with hand-written
 * gradient; returns the normalised tensor and the batch statistics (kept tensors the caller
 * disposes, used to update running statistics).
 */
export function batchNormTrain<T extends tf.Tensor>(x: T, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps = 1e-5): { y: T; stats: BatchStats } {
  const c = x.shape[x.rank - 1];
  const m = x.size / c;
  let stats: BatchStats | null = null;
  const f = customGradient((xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    const x2 = xx.reshape([m, c]);
    const mean = channelMean(xx); // [1, c]
    const xc = tf.sub(x2, mean);
    const variance = channelMean(tf.square(xc)); // [1, c]
    const invstd = tf.rsqrt(tf.add(variance, eps));
    const xhat = tf.mul(xc, invstd);
    const y = tf.add(tf.mul(xhat, g), b).reshape(xx.shape);
    stats = { mean: tf.keep(mean.reshape([c])) as tf.Tensor1D, variance: tf.keep(variance.reshape([c])) as tf.Tensor1D, count: m };
    save([xhat, invstd, g]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sxhat, sinvstd, sg] = saved;
        const dy2 = dy.reshape([m, c]);
        const dbetaMean = channelMean(dy2); // [1, c] = dbeta / m
        const dgammaMean = channelMean(tf.mul(dy2, sxhat)); // [1, c] = dgamma / m
        const scale = tf.mul(sg, sinvstd); // [1, c]
        const inner = tf.sub(tf.sub(dy2, dbetaMean), tf.mul(sxhat, dgammaMean));
        const dx = tf.mul(inner, scale).reshape(dy.shape);
        return [dx, tf.mul(dgammaMean, m).reshape([c]), tf.mul(dbetaMean, m).reshape([c])];
      },
    };
  });
  const y = f(x, gamma, beta) as T;
  return { y, stats: stats! };
}

/** Batch normalisation in inference mode with running statistics. */
export function batchNormInfer<T extends tf.Tensor>(x: T, gamma: tf.Tensor1D, beta: tf.Tensor1D, runningMean: tf.Tensor1D, runningVar: tf.Tensor1D, eps = 1e-5): T {
  return tf.tidy(() => {
    const scale = tf.mul(gamma, tf.rsqrt(tf.add(runningVar, eps)));
    const shift = tf.sub(beta, tf.mul(runningMean, scale));
    return tf.add(tf.mul(x, scale), shift) as T;
  });
}

/** Dense layer x [N, in] @ w [in, out] + b. */
export function dense(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D | null): tf.Tensor2D {
  const y: tf.Tensor2D = tf.matMul(x, w);
  return b == null ? y : tf.add(y, b);
}
