/**
 * Statistics helpers for reports, pure: the normal and Student t distributions, mean with a
 * t-based confidence interval over seeds, the Wilson interval for a proportion, quantiles, and the
 * tests we compare runs with (Mann-Whitney U, Wilcoxon signed-rank, paired and Welch t-tests).
 * Conventions follow scipy.stats (1.10) so that the numbers can be checked against it.
 */

// ---------------------------------------------------------------------------------------------
// Argument checks shared by the metrics modules

/** Throws unless `xs` is array-like; returns its length. */
export function checkArray(fn: string, name: string, xs: unknown): number {
  if (xs == null || typeof (xs as ArrayLike<number>).length !== 'number')
    throw new Error(`${fn}: ${name} must be an array of numbers, got ${xs === null ? 'null' : typeof xs}`);
  return (xs as ArrayLike<number>).length;
}

/** Throws unless both arrays have the same length (message names both arguments). */
export function checkSameLength(fn: string, aName: string, a: ArrayLike<unknown>, bName: string, b: ArrayLike<unknown>): void {
  checkArray(fn, aName, a);
  checkArray(fn, bName, b);
  if (a.length !== b.length) throw new Error(`${fn}: ${aName} and ${bName} differ in length (${a.length} vs ${b.length})`);
}

/** Throws unless every value is a finite number (names the first offending index). */
export function checkFinite(fn: string, name: string, xs: ArrayLike<number>): void {
  for (let i = 0; i < xs.length; i++)
    if (!Number.isFinite(xs[i])) throw new Error(`${fn}: ${name}[${i}] is not a finite number (${xs[i]})`);
}

/** Throws unless 0 < level < 1. */
export function checkLevel(fn: string, level: number): void {
  if (!(level > 0 && level < 1)) throw new Error(`${fn}: level must be in (0, 1), got ${level}`);
}

// ---------------------------------------------------------------------------------------------
// Special functions

const SQRT2 = Math.SQRT2;
const SQRT_PI = Math.sqrt(Math.PI);

/**
 * Complementary error function to about 1e-15 relative: for |x| < 2.5 the all-positive series
 * erf(x) = 2/sqrt(pi) exp(-x^2) sum_n 2^n x^(2n+1) / (1*3*...*(2n+1)); beyond, the continued
 * fraction erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))) (Lentz).
 */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < 2.5) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (2 * x * x) / (2 * n + 1);
      sum += term;
      if (term < sum * 1e-17) break;
    }
    return 1 - ((2 / SQRT_PI) * Math.exp(-x * x) * sum);
  }
  if (x > 27) return 0;
  // Modified Lentz for f = x + a1/(x + a2/(x + ...)), a_k = k/2.
  const tiny = 1e-300;
  let f = x;
  let C = x;
  let D = 0;
  for (let k = 1; k < 500; k++) {
    const a = k / 2;
    D = x + a * D;
    if (Math.abs(D) < tiny) D = tiny;
    C = x + a / C;
    if (Math.abs(C) < tiny) C = tiny;
    D = 1 / D;
    const delta = C * D;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / SQRT_PI / f;
}

/** Standard normal cumulative distribution function. */
export function normalCdf(x: number): number {
  return 0.5 * erfc(-x / SQRT2);
}

/** Standard normal survival function 1 - cdf(x), accurate in the upper tail. */
export function normalSf(x: number): number {
  return 0.5 * erfc(x / SQRT2);
}

