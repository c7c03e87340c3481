/**
 * Table II's two columns in the paper's own definitions (src/shared/paper-table2.ts), pure:
 * - the cross-entropy of probabilities passed through softmax a second time;
 * - each image's masked-region MSE summed over a batch (the public code's masked term).
 */
import { maskedMse } from '../metrics/image';

/**
 * −ln softmax(p)[label] for one row of probabilities p (already a softmax output): the paper's
 * cross-entropy. At a perfect one-hot p it is ln(1 + (K − 1)/e).
 */
export function doubleSoftmaxCrossEntropy(probs: ArrayLike<number>, label: number): number {
  if (!(Number.isInteger(label) && label >= 0 && label < probs.length)) throw new Error(`doubleSoftmaxCrossEntropy: label ${label} is not a class index in [0, ${probs.length})`);
  let max = -Infinity;
  for (let i = 0; i < probs.length; i++) if (probs[i] > max) max = probs[i];
  let s = 0;
  for (let i = 0; i < probs.length; i++) s += Math.exp(probs[i] - max);
  return -(probs[label] - max - Math.log(s));
}

/** A per-image statistic in the batch-summed definition: mean and sd times the batch (each image's value x batch). */
export function batchSummedStat<S extends { mean: number; sd: number; n: number }>(s: S, batch: number): S {
  return { ...s, mean: s.mean * batch, sd: s.sd * batch };
}

/**
 * The public code's masked term of a batch: the sum over its N images (each `px` values) of each
 * image's masked-region MSE (sum of mask x (a − b)² over the sum of the mask; 0 for an image
 * without a mask). Equals N x the mean per-image masked MSE.
 */
export function batchSummedMaskedMse(a: ArrayLike<number>, b: ArrayLike<number>, mask: ArrayLike<number>, px: number): number {
  if (a.length !== b.length || a.length !== mask.length) throw new Error(`batchSummedMaskedMse: a, b and mask differ in length (${a.length}, ${b.length}, ${mask.length})`);
  if (!(px > 0) || a.length % px !== 0) throw new Error(`batchSummedMaskedMse: ${a.length} values are not whole images of ${px}`);
  const view = (x: ArrayLike<number>, s: number) => (ArrayBuffer.isView(x) ? (x as Float32Array).subarray(s, s + px) : Array.prototype.slice.call(x, s, s + px));
  let sum = 0;
  for (let s = 0; s < a.length; s += px) {
    const v = maskedMse(view(a, s), view(b, s), view(mask, s));
    if (Number.isFinite(v)) sum += v;
  }
  return sum;
}
