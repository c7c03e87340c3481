/**
 * The bias probe's "simple classifier", pure and deterministic: multinomial logistic regression
 * with L2 regularisation on standardised features, fitted by full-batch gradient descent with a
 * step from the Lipschitz bound (no randomness), and stratified k-fold cross-validation.
 */
import { Rng } from '../random';

export interface LogRegOptions {
  /** L2 penalty on the weights (not the bias). */
  l2: number;
  iterations: number;
}

export const DEFAULT_LOGREG: LogRegOptions = { l2: 1e-2, iterations: 300 };

export interface Standardizer {
  mean: Float64Array;
  sd: Float64Array;
}

export function fitStandardizer(x: Float64Array, n: number, d: number): Standardizer {
  const mean = new Float64Array(d);
  const sd = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j] / n;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) sd[j] += (x[i * d + j] - mean[j]) ** 2 / n;
  for (let j = 0; j < d; j++) sd[j] = Math.sqrt(sd[j]) || 1;
  return { mean, sd };
}

export function standardize(x: Float64Array, n: number, d: number, s: Standardizer): Float64Array {
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) out[i * d + j] = (x[i * d + j] - s.mean[j]) / s.sd[j];
  return out;
}

export interface LogRegModel {
  classes: number;
  d: number;
  /** [d + 1, classes]: weights then bias row. */
  w: Float64Array;
}

function softmaxRow(z: Float64Array, k: number, out: Float64Array, at: number) {
  let m = -Infinity;
  for (let c = 0; c < k; c++) m = Math.max(m, z[c]);
  let s = 0;
  for (let c = 0; c < k; c++) s += Math.exp(z[c] - m);
  for (let c = 0; c < k; c++) out[at + c] = Math.exp(z[c] - m) / s;
}

/** Class probabilities [n, classes]. */
export function predictProba(m: LogRegModel, x: Float64Array, n: number): Float64Array {
  const { d, classes: k, w } = m;
  const out = new Float64Array(n * k);
  const z = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < k; c++) {
      let v = w[d * k + c];
      for (let j = 0; j < d; j++) v += x[i * d + j] * w[j * k + c];
      z[c] = v;
    }
    softmaxRow(z, k, out, i * k);
  }
  return out;
}

/** Fits on standardised features x [n, d] and integer labels in [0, classes). */
export function fitLogReg(x: Float64Array, y: Int32Array, n: number, d: number, classes: number, o: LogRegOptions = DEFAULT_LOGREG): LogRegModel {
  if (classes < 2) throw new Error(`fitLogReg: need at least 2 classes, got ${classes}`);
  const k = classes;
  const w = new Float64Array((d + 1) * k);
  // Lipschitz constant of the mean softmax cross-entropy gradient: <= 0.5 * max row norm^2 + l2.
  let maxNorm = 1;
  for (let i = 0; i < n; i++) {
    let s = 1;
    for (let j = 0; j < d; j++) s += x[i * d + j] ** 2;
    maxNorm = Math.max(maxNorm, s);
  }
  const step = 1 / (0.5 * maxNorm + o.l2);
  const grad = new Float64Array((d + 1) * k);
  const m: LogRegModel = { classes: k, d, w };
  for (let it = 0; it < o.iterations; it++) {
    const p = predictProba(m, x, n);
    grad.fill(0);
    for (let i = 0; i < n; i++)
      for (let c = 0; c < k; c++) {
        const r = (p[i * k + c] - (y[i] === c ? 1 : 0)) / n;
        for (let j = 0; j < d; j++) grad[j * k + c] += r * x[i * d + j];
        grad[d * k + c] += r;
      }
    for (let j = 0; j < d * k; j++) grad[j] += o.l2 * w[j];
    for (let j = 0; j < w.length; j++) w[j] -= step * grad[j];
  }
  return m;
}

/** Stratified k folds: fold index per example, seeded. */
export function stratifiedFolds(y: Int32Array, k: number, seed: number): Int32Array {
  const rng = new Rng(seed);
  const folds = new Int32Array(y.length);
  const byClass = new Map<number, number[]>();
  y.forEach((c, i) => byClass.set(c, [...(byClass.get(c) ?? []), i]));
  let offset = 0;
  for (const idx of [...byClass.keys()].sort((a, b) => a - b).map((c) => byClass.get(c)!)) {
    rng.shuffle(idx);
    idx.forEach((i, j) => (folds[i] = (j + offset) % k));
    offset += idx.length;
  }
  return folds;
}

/**
 * Out-of-fold probabilities by k-fold cross-validation (standardiser fitted on each training
 * fold only). Returns probabilities [n, classes] for every example.
 */
export function crossValidatedProba(x: Float64Array, y: Int32Array, n: number, d: number, classes: number, k: number, seed: number, o: LogRegOptions = DEFAULT_LOGREG): Float64Array {
  const folds = stratifiedFolds(y, k, seed);
  const out = new Float64Array(n * classes);
  for (let f = 0; f < k; f++) {
    const tr: number[] = [];
    const te: number[] = [];
    for (let i = 0; i < n; i++) (folds[i] === f ? te : tr).push(i);
    if (te.length === 0 || tr.length === 0) continue;
    const pick = (ids: number[]) => {
      const a = new Float64Array(ids.length * d);
      ids.forEach((id, r) => a.set(x.subarray(id * d, (id + 1) * d), r * d));
      return a;
    };
    const xtr = pick(tr);
    const s = fitStandardizer(xtr, tr.length, d);
    const model = fitLogReg(standardize(xtr, tr.length, d, s), Int32Array.from(tr.map((i) => y[i])), tr.length, d, classes, o);
    const p = predictProba(model, standardize(pick(te), te.length, d, s), te.length);
    te.forEach((id, r) => out.set(p.subarray(r * classes, (r + 1) * classes), id * classes));
  }
  return out;
}
