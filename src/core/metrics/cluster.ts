/**
 * Statistics that respect patients, pure. The held-out slices of one patient are not independent
 * (same anatomy, scanner and disease, neighbouring slices nearly alike), so a slice-level bootstrap
 * or DeLong's test counts 32 slices of 2 patients as 32 cases and is far too sure of itself. Here
 * the unit of resampling is the patient (a cluster):
 *
 * - {@link ClusterResampler}: B resamples of the patients with replacement (seeded; each slice
 *   weighs as many times as its patient was drawn), shared by every statistic of a report so that
 *   all comparisons see the same resamples;
 * - {@link aurocClusterCi}: AUROC with a percentile interval of the AUROC over all slices of the
 *   resampled patients; {@link diceClusterCi}: the same for the pooled (micro) Dice, the Dice of
 *   every pixel of the resampled patients' slices, which is the point estimate the results report;
 * - {@link clusterDiffTest} / {@link aurocDiffClusterTest}: the paired comparison of two models on
 *   the same slices (or the mean over seeds of such differences): each resample draws the patients
 *   once and recomputes the difference. The bootstrap supplies the standard error, inflated by
 *   K / (K - 1) in variance for K patients (the bootstrap's own small-sample bias), and Student's t
 *   with K - 1 degrees of freedom the reference distribution, as cluster-robust inference does
 *   with few clusters; the interval is difference -+ t_{K-1} se. With many patients this is the
 *   normal bootstrap test; with 2 patients (1 degree of freedom) it cannot reach p = 0.03 unless the
 *   difference is 25 standard errors. The percentile interval and the percentile p-value
 *   2 min(P(d* <= 0), P(d* >= 0)) with the +1 correction are returned as well, for reference;
 * - {@link holmAdjust}: Holm's step-down adjustment of a family of p-values;
 * - {@link heldOutWarnings}: the warning a result carries when its held-out split has fewer than
 *   {@link MIN_TEST_PATIENTS} patients or {@link MIN_TEST_POSITIVES} positive slices.
 *
 * Resamples in which a statistic is undefined (an AUROC without both classes) are left out and
 * counted (nValid); resampling is not stratified.
 */
import { Rng } from '../random';
import { auroc } from './auroc';
import { WeightedAuroc } from './classification';
import type { OverlapCounts } from './segmentation';
import { checkFinite, checkLevel, checkSameLength, quantileSorted, studentTQuantile, studentTSf } from './stats';

/** Below this many held-out patients a result carries a warning. */
export const MIN_TEST_PATIENTS = 10;
/** Below this many positive held-out slices a result carries a warning. */
export const MIN_TEST_POSITIVES = 20;

export interface ClusterBootstrapOptions {
  /** Number of resamples of the patients (default 2000). */
  nResamples?: number;
  /** Seed of a fresh Rng (default 0), used when rng is not given. */
  seed?: number;
  /** Generator to draw from (advanced by the constructor). */
  rng?: Rng;
  /** Interval level (default 0.95). */
  level?: number;
}

/** Cluster keys (patients) to dense indices 0..count-1 in first-seen order. */
export function clusterIndex(clusters: ArrayLike<number | string>): { index: Int32Array; count: number } {
  const seen = new Map<number | string, number>();
  const index = new Int32Array(clusters.length);
  for (let i = 0; i < clusters.length; i++) {
    const c = clusters[i];
    if (typeof c === 'number' && !Number.isFinite(c)) throw new Error(`clusterIndex: clusters[${i}] is not a finite number (${c})`);
    let k = seen.get(c);
    if (k === undefined) seen.set(c, (k = seen.size));
    index[i] = k;
  }
  return { index, count: seen.size };
}

/**
 * B resamples of K clusters with replacement, drawn once (K draws of rng.int(K) per resample, in
 * order) and kept as counts, so several statistics can be computed on the very same resamples.
 */
export class ClusterResampler {
  /** Cluster of each example (dense). */
  readonly index: Int32Array;
  /** Number of clusters K. */
  readonly clusters: number;
  readonly nResamples: number;
  readonly level: number;
  /** counts[b * K + k]: times cluster k was drawn in resample b. */
  private readonly counts: Uint32Array;

