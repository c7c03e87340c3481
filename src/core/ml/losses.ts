/**
 * Losses of the reference model (NHWC tensors): MSE, masked-region MSE, SSIM (Gaussian window 11,
 * sigma 1.5, k1 0.01, k2 0.03, data range 1, no padding), cross-entropy, and the composite
 * reconstruction loss 0.2 MSE + 0.2 masked MSE + 0.8 VQ - 0.1 SSIM (weights as options; the
 * public code's masked term summed over the batch and SSIM on the min-max-scaled output as
 * CompositeOptions, for the reference recipe).
 */
import * as tf from '@tensorflow/tfjs';
import { customGradient } from './backend';
import { blurAxis } from './blur';
import { ssimOnMinMaxOutput, sumsMaskedMseOverBatch, type Recipe } from '../../shared/recipes';

/**
 * The mean of all elements of x. Its gradient on wasm and cpu is dy / n filled in the backend
 * (tfjs' own gradient of Mean multiplies dy by an array of ones built in JavaScript, x's size,
 * and copies it in: ~1 M values a small step); the same float32 values (dy / n rounded once).
 */
export function meanAll(x: tf.Tensor): tf.Scalar {
  return reduceAll(x, true);
}

/** The sum of all elements of x, with {@link meanAll}'s gradient (dy filled in the backend). */
export function sumAll(x: tf.Tensor): tf.Scalar {
  return reduceAll(x, false);
}

function reduceAll(x: tf.Tensor, mean: boolean): tf.Scalar {
  const reduce = (t: tf.Tensor) => (mean ? tf.mean(t) : tf.sum(t)) as tf.Scalar;
  const backend = tf.getBackend();
  if (backend !== 'wasm' && backend !== 'cpu') return reduce(x);
  const n = mean ? x.size : 1;
  const f = customGradient((xx: tf.Tensor) => ({
    value: reduce(xx),
    gradFunc: (dy: tf.Tensor) => tf.fill(xx.shape, (dy.dataSync() as Float32Array)[0] / n),
  }));
  return f(x) as tf.Scalar;
}

/** Mean squared error over all elements. */
export function mse(a: tf.Tensor, b: tf.Tensor): tf.Scalar {
  return meanAll(tf.squaredDifference(a, b));
}

/**
 * Mean squared error over the masked region: sum(mask * (a - b)^2) / max(sum(mask), 1).
 * `mask` is 1 inside the region, 0 elsewhere, broadcastable to a.
 */
export function maskedMse(a: tf.Tensor, b: tf.Tensor, mask: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const m = mask.shape.length === a.shape.length && mask.size === a.size ? mask : tf.mul(tf.onesLike(a), mask);
    const num = sumAll(tf.mul(tf.squaredDifference(a, b), m));
    return tf.div(num, tf.maximum(tf.sum(m), 1)) as tf.Scalar;
  });
}

/**
 * The public code's masked term: each image's masked-region MSE (over its masked values) summed
 * over the batch, i.e. N x the mean per-image masked MSE; an image without a mask adds 0.
 */
export function maskedMseBatchSum(a: tf.Tensor4D, b: tf.Tensor4D, mask: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const m = mask.shape.length === a.shape.length && mask.size === a.size ? mask : tf.mul(tf.onesLike(a), mask);
    const num = tf.sum(tf.mul(tf.squaredDifference(a, b), m), [1, 2, 3]);
    return tf.sum(tf.div(num, tf.maximum(tf.sum(m, [1, 2, 3]), 1))) as tf.Scalar;
  });
}

/** Each image of an NHWC batch min-max scaled to [0, 1] (a constant image to 0); differentiable. */
export function minMaxScalePerImage(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const lo = tf.min(x, [1, 2, 3], true);
    const hi = tf.max(x, [1, 2, 3], true);
    return tf.div(tf.sub(x, lo), tf.maximum(tf.sub(hi, lo), 1e-8)) as tf.Tensor4D;
  });
}

export interface SsimOptions {
  windowSize?: number;
  sigma?: number;
  k1?: number;
  k2?: number;
  dataRange?: number;
}

