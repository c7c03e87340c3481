/**
 * The metrics against Debian's python3-sklearn / scipy / numpy on seeded random inputs
 * (metrics_reference.py beside this file, one python process for every case): ROC curve points, AUROC,
 * average precision, PR curve, Youden and max-F1 thresholds, confusion metrics at thresholds,
 * DeLong (against a direct O(mn) implementation of DeLong 1988), Mann-Whitney, Wilcoxon, t-tests,
 * distribution functions, 3D connected components (scipy.ndimage.label) and Dice / IoU.
 * Skipped with a message when /usr/bin/python3 lacks sklearn (apt-get install python3-sklearn).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  auroc,
  averagePrecision,
  chooseThreshold,
  connectedComponents3d,
  delongTest,
  erfc,
  incompleteBeta,
  logGamma,
  mannWhitneyU,
  meanCi,
  normalQuantile,
  normalSf,
  pairedTTest,
  prAuc,
  prCurve,
  quantile,
  rocCurve,
  segmentationScores,
  studentTQuantile,
  studentTSf,
  thresholdMetrics,
  welchTTest,
  wilcoxonSignedRank,
} from '../../../src/core/metrics';
import { Rng } from '../../../src/core/random';
import { root } from '../../helpers';

const PY = '/usr/bin/python3';
const hasSklearn = existsSync(PY) && spawnSync(PY, ['-c', 'import sklearn, scipy, numpy']).status === 0;
if (!hasSklearn)
  console.warn('[metrics-reference.test] /usr/bin/python3 with sklearn/scipy not found (apt-get install python3-sklearn): comparisons with sklearn are skipped');

function gauss(rng: Rng): number {
  const u = 1 - rng.next();
  const v = rng.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Relative-or-absolute closeness: |a - b| <= tol * max(1, |b|). */
function close(a: number, b: number, tol: number, what: string): void {
  const err = Math.abs(a - b) / Math.max(1, Math.abs(b));
  if (!(err <= tol)) throw new Error(`${what}: ${a} vs reference ${b} (error ${err.toExponential(2)} > ${tol})`);
}
function closeArr(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  expect(a.length, `${what} length`).toBe(b.length);
  for (let i = 0; i < b.length; i++) close(a[i], b[i], tol, `${what}[${i}]`);
}

// ------------------------------------------------------------------------------------------
// Seeded cases

const rng = new Rng(20240531);
interface BinaryCase { kind: 'binary'; scores: number[]; labels: number[]; thresholds: number[] }
const binaryCases: BinaryCase[] = [];
for (const [n, prev, ties, shift] of [
  [20, 0.5, false, 1],
  [50, 0.3, true, 0.8],
  [200, 0.1, false, 1.2],
  [200, 0.5, true, 0.3],
  [1000, 0.05, false, 1.5],
  [1000, 0.4, true, 0.6],
  [30, 0.2, true, 0],
  [500, 0.5, false, 3],
] as [number, number, boolean, number][]) {
  const labels: number[] = [];
  const scores: number[] = [];
  for (let i = 0; i < n; i++) {
    const y = rng.next() < prev ? 1 : 0;
    let s = 1 / (1 + Math.exp(-(gauss(rng) + shift * y)));
    if (ties) s = Math.round(s * 20) / 20;
    labels.push(y);
    scores.push(s);
  }
  if (!labels.includes(1)) labels[0] = 1;
  if (!labels.includes(0)) labels[1] = 0;
  const thresholds = [0.5, scores[3], scores[7], 0.31];
  binaryCases.push({ kind: 'binary', scores, labels, thresholds });
}

interface DelongCase { kind: 'delong'; scores1: number[]; scores2: number[]; labels: number[] }
const delongCases: DelongCase[] = [];
for (const [n, rho, d1, d2, ties] of [
  [40, 0.5, 1, 0.8, false],
  [100, 0.8, 1.2, 1.0, false],
  [300, 0.3, 0.5, 0.9, true],
  [60, 0.95, 1.5, 1.5, true],
  [1000, 0.6, 0.7, 0.6, false],
] as [number, number, number, number, boolean][]) {
  const labels: number[] = [];
  const s1: number[] = [];
  const s2: number[] = [];
  for (let i = 0; i < n; i++) {
    const y = i % 3 === 0 ? 1 : 0;
    const a = gauss(rng);
    const b = rho * a + Math.sqrt(1 - rho * rho) * gauss(rng);
    let x1 = a + d1 * y;
    let x2 = b + d2 * y;
    if (ties) {
      x1 = Math.round(x1 * 4) / 4;
      x2 = Math.round(x2 * 4) / 4;
    }
    labels.push(y);
    s1.push(x1);
    s2.push(x2);
  }
  delongCases.push({ kind: 'delong', scores1: s1, scores2: s2, labels });
}