  constructor(clusters: ArrayLike<number | string>, opts: ClusterBootstrapOptions = {}) {
    const nResamples = opts.nResamples ?? 2000;
    if (!(Number.isInteger(nResamples) && nResamples >= 1)) throw new Error(`ClusterResampler: nResamples must be a positive integer, got ${nResamples}`);
    const level = opts.level ?? 0.95;
    checkLevel('ClusterResampler', level);
    const { index, count } = clusterIndex(clusters);
    if (count === 0) throw new Error('ClusterResampler: no examples');
    this.index = index;
    this.clusters = count;
    this.nResamples = nResamples;
    this.level = level;
    const rng = opts.rng ?? new Rng(opts.seed ?? 0);
    this.counts = new Uint32Array(nResamples * count);
    for (let b = 0; b < nResamples; b++) for (let k = 0; k < count; k++) this.counts[b * count + rng.int(count)]++;
  }

  /** Examples (slices). */
  get length(): number {
    return this.index.length;
  }

  /** Fills w with each example's weight in resample b (its cluster's count). */
  weights(b: number, w: Float64Array): Float64Array {
    const K = this.clusters;
    for (let i = 0; i < this.index.length; i++) w[i] = this.counts[b * K + this.index[i]];
    return w;
  }

  /** The statistic on every resample (NaN where it is undefined). */
  replicate(stat: (w: Float64Array) => number): Float64Array {
    const w = new Float64Array(this.index.length);
    const out = new Float64Array(this.nResamples);
    for (let b = 0; b < this.nResamples; b++) out[b] = stat(this.weights(b, w));
    return out;
  }
}

export interface ClusterCi {
  /** The statistic on the original data. */
  estimate: number;
  /** Percentile interval of the resampled statistics (numpy.quantile's interpolation). */
  lower: number;
  upper: number;
  level: number;
  /** Standard deviation of the resampled statistics. */
  se: number;
  nResamples: number;
  /** Resamples where the statistic is defined. */
  nValid: number;
  /** Clusters (patients). */
  clusters: number;
}

/** Percentile interval of the finite replicates. */
export function percentileClusterCi(estimate: number, replicates: ArrayLike<number>, clusters: number, level = 0.95): ClusterCi {
  checkLevel('percentileClusterCi', level);
  const v = Float64Array.from(Array.from(replicates).filter(Number.isFinite)).sort();
  const n = v.length;
  const mean = n ? v.reduce((a, b) => a + b, 0) / n : NaN;
  const se = n > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : NaN;
  const alpha = 1 - level;
  return {
    estimate,
    lower: n ? quantileSorted(v, alpha / 2) : NaN,
    upper: n ? quantileSorted(v, 1 - alpha / 2) : NaN,
    level,
    se,
    nResamples: replicates.length,
    nValid: n,
    clusters,
  };
}

function checkLabels(fn: string, labels: ArrayLike<number>): void {
  for (let i = 0; i < labels.length; i++) if (labels[i] !== 0 && labels[i] !== 1) throw new Error(`${fn}: labels[${i}] is ${labels[i]}; labels must be 0 or 1`);
}

/** A resampler over `clusters`, or the one given (which must cover the same examples). */
function resamplerFor(fn: string, n: number, clusters: ArrayLike<number | string> | ClusterResampler, opts: ClusterBootstrapOptions): ClusterResampler {
  const r = clusters instanceof ClusterResampler ? clusters : new ClusterResampler(clusters, opts);
  if (r.length !== n) throw new Error(`${fn}: ${r.length} cluster entries for ${n} examples`);
  return r;
}

/**
 * AUROC with a patient-level (cluster) percentile-bootstrap interval: B resamples of the patients
 * with replacement, the AUROC of all slices of the drawn patients (a patient drawn twice counts
 * twice). Resamples without both classes are left out (nValid).
 */
export function aurocClusterCi(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  clusters: ArrayLike<number | string> | ClusterResampler,
  opts: ClusterBootstrapOptions = {},
): ClusterCi {
  checkSameLength('aurocClusterCi', 'scores', scores, 'labels', labels);
  checkFinite('aurocClusterCi', 'scores', scores);
  checkLabels('aurocClusterCi', labels);
  const r = resamplerFor('aurocClusterCi', labels.length, clusters, opts);
  const wa = new WeightedAuroc(scores);
  return percentileClusterCi(auroc(scores, labels), r.replicate((w) => wa.value(w, labels)), r.clusters, opts.level ?? r.level);
}