/** Inverse of a monotone increasing cdf on (lo, hi) by bisection (used for quantiles). */
function invertIncreasing(cdf: (x: number) => number, p: number, lo: number, hi: number): number {
  for (let i = 0; i < 200; i++) {
    const mid = 0.5 * (lo + hi);
    if (mid === lo || mid === hi) break;
    if (cdf(mid) < p) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

/** Standard normal quantile (inverse cdf) for p in (0, 1); -Infinity / Infinity at 0 / 1. */
export function normalQuantile(p: number): number {
  if (!(p >= 0 && p <= 1)) throw new Error(`normalQuantile: p must be in [0, 1], got ${p}`);
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  if (p > 0.5) return -normalQuantile(1 - p);
  // Lower half: bisection on the cdf, then two Newton steps.
  let x = invertIncreasing(normalCdf, p, -40, 0);
  for (let i = 0; i < 2; i++) {
    const dens = Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
    if (dens > 0) x -= (normalCdf(x) - p) / dens;
  }
  return x;
}

/** log Gamma(x) for x > 0 (Lanczos, g = 7, 9 terms; about 1e-15 relative). */
export function logGamma(x: number): number {
  if (!(x > 0)) throw new Error(`logGamma: x must be positive, got ${x}`);
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  const z = x - 1;
  let a = c[0];
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the incomplete beta function (modified Lentz). */
function betaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m < 1000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-16) break;
  }
  return h;
}

/** Regularized incomplete beta function I_x(a, b). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (!(a > 0 && b > 0)) throw new Error(`incompleteBeta: a and b must be positive, got ${a}, ${b}`);
  if (!(x >= 0 && x <= 1)) throw new Error(`incompleteBeta: x must be in [0, 1], got ${x}`);
  if (x === 0 || x === 1) return x;
  const lbt = logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x);
  const bt = Math.exp(lbt);
  if (x < (a + 1) / (a + b + 2)) return (bt * betaContinuedFraction(x, a, b)) / a;
  return 1 - (bt * betaContinuedFraction(1 - x, b, a)) / b;
}

/** Student t survival function P(T > t) with df degrees of freedom (df may be fractional). */
export function studentTSf(t: number, df: number): number {
  if (!(df > 0)) throw new Error(`studentTSf: df must be positive, got ${df}`);
  if (Number.isNaN(t)) return NaN;
  if (t === Infinity) return 0;
  if (t === -Infinity) return 1;
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t > 0 ? tail : 1 - tail;
}

/** Student t cumulative distribution function. */
export function studentTCdf(t: number, df: number): number {
  return 1 - studentTSf(t, df);
}

/** Student t quantile for p in (0, 1). */
export function studentTQuantile(p: number, df: number): number {
  if (!(p >= 0 && p <= 1)) throw new Error(`studentTQuantile: p must be in [0, 1], got ${p}`);
  if (!(df > 0)) throw new Error(`studentTQuantile: df must be positive, got ${df}`);
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  if (p === 0.5) return 0;
  if (p > 0.5) return -studentTQuantile(1 - p, df);
  // Lower half: find a bracket, then bisect on the survival function for precision in the tail.
  let lo = -1;
  while (studentTSf(-lo, df) > p) {
    lo *= 2;
    if (lo < -1e300) return -Infinity;
  }
  return -invertIncreasing((x) => -studentTSf(x, df), -p, 0, -lo);
}

// ---------------------------------------------------------------------------------------------
// Descriptive statistics and intervals