interface StatsCase { kind: 'stats'; x: number[]; y: number[] }
const statsCases: StatsCase[] = [];
for (const [nx, ny, ties, shift] of [
  [6, 7, false, 0.8],
  [5, 12, false, 1.5],
  [10, 10, false, 0.3],
  [15, 15, true, 0.5],
  [30, 30, false, 0.2],
  [8, 8, true, 1],
  [40, 25, true, 0.4],
] as [number, number, boolean, number][]) {
  const r = (s: number) => (ties ? Math.round(s * 2) / 2 : s);
  const x = Array.from({ length: nx }, () => r(gauss(rng) + shift));
  const y = Array.from({ length: ny }, () => r(gauss(rng)));
  statsCases.push({ kind: 'stats', x, y });
}

const distCase = {
  kind: 'dist',
  x: [-8, -3.3, -2.5, -1.96, -0.7, 0, 0.3, 1, 1.6449, 2.49, 2.51, 4, 6, 9, 20],
  p: [1e-10, 1e-4, 0.001, 0.025, 0.05, 0.3, 0.5, 0.8, 0.975, 0.999],
  df: [1, 2, 3.5, 9, 29, 200],
  beta: [
    [0.5, 0.5, 0.3],
    [2, 3, 0.4],
    [10, 0.5, 0.9],
    [0.5, 20, 0.01],
    [100, 80, 0.55],
  ],
  gamma: [0.1, 0.5, 1, 1.5, 3, 10.3, 171.2],
};

const dims: [number, number, number] = [14, 11, 9];
function randomMask(density: number): number[] {
  return Array.from({ length: dims[0] * dims[1] * dims[2] }, () => (rng.next() < density ? 1 : 0));
}
const componentCases = [0.08, 0.15, 0.25].map((d) => ({ kind: 'components', dims, mask: randomMask(d) }));

const sliceSize = 64;
const dicePred: number[] = [];
const diceTarget: number[] = [];
for (let s = 0; s < 12; s++) {
  const hasTarget = s % 4 !== 0;
  const predNoise = s % 5 === 0 ? 0 : 0.1;
  for (let i = 0; i < sliceSize; i++) {
    const x = i % 8;
    const y = Math.floor(i / 8);
    const t = hasTarget && Math.hypot(x - 3.5, y - 3.5) < 1 + (s % 3) ? 1 : 0;
    diceTarget.push(t);
    dicePred.push(t ? (rng.next() < 0.8 ? 0.9 : 0.2) : rng.next() < predNoise ? 0.7 : 0.1);
  }
}
const diceCase = { kind: 'dice', pred: dicePred, target: diceTarget, sliceSize };

const cases = [...binaryCases, ...delongCases, ...statsCases, distCase, ...componentCases, diceCase];
let ref: { versions: Record<string, string>; results: any[] };