/** Pooled (micro) Dice 2 TP / (2 TP + FP + FN) of weighted per-slice counts; NaN when every count is 0. */
export function weightedPooledDice(counts: readonly OverlapCounts[], w?: ArrayLike<number>): number {
  let tp = 0;
  let rest = 0;
  for (let i = 0; i < counts.length; i++) {
    const x = w ? w[i] : 1;
    if (x === 0) continue;
    tp += x * counts[i].tp;
    rest += x * (counts[i].fp + counts[i].fn);
  }
  return 2 * tp + rest > 0 ? (2 * tp) / (2 * tp + rest) : NaN;
}

/**
 * Pooled Dice (every pixel of the split, the reported `dice`) with a patient-level percentile
 * bootstrap interval: the pooled Dice of the drawn patients' slices. Resamples with no foreground
 * in prediction or truth are left out.
 */
export function diceClusterCi(counts: readonly OverlapCounts[], clusters: ArrayLike<number | string> | ClusterResampler, opts: ClusterBootstrapOptions = {}): ClusterCi {
  if (!Array.isArray(counts)) throw new Error('diceClusterCi: counts must be an array of {tp, fp, fn}');
  const r = resamplerFor('diceClusterCi', counts.length, clusters, opts);
  return percentileClusterCi(weightedPooledDice(counts), r.replicate((w) => weightedPooledDice(counts, w)), r.clusters, opts.level ?? r.level);
}

export interface ClusterDiffTest {
  /** The difference on the original data (mean over pairs). */
  estimate: number;
  /** Bootstrap standard error, inflated by sqrt(K / (K - 1)). */
  se: number;
  /** estimate / se, referred to Student's t with df = K - 1. */
  t: number;
  df: number;
  /** Two-sided p-value; NaN when it cannot be computed (one patient, no variation across resamples). */
  pValue: number;
  /** estimate -+ t_{df, (1 + level) / 2} se. */
  lower: number;
  upper: number;
  level: number;
  /** For reference: the percentile interval and p = 2 min(#(d* <= 0) + 1, #(d* >= 0) + 1) / (nValid + 1). */
  percentile: { lower: number; upper: number; pValue: number };
  nResamples: number;
  nValid: number;
  clusters: number;
}

/**
 * The paired test from replicates: `replicates[b]` the difference on resample b (NaN where
 * undefined), `estimate` the difference on the original data, K patients.
 */
export function clusterDiffTest(estimate: number, replicates: ArrayLike<number>, clusters: number, level = 0.95): ClusterDiffTest {
  checkLevel('clusterDiffTest', level);
  const pc = percentileClusterCi(estimate, replicates, clusters, level);
  let le = 0;
  let ge = 0;
  for (let b = 0; b < replicates.length; b++) {
    const d = replicates[b];
    if (!Number.isFinite(d)) continue;
    if (d <= 0) le++;
    if (d >= 0) ge++;
  }
  const K = clusters;
  const df = K - 1;
  // A spread of rounding error only (identical replicates) counts as none.
  const raw = K > 1 && pc.nValid > 1 ? pc.se * Math.sqrt(K / (K - 1)) : NaN;
  const se = raw <= 1e-12 * Math.max(1, Math.abs(estimate)) ? 0 : raw;
  let t = NaN;
  let pValue = NaN;
  let lower = NaN;
  let upper = NaN;
  if (Number.isFinite(estimate) && df >= 1) {
    if (se > 0) {
      t = estimate / se;
      pValue = Math.min(1, 2 * studentTSf(Math.abs(t), df));
      const half = studentTQuantile((1 + level) / 2, df) * se;
      lower = estimate - half;
      upper = estimate + half;
    } else if (se === 0 && estimate === 0) {
      // Identical models on every resample.
      t = 0;
      pValue = 1;
      lower = upper = 0;
    }
  }
  const percentileP = pc.nValid ? Math.min(1, (2 * Math.min(le + 1, ge + 1)) / (pc.nValid + 1)) : NaN;
  return {
    estimate,
    se,
    t,
    df,
    pValue,
    lower,
    upper,
    level,
    percentile: { lower: pc.lower, upper: pc.upper, pValue: percentileP },
    nResamples: replicates.length,
    nValid: pc.nValid,
    clusters: K,
  };
}

