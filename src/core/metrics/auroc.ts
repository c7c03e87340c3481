/**
 * Area under the ROC curve, pure: the Mann-Whitney statistic with ties counted one half, and
 * one-vs-rest macro AUROC for several classes. (ROC curves, bootstrap intervals and DeLong's test
 * are in ./classification.)
 */

/** AUROC with labels > 0 positive; NaN when a class is absent or a score is NaN. */
export function auroc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  if (scores.length !== labels.length) throw new Error(`auroc: scores and labels differ in length (${scores.length} vs ${labels.length})`);
  for (let i = 0; i < scores.length; i++) if (Number.isNaN(scores[i])) return NaN;
  const idx = Array.from({ length: scores.length }, (_, i) => i).sort((i, j) => scores[i] - scores[j]);
  // Average ranks with ties.
  const ranks = new Float64Array(scores.length);
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && scores[idx[j + 1]] === scores[idx[i]]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[idx[k]] = r;
    i = j + 1;
  }
  let nPos = 0;
  let rankSum = 0;
  for (let i = 0; i < labels.length; i++)
    if (labels[i] > 0) {
      nPos++;
      rankSum += ranks[i];
    }
  const nNeg = labels.length - nPos;
  if (nPos === 0 || nNeg === 0) return NaN;
  return (rankSum - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

/** Macro average of one-vs-rest AUROC over the classes present (probs: N x classes, row-major). */
export function aurocOvr(probs: ArrayLike<number>, labels: ArrayLike<number>, classes: number): { macro: number; perClass: number[] } {
  const n = labels.length;
  if (probs.length !== n * classes)
    throw new Error(`aurocOvr: probs has ${probs.length} values, expected labels.length x classes = ${n} x ${classes}`);
  const perClass: number[] = [];
  for (let c = 0; c < classes; c++) {
    const s = new Float64Array(n);
    const y = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      s[i] = probs[i * classes + c];
      y[i] = labels[i] === c ? 1 : 0;
    }
    perClass.push(auroc(s, y));
  }
  const valid = perClass.filter((v) => Number.isFinite(v));
  return { macro: valid.length ? valid.reduce((a, b) => a + b, 0) / valid.length : NaN, perClass };
}

/** Mean cross-entropy of predicted probabilities (N x classes) against class labels. */
export function crossEntropy(probs: ArrayLike<number>, labels: ArrayLike<number>, classes: number): number {
  let s = 0;
  for (let i = 0; i < labels.length; i++) s -= Math.log(Math.max(1e-12, probs[i * classes + labels[i]]));
  return s / labels.length;
}