describe.skipIf(!hasSklearn)('metrics vs sklearn / scipy / numpy', () => {
  beforeAll(() => {
    const r = spawnSync(PY, [join(root, 'test', 'core', 'metrics', 'metrics_reference.py')], { input: JSON.stringify({ cases }), encoding: 'utf8', maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(`metrics_reference.py failed: ${r.stderr}`);
    ref = JSON.parse(r.stdout);
    console.log(`[metrics-reference.test] sklearn ${ref.versions.sklearn}, scipy ${ref.versions.scipy}, numpy ${ref.versions.numpy}`);
  });
  const at = (c: object) => ref.results[cases.indexOf(c as (typeof cases)[number])];

  it('ROC curve, AUROC, AP, PR curve, thresholds and confusion metrics (8 random data sets, 20-1000 examples, with and without ties)', () => {
    for (const [ci, c] of binaryCases.entries()) {
      const r = at(c);
      const tag = `case ${ci}`;
      const roc = rocCurve(c.scores, c.labels);
      closeArr(roc.fpr, r.roc.fpr, 1e-12, `${tag} fpr`);
      closeArr(roc.tpr, r.roc.tpr, 1e-12, `${tag} tpr`);
      expect(roc.thresholds[0]).toBe(Infinity); // sklearn 1.2 writes max + 1 here, >= 1.3 inf
      closeArr(roc.thresholds.subarray(1), r.roc.thresholds, 0, `${tag} thresholds`);
      close(auroc(c.scores, c.labels), r.auroc, 1e-12, `${tag} auroc`);
      close(averagePrecision(c.scores, c.labels), r.ap, 1e-12, `${tag} AP`);
      const pr = prCurve(c.scores, c.labels);
      closeArr(pr.precision, r.pr.precision, 1e-12, `${tag} precision`);
      closeArr(pr.recall, r.pr.recall, 1e-12, `${tag} recall`);
      closeArr(pr.thresholds, r.pr.thresholds, 0, `${tag} pr thresholds`);
      close(prAuc(c.scores, c.labels), r.prAuc, 1e-12, `${tag} PR AUC`);
      const y = chooseThreshold(c.scores, c.labels, { method: 'youden' });
      expect(y.threshold, `${tag} youden`).toBe(r.youden.threshold);
      close(y.value, r.youden.j, 1e-12, `${tag} J`);
      const f = chooseThreshold(c.scores, c.labels, { method: 'maxF1' });
      expect(f.threshold, `${tag} maxF1`).toBe(r.maxF1.threshold);
      close(f.value, r.maxF1.f1, 1e-12, `${tag} F1`);
      for (const [k, t] of c.thresholds.entries()) {
        const m = thresholdMetrics(c.scores, c.labels, t);
        const e = r.at[k];
        for (const key of ['tp', 'fp', 'tn', 'fn', 'sensitivity', 'specificity', 'accuracy'] as const) close(m[key], e[key], 1e-12, `${tag} ${key}@${t}`);
        // sklearn's zero_division=0 where ours is NaN (nothing predicted positive)
        close(Number.isNaN(m.ppv) ? 0 : m.ppv, e.ppv, 1e-12, `${tag} ppv@${t}`);
        close(Number.isNaN(m.f1) ? 0 : m.f1, e.f1, 1e-12, `${tag} f1@${t}`);
        if (e.npv === null) expect(m.npv).toBeNaN();
        else close(m.npv, e.npv, 1e-12, `${tag} npv@${t}`);
      }
    }
  });

  it('DeLong (fast midrank algorithm) matches DeLong 1988 computed directly over all pairs', () => {
    for (const [ci, c] of delongCases.entries()) {
      const r = at(c);
      const d = delongTest(c.scores1, c.scores2, c.labels);
      close(d.auc1, r.auc1, 1e-12, `delong ${ci} auc1`);
      close(d.auc2, r.auc2, 1e-12, `delong ${ci} auc2`);
      close(d.variance, r.variance, 1e-10, `delong ${ci} variance`);
      for (let a = 0; a < 2; a++) for (let b = 0; b < 2; b++) close(d.covariance[a][b], r.covariance[a][b], 1e-10, `delong ${ci} cov`);
      close(d.z, r.z, 1e-9, `delong ${ci} z`);
      close(d.pValue, r.p, 1e-9, `delong ${ci} p`);
    }
  });

  it('Mann-Whitney, Wilcoxon, paired and Welch t-tests, mean CI (scipy.stats)', () => {
    for (const [ci, c] of statsCases.entries()) {
      const r = at(c);
      const pair = (got: { statistic: number; pValue: number }, want: [number, number], what: string) => {
        close(got.statistic, want[0], 1e-10, `stats ${ci} ${what} statistic`);
        close(got.pValue, want[1], 1e-9, `stats ${ci} ${what} p`);
      };
      if (r.mwu_exact) pair(mannWhitneyU(c.x, c.y, { method: 'exact' }), r.mwu_exact, 'mwu exact');
      pair(mannWhitneyU(c.x, c.y, { method: 'asymptotic' }), r.mwu_asymptotic, 'mwu asymptotic');
      pair(mannWhitneyU(c.x, c.y), r.mwu_auto, 'mwu auto');
      pair(mannWhitneyU(c.x, c.y, { alternative: 'greater', method: 'asymptotic' }), r.mwu_greater, 'mwu greater');
      if (c.x.length === c.y.length) {
        if (r.wilcoxon_exact) pair(wilcoxonSignedRank(c.x, c.y, { method: 'exact' }), r.wilcoxon_exact, 'wilcoxon exact');
        pair(wilcoxonSignedRank(c.x, c.y, { method: 'approx' }), r.wilcoxon_approx, 'wilcoxon approx');
        pair(wilcoxonSignedRank(c.x, c.y, { method: 'approx', correction: true }), r.wilcoxon_approx_corr, 'wilcoxon approx corrected');
        pair(pairedTTest(c.x, c.y), r.ttest_rel, 'paired t');
      }
      pair(welchTTest(c.x, c.y), r.welch, 'welch');
      const m = meanCi(c.x);
      close(m.mean, r.mean_ci[0], 1e-12, `stats ${ci} mean`);
      close(m.lower, r.mean_ci[1], 1e-10, `stats ${ci} CI lower`);
      close(m.upper, r.mean_ci[2], 1e-10, `stats ${ci} CI upper`);
    }
  });

  it('erfc, normal and t distribution functions, incomplete beta, log gamma, quantiles (scipy.special / numpy)', () => {
    const r = at(distCase);
    // Relative error in the tails: compare on a relative scale.
    const rel = (a: number, b: number, tol: number, what: string) => {
      const err = Math.abs(b) < 1e-12 ? Math.abs(a - b) : Math.abs(a - b) / Math.abs(b);
      if (!(err <= tol)) throw new Error(`${what}: ${a} vs ${b} (relative error ${err.toExponential(2)})`);
    };
    distCase.x.forEach((x, i) => rel(erfc(x), r.erfc[i], 1e-13, `erfc(${x})`));
    distCase.x.forEach((x, i) => rel(normalSf(x), r.norm_sf[i], 1e-13, `normalSf(${x})`));
    distCase.p.forEach((p, i) => rel(normalQuantile(p), r.norm_ppf[i], 1e-12, `normalQuantile(${p})`));
    distCase.df.forEach((df, k) => {
      distCase.x.forEach((x, i) => rel(studentTSf(x, df), r.t_sf[k][i], 1e-11, `studentTSf(${x}, ${df})`));
      distCase.p.forEach((p, i) => rel(studentTQuantile(p, df), r.t_ppf[k][i], 1e-10, `studentTQuantile(${p}, ${df})`));
    });
    distCase.beta.forEach(([a, b, x], i) => rel(incompleteBeta(x, a, b), r.betainc[i], 1e-12, `I_${x}(${a}, ${b})`));
    distCase.gamma.forEach((g, i) => close(logGamma(g), r.lgamma[i], 1e-13, `logGamma(${g})`));
    distCase.p.forEach((p, i) => close(quantile(distCase.x, p), r.quantile[i], 1e-12, `quantile(${p})`));
  });

  it('3D connected components with 26, 18 and 6 connectivity (scipy.ndimage.label)', () => {
    for (const c of componentCases) {
      const r = at(c);
      for (const conn of [26, 18, 6] as const) {
        const cc = connectedComponents3d(c.mask, c.dims, { connectivity: conn });
        expect(cc.count, `${conn}-connectivity count`).toBe(r[String(conn)].count);
        expect(cc.components.map((x) => x.voxels).sort((a, b) => a - b)).toEqual(r[String(conn)].sizes);
      }
    }
  });

  it('Dice and IoU per slice and pooled (numpy, sklearn jaccard_score and f1_score)', () => {
    const r = at(diceCase);
    const s = segmentationScores(diceCase.pred, diceCase.target, diceCase.sliceSize);
    s.perSlice.forEach((p, i) => {
      const [d, j] = r.perSlice[i];
      if (d === null) expect(p.dice).toBeNaN();
      else close(p.dice, d, 1e-12, `slice ${i} dice`);
      if (j === null) expect(p.iou).toBeNaN();
      else close(p.iou, j, 1e-12, `slice ${i} iou`);
    });
    close(s.microDice, r.micro, 1e-12, 'micro dice');
    close(s.microDice, r.microF1, 1e-12, 'micro dice = voxel F1');
    close(s.microIou, r.microIou, 1e-12, 'micro iou');
  });
});