/**
 * Patient-level paired comparison of AUROCs on the same slices: for each pair (a: model A's
 * scores, b: model B's, e.g. one pair per seed) the difference AUROC(a) - AUROC(b), averaged over
 * the pairs; each resample draws the patients once for all pairs. See {@link clusterDiffTest}.
 */
export function aurocDiffClusterTest(
  pairs: readonly { a: ArrayLike<number>; b: ArrayLike<number> }[],
  labels: ArrayLike<number>,
  clusters: ArrayLike<number | string> | ClusterResampler,
  opts: ClusterBootstrapOptions = {},
): ClusterDiffTest & { aurocA: number; aurocB: number } {
  if (!Array.isArray(pairs) || pairs.length === 0) throw new Error('aurocDiffClusterTest: pairs must be a non-empty array of {a, b} score arrays');
  checkLabels('aurocDiffClusterTest', labels);
  for (const [i, p] of pairs.entries()) {
    checkSameLength('aurocDiffClusterTest', `pairs[${i}].a`, p.a, 'labels', labels);
    checkSameLength('aurocDiffClusterTest', `pairs[${i}].b`, p.b, 'labels', labels);
    checkFinite('aurocDiffClusterTest', `pairs[${i}].a`, p.a);
    checkFinite('aurocDiffClusterTest', `pairs[${i}].b`, p.b);
  }
  const r = resamplerFor('aurocDiffClusterTest', labels.length, clusters, opts);
  const reps = pairs.map((p) => {
    const wa = new WeightedAuroc(p.a);
    const wb = new WeightedAuroc(p.b);
    return { a: r.replicate((w) => wa.value(w, labels)), b: r.replicate((w) => wb.value(w, labels)) };
  });
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const aurocA = mean(pairs.map((p) => auroc(p.a, labels)));
  const aurocB = mean(pairs.map((p) => auroc(p.b, labels)));
  const diff = meanDifference(reps);
  return { ...clusterDiffTest(aurocA - aurocB, diff, r.clusters, opts.level ?? r.level), aurocA, aurocB };
}

/** Per resample, the mean over pairs of a[b] - b[b] (NaN if any is NaN). */
export function meanDifference(reps: readonly { a: ArrayLike<number>; b: ArrayLike<number> }[]): Float64Array {
  if (reps.length === 0) return new Float64Array(0);
  const B = reps[0].a.length;
  const out = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    let s = 0;
    for (const r of reps) s += r.a[b] - r.b[b];
    out[b] = s / reps.length;
  }
  return out;
}

/**
 * Holm's step-down adjustment (Holm 1979) of a family of p-values: sorted ascending, p_(i) becomes
 * max over j <= i of min(1, (m - j + 1) p_(j)). Non-finite p-values stay NaN and are not counted in m.
 */
export function holmAdjust(ps: ArrayLike<number>): number[] {
  const idx = Array.from({ length: ps.length }, (_, i) => i).filter((i) => Number.isFinite(ps[i]));
  idx.sort((i, j) => ps[i] - ps[j]);
  const m = idx.length;
  const out = Array.from({ length: ps.length }, () => NaN);
  let running = 0;
  idx.forEach((i, r) => {
    running = Math.max(running, Math.min(1, (m - r) * ps[i]));
    out[i] = running;
  });
  return out;
}

/**
 * The warnings of a held-out split that is too small for its numbers to mean much: fewer than
 * {@link MIN_TEST_PATIENTS} patients, or (when positives are counted) fewer than
 * {@link MIN_TEST_POSITIVES} positive slices. `what` names the split ("test split").
 */
export function heldOutWarnings(o: { what: string; patients: number; positives?: number; positivePatients?: number; positivesName?: string }): string[] {
  const out: string[] = [];
  const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
  if (o.patients < MIN_TEST_PATIENTS)
    out.push(`the ${o.what} has ${plural(o.patients, 'patient')} (fewer than ${MIN_TEST_PATIENTS}): its numbers and intervals rest on very few patients and may not generalise`);
  if (o.positives !== undefined && o.positives < MIN_TEST_POSITIVES)
    out.push(
      `the ${o.what} has ${o.positivesName ? `${o.positives} ${o.positivesName}` : plural(o.positives, 'positive slice')}${o.positivePatients !== undefined ? ` from ${plural(o.positivePatients, 'patient')}` : ''} (fewer than ${MIN_TEST_POSITIVES}): the estimates are imprecise`,
    );
  return out;
}