/**
 * The q-quantile (0 <= q <= 1) with linear interpolation between order statistics (numpy's
 * default, Hyndman-Fan type 7). `sorted` must be ascending.
 */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = checkArray('quantileSorted', 'sorted', sorted);
  if (!(q >= 0 && q <= 1)) throw new Error(`quantileSorted: q must be in [0, 1], got ${q}`);
  if (n === 0) return NaN;
  const h = (n - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

/** The q-quantile of unsorted values (type 7, like numpy.quantile). */
export function quantile(xs: ArrayLike<number>, q: number): number {
  checkArray('quantile', 'xs', xs);
  return quantileSorted(Float64Array.from(xs).sort(), q);
}

export interface MeanCi {
  mean: number;
  /** Sample standard deviation (divisor n - 1; 0 when n = 1). */
  sd: number;
  n: number;
  /** Standard error sd / sqrt(n). */
  se: number;
  /** t-based interval mean -+ t_{(1+level)/2, n-1} * se; NaN when n < 2. */
  lower: number;
  upper: number;
  halfWidth: number;
  level: number;
}

/**
 * Mean over seeds with a t-based confidence interval (default 95%). Non-finite values (a failed
 * run's NaN) are dropped and not counted in n.
 */
export function meanCi(xs: ArrayLike<number>, level = 0.95): MeanCi {
  checkArray('meanCi', 'xs', xs);
  checkLevel('meanCi', level);
  const v = Array.from(xs).filter((x) => Number.isFinite(x));
  const n = v.length;
  if (n === 0) return { mean: NaN, sd: NaN, n: 0, se: NaN, lower: NaN, upper: NaN, halfWidth: NaN, level };
  const mean = v.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  const se = sd / Math.sqrt(n);
  const halfWidth = n > 1 ? studentTQuantile((1 + level) / 2, n - 1) * se : NaN;
  return { mean, sd, n, se, lower: mean - halfWidth, upper: mean + halfWidth, halfWidth, level };
}

export interface ProportionCi {
  /** successes / n */
  p: number;
  lower: number;
  upper: number;
  level: number;
}

/**
 * Wilson score interval for a binomial proportion (no continuity correction): centre
 * (p + z^2/2n) / (1 + z^2/n), half-width z sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n).
 */
export function wilsonInterval(successes: number, n: number, level = 0.95): ProportionCi {
  if (!(Number.isInteger(n) && n >= 0)) throw new Error(`wilsonInterval: n must be a non-negative integer, got ${n}`);
  if (!(successes >= 0 && successes <= n)) throw new Error(`wilsonInterval: successes must be in [0, n = ${n}], got ${successes}`);
  checkLevel('wilsonInterval', level);
  if (n === 0) return { p: NaN, lower: NaN, upper: NaN, level };
  const z = normalQuantile((1 + level) / 2);
  const p = successes / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  return { p, lower: Math.max(0, centre - half), upper: Math.min(1, centre + half), level };
}

/** Average ranks (1-based) with ties given the mean rank, and the tie group sizes. */
export function rankAverage(xs: ArrayLike<number>): { ranks: Float64Array; tieSizes: number[] } {
  const n = xs.length;
  const idx = Array.from({ length: n }, (_, i) => i).sort((i, j) => xs[i] - xs[j]);
  const ranks = new Float64Array(n);
  const tieSizes: number[] = [];
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && xs[idx[j + 1]] === xs[idx[i]]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[idx[k]] = r;
    if (j > i) tieSizes.push(j - i + 1);
    i = j + 1;
  }
  return { ranks, tieSizes };
}

// ---------------------------------------------------------------------------------------------
// Tests

export type Alternative = 'two-sided' | 'greater' | 'less';

export interface TestResult {
  statistic: number;
  pValue: number;
  /** Which computation produced pValue. */
  method: string;
}

/** Null distribution of the Mann-Whitney U (counts of U = 0..n1*n2), from the Gaussian binomial. */
function mannWhitneyCounts(n1: number, n2: number): Float64Array {
  // Coefficients of prod_{i=1..n1} (1 - q^(n2+i)) / (1 - q^i).
  const size = n1 * n2 + 1;
  const c = new Float64Array(size);
  c[0] = 1;
  for (let i = 1; i <= n1; i++) {
    const k = n2 + i;
    for (let u = size - 1; u >= k; u--) c[u] -= c[u - k]; // multiply by (1 - q^k)
    for (let u = i; u < size; u++) c[u] += c[u - i]; // divide by (1 - q^i)
  }
  return c;
}

/**
 * Mann-Whitney U test of x against y (scipy.stats.mannwhitneyu): statistic U1 of x; method
 * 'auto' uses the exact null distribution when one sample has at most 8 values and there are no
 * ties, otherwise the normal approximation with tie correction (continuity correction on by default).
 */