/** Normalised 1-D Gaussian window. */
export function gaussianWindow(size = 11, sigma = 1.5): Float32Array {
  const g = new Float64Array(size);
  const c = (size - 1) / 2;
  let s = 0;
  for (let i = 0; i < size; i++) {
    g[i] = Math.exp(-((i - c) ** 2) / (2 * sigma * sigma));
    s += g[i];
  }
  return Float32Array.from(g, (v) => v / s);
}

/**
 * Mean SSIM between a and b ([N, H, W, C]), per channel, 'valid' Gaussian filtering (no padding),
 * averaged over all positions, channels and images. Differentiable in a and b.
 */
export function ssim(a: tf.Tensor4D, b: tf.Tensor4D, opts: SsimOptions = {}): tf.Scalar {
  const size = opts.windowSize ?? 11;
  const sigma = opts.sigma ?? 1.5;
  const c1 = ((opts.k1 ?? 0.01) * (opts.dataRange ?? 1)) ** 2;
  const c2 = ((opts.k2 ?? 0.03) * (opts.dataRange ?? 1)) ** 2;
  const [n, h, w, c] = a.shape;
  if (h < size || w < size) throw new Error(`ssim: images (${h}x${w}) smaller than the window (${size})`);
  return tf.tidy(() => {
    const g = gaussianWindow(size, sigma);
    const bw = blurMatrices(w, g);
    const bh = blurMatrices(h, g);
    const k = n * c;
    // [k, h, w] single-channel images
    const toImages = (t: tf.Tensor4D) => (c === 1 ? t.reshape([k, h, w]) : t.transpose([0, 3, 1, 2]).reshape([k, h, w])) as tf.Tensor3D;
    // separable 'valid' Gaussian blur: on wasm two SIMD filtering passes (blur.ts, ~11
    // multiply-adds an output); elsewhere two matrix products by banded matrices, whose result is
    // [k, w', h'] (transposed images: SSIM is element-wise then averaged, so the orientation does
    // not matter)
    const blur = (t: tf.Tensor3D) => {
      const along = blurAxis(t, 2, g);
      if (along != null) return blurAxis(along, 1, g)!;
      const rows = matMulConst(t.reshape([k * h, w]), bw.m, bw.mt).reshape([k, h, w - size + 1]);
      const cols = rows.transpose([0, 2, 1]).reshape([k * (w - size + 1), h]);
      return matMulConst(cols as tf.Tensor2D, bh.m, bh.mt);
    };
    const x = toImages(a);
    const y = toImages(b);
    const mx = blur(x);
    const my = blur(y);
    const sxx0 = blur(tf.square(x));
    const syy0 = blur(tf.square(y));
    const sxy0 = blur(tf.mul(x, y));
    const mx2 = tf.square(mx);
    const my2 = tf.square(my);
    const mxy = tf.mul(mx, my);
    const sxx = tf.sub(sxx0, mx2);
    const syy = tf.sub(syy0, my2);
    const sxy = tf.sub(sxy0, mxy);
    const num = tf.mul(tf.add(tf.mul(mxy, 2), c1), tf.add(tf.mul(sxy, 2), c2));
    const den = tf.mul(tf.add(tf.add(mx2, my2), c1), tf.add(tf.add(sxx, syy), c2));
    return meanAll(tf.div(num, den));
  });
}

/** Banded 'valid' filtering matrix [len, len - size + 1] for window g, and its transpose. */
const blurCache = new Map<string, { m: tf.Tensor2D; mt: tf.Tensor2D }>();
function blurMatrices(len: number, g: Float32Array): { m: tf.Tensor2D; mt: tf.Tensor2D } {
  const key = `${len}:${Array.from(g).join(',')}`;
  const hit = blurCache.get(key);
  if (hit != null && !hit.m.isDisposed) return hit;
  const out = len - g.length + 1;
  const m = new Float32Array(len * out);
  const mt = new Float32Array(out * len);
  for (let j = 0; j < out; j++) {
    for (let t = 0; t < g.length; t++) {
      m[(j + t) * out + j] = g[t];
      mt[j * len + j + t] = g[t];
    }
  }
  const r = { m: tf.keep(tf.tensor2d(m, [len, out])), mt: tf.keep(tf.tensor2d(mt, [out, len])) };
  blurCache.set(key, r);
  return r;
}