export function mannWhitneyU(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  opts: { alternative?: Alternative; method?: 'auto' | 'exact' | 'asymptotic'; continuity?: boolean } = {},
): TestResult {
  const n1 = checkArray('mannWhitneyU', 'x', x);
  const n2 = checkArray('mannWhitneyU', 'y', y);
  if (n1 === 0 || n2 === 0) throw new Error(`mannWhitneyU: x and y must be non-empty (${n1} and ${n2} values)`);
  checkFinite('mannWhitneyU', 'x', x);
  checkFinite('mannWhitneyU', 'y', y);
  const alternative = opts.alternative ?? 'two-sided';
  const all = new Float64Array(n1 + n2);
  for (let i = 0; i < n1; i++) all[i] = x[i];
  for (let j = 0; j < n2; j++) all[n1 + j] = y[j];
  const { ranks, tieSizes } = rankAverage(all);
  let r1 = 0;
  for (let i = 0; i < n1; i++) r1 += ranks[i];
  const u1 = r1 - (n1 * (n1 + 1)) / 2;
  const u2 = n1 * n2 - u1;
  const [u, f] = alternative === 'greater' ? [u1, 1] : alternative === 'less' ? [u2, 1] : [Math.max(u1, u2), 2];
  let method = opts.method ?? 'auto';
  if (method === 'auto') method = (n1 <= 8 || n2 <= 8) && tieSizes.length === 0 ? 'exact' : 'asymptotic';
  let p: number;
  if (method === 'exact') {
    if (n1 * n2 > 4e6) throw new Error(`mannWhitneyU: exact method too large (${n1} x ${n2}); use 'asymptotic'`);
    const c = mannWhitneyCounts(n1, n2);
    let total = 0;
    let tail = 0;
    const uInt = Math.ceil(u - 1e-9);
    for (let k = 0; k < c.length; k++) {
      total += c[k];
      if (k >= uInt) tail += c[k];
    }
    p = tail / total;
  } else {
    const n = n1 + n2;
    const tieTerm = tieSizes.reduce((a, t) => a + t ** 3 - t, 0);
    const s = Math.sqrt(((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1))));
    let num = u - (n1 * n2) / 2;
    if (opts.continuity ?? true) num -= 0.5;
    p = s > 0 ? normalSf(num / s) : num > 0 ? 0 : 1;
  }
  return { statistic: u1, pValue: Math.min(1, Math.max(0, p * f)), method };
}

/** Counts of the Wilcoxon signed-rank statistic R+ = 0..n(n+1)/2 for ranks 1..n (no ties). */
function signedRankCounts(n: number): Float64Array {
  const max = (n * (n + 1)) / 2;
  const c = new Float64Array(max + 1);
  c[0] = 1;
  for (let k = 1; k <= n; k++) for (let s = max; s >= k; s--) c[s] += c[s - k];
  return c;
}

/**
 * Wilcoxon signed-rank test of paired samples (scipy.stats.wilcoxon, zero_method 'wilcox': zero
 * differences dropped). Statistic: min(R+, R-) for two-sided, R+ otherwise. method 'auto' is exact
 * when n <= 50 and there are no ties or zeros, otherwise the normal approximation with tie
 * correction (continuity correction off by default, like scipy).
 */
export function wilcoxonSignedRank(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  opts: { alternative?: Alternative; method?: 'auto' | 'exact' | 'approx'; correction?: boolean } = {},
): TestResult {
  checkSameLength('wilcoxonSignedRank', 'x', x, 'y', y);
  checkFinite('wilcoxonSignedRank', 'x', x);
  checkFinite('wilcoxonSignedRank', 'y', y);
  const alternative = opts.alternative ?? 'two-sided';
  const d: number[] = [];
  let zeros = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i] - y[i];
    if (v === 0) zeros++;
    else d.push(v);
  }
  const n = d.length;
  if (n === 0) throw new Error('wilcoxonSignedRank: all differences x - y are zero');
  const { ranks, tieSizes } = rankAverage(d.map(Math.abs));
  let rPlus = 0;
  let rMinus = 0;
  for (let i = 0; i < n; i++) (d[i] > 0 ? (rPlus += ranks[i]) : (rMinus += ranks[i]));
  const T = alternative === 'two-sided' ? Math.min(rPlus, rMinus) : rPlus;
  let method = opts.method ?? 'auto';
  if (method === 'auto') method = n <= 50 && zeros === 0 && tieSizes.length === 0 ? 'exact' : 'approx';
  let p: number;
  if (method === 'exact') {
    if (tieSizes.length) throw new Error('wilcoxonSignedRank: the exact method needs differences without ties; use method "approx"');
    const c = signedRankCounts(n);
    const total = 2 ** n;
    const r = Math.round(rPlus);
    let less = 0;
    let greater = 0;
    for (let k = 0; k < c.length; k++) {
      if (k <= r) less += c[k];
      if (k >= r) greater += c[k];
    }
    if (alternative === 'greater') p = greater / total;
    else if (alternative === 'less') p = less / total;
    else p = r === (c.length - 1) / 2 ? 1 : (2 * Math.min(less, greater)) / total;
  } else {
    const mn = (n * (n + 1)) / 4;
    let se = (n * (n + 1) * (2 * n + 1)) / 24 - tieSizes.reduce((a, t) => a + t ** 3 - t, 0) / 48;
    se = Math.sqrt(se);
    let num = (alternative === 'two-sided' ? T : rPlus) - mn;
    if (opts.correction) num -= 0.5 * Math.sign(num);
    const z = se > 0 ? num / se : 0;
    if (alternative === 'two-sided') p = 2 * normalSf(Math.abs(z));
    else if (alternative === 'greater') p = normalSf(z);
    else p = normalCdf(z);
  }
  return { statistic: T, pValue: Math.min(1, p), method };
}