/** x @ m for a constant m, gradient dy @ mt (mt = m^T given, avoiding a transposed product). */
function matMulConst(x: tf.Tensor2D, m: tf.Tensor2D, mt: tf.Tensor2D): tf.Tensor2D {
  const f = customGradient((xx: tf.Tensor) => ({
    value: tf.matMul(xx as tf.Tensor2D, m),
    gradFunc: (dy: tf.Tensor) => tf.matMul(dy as tf.Tensor2D, mt),
  }));
  return f(x) as tf.Tensor2D;
}

/**
 * Mean cross-entropy of softmax(logits [N, K]) against integer labels (Int32Array, tensor or
 * one-hot [N, K]).
 */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor | Int32Array | number[]): tf.Scalar {
  return tf.tidy(() => {
    const k = logits.shape[1];
    let onehot: tf.Tensor;
    if (labels instanceof tf.Tensor && labels.rank === 2) onehot = labels;
    else {
      const idx = labels instanceof tf.Tensor ? labels.toInt() : tf.tensor1d(Array.from(labels), 'int32');
      onehot = tf.oneHot(idx as tf.Tensor1D, k).toFloat();
    }
    return tf.neg(tf.mean(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), 1))) as tf.Scalar;
  });
}

/** Weights of the composite reconstruction loss (public code defaults). */
export interface CompositeWeights {
  mse: number;
  maskedMse: number;
  vq: number;
  ssim: number;
}

export const DEFAULT_COMPOSITE_WEIGHTS: CompositeWeights = { mse: 0.2, maskedMse: 0.2, vq: 0.8, ssim: 0.1 };

export interface CompositeTerms {
  /** w.mse * mse + w.maskedMse * maskedMse + w.vq * vq - w.ssim * ssim */
  total: tf.Scalar;
  mse: tf.Scalar;
  maskedMse: tf.Scalar;
  vq: tf.Scalar;
  ssim: tf.Scalar;
}

/** How two terms are taken: ours (default) or the public code's (the reference recipe, src/shared/recipes.ts). */
export interface CompositeOptions {
  /** 'mean': over the batch's masked values (ours); 'batch-sum': each image's masked MSE summed over the batch (public code). */
  maskedMse?: 'mean' | 'batch-sum';
  /** 'raw': SSIM of the output as it is (ours); 'minmax': of the output min-max scaled per image (public code). */
  ssimOutput?: 'raw' | 'minmax';
}

/** The options a run's recipe takes: ours, or the public code's masked and SSIM terms (the reference recipe). */
export function recipeLossOptions(c: { recipe?: Recipe }): CompositeOptions {
  return { maskedMse: sumsMaskedMseOverBatch(c) ? 'batch-sum' : 'mean', ssimOutput: ssimOnMinMaxOutput(c) ? 'minmax' : 'raw' };
}

/**
 * Composite loss. Without a mask (next-slice, denoising) the masked term is 0 and not computed.
 */
export function compositeLoss(
  output: tf.Tensor4D, target: tf.Tensor4D, vqLoss: tf.Scalar, mask: tf.Tensor | null,
  weights: Partial<CompositeWeights> = {}, options: CompositeOptions = {},
): CompositeTerms {
  const w = { ...DEFAULT_COMPOSITE_WEIGHTS, ...weights };
  const m = mse(output, target);
  const mm = mask == null ? tf.scalar(0) : options.maskedMse === 'batch-sum' ? maskedMseBatchSum(output, target, mask) : maskedMse(output, target, mask);
  const s = w.ssim === 0 ? tf.scalar(0) : ssim(options.ssimOutput === 'minmax' ? minMaxScalePerImage(output) : output, target);
  let total = tf.add(tf.mul(m, w.mse), tf.mul(vqLoss, w.vq));
  if (mask != null && w.maskedMse !== 0) total = tf.add(total, tf.mul(mm, w.maskedMse));
  if (w.ssim !== 0) total = tf.sub(total, tf.mul(s, w.ssim));
  return { total: total as tf.Scalar, mse: m, maskedMse: mm, vq: vqLoss, ssim: s };
}