/** t-test result with the mean difference and its confidence interval. */
export interface TTestResult extends TestResult {
  df: number;
  meanDiff: number;
  lower: number;
  upper: number;
  level: number;
}

function tPValue(t: number, df: number, alternative: Alternative): number {
  if (alternative === 'greater') return studentTSf(t, df);
  if (alternative === 'less') return studentTCdf(t, df);
  return Math.min(1, 2 * studentTSf(Math.abs(t), df));
}

/** Paired t-test of x against y (mean of x - y; scipy.stats.ttest_rel) with a t-based CI. */
export function pairedTTest(x: ArrayLike<number>, y: ArrayLike<number>, opts: { alternative?: Alternative; level?: number } = {}): TTestResult {
  checkSameLength('pairedTTest', 'x', x, 'y', y);
  checkFinite('pairedTTest', 'x', x);
  checkFinite('pairedTTest', 'y', y);
  const n = x.length;
  if (n < 2) throw new Error(`pairedTTest: needs at least 2 pairs, got ${n}`);
  const level = opts.level ?? 0.95;
  checkLevel('pairedTTest', level);
  const d = Array.from({ length: n }, (_, i) => x[i] - y[i]);
  const m = meanCi(d, level);
  const t = m.se > 0 ? m.mean / m.se : m.mean === 0 ? NaN : Math.sign(m.mean) * Infinity;
  return {
    statistic: t,
    pValue: tPValue(t, n - 1, opts.alternative ?? 'two-sided'),
    method: 'paired t',
    df: n - 1,
    meanDiff: m.mean,
    lower: m.lower,
    upper: m.upper,
    level,
  };
}

/** Welch's unequal-variance t-test of x against y (scipy.stats.ttest_ind, equal_var=False). */
export function welchTTest(x: ArrayLike<number>, y: ArrayLike<number>, opts: { alternative?: Alternative; level?: number } = {}): TTestResult {
  const n1 = checkArray('welchTTest', 'x', x);
  const n2 = checkArray('welchTTest', 'y', y);
  if (n1 < 2 || n2 < 2) throw new Error(`welchTTest: x and y need at least 2 values each (${n1} and ${n2})`);
  checkFinite('welchTTest', 'x', x);
  checkFinite('welchTTest', 'y', y);
  const level = opts.level ?? 0.95;
  checkLevel('welchTTest', level);
  const a = meanCi(x, level);
  const b = meanCi(y, level);
  const va = (a.sd * a.sd) / n1;
  const vb = (b.sd * b.sd) / n2;
  const se = Math.sqrt(va + vb);
  const df = (va + vb) ** 2 / ((va * va) / (n1 - 1) + (vb * vb) / (n2 - 1));
  const diff = a.mean - b.mean;
  const t = diff / se;
  const half = studentTQuantile((1 + level) / 2, df) * se;
  return {
    statistic: t,
    pValue: tPValue(t, df, opts.alternative ?? 'two-sided'),
    method: 'Welch t',
    df,
    meanDiff: diff,
    lower: diff - half,
    upper: diff + half,
    level,
  };
}
