/**
 * Image metrics of the pretext-task evaluation (paper Table II), pure, per image:
 * MSE, masked-region MSE and SSIM (Gaussian window 11, sigma 1.5, k1 0.01, k2 0.03, data range 1,
 * no padding: the mean over the valid positions where the whole window fits).
 */
export function mse(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    s += d * d;
  }
  return s / a.length;
}

/** MSE over the pixels where mask > 0 (NaN when the mask is empty). */
export function maskedMse(a: ArrayLike<number>, b: ArrayLike<number>, mask: ArrayLike<number>): number {
  let s = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    if (mask[i] > 0) {
      const d = a[i] - b[i];
      s += d * d;
      n++;
    }
  }
  return n ? s / n : NaN;
}

export function gaussian1d(size = 11, sigma = 1.5): Float64Array {
  const g = new Float64Array(size);
  const c = (size - 1) / 2;
  let sum = 0;
  for (let i = 0; i < size; i++) {
    g[i] = Math.exp(-((i - c) ** 2) / (2 * sigma * sigma));
    sum += g[i];
  }
  for (let i = 0; i < size; i++) g[i] /= sum;
  return g;
}

/** Separable "valid" filtering of a w x h image with window g (output (w-k+1) x (h-k+1)). */
function filterValid(src: Float64Array, w: number, h: number, g: Float64Array): Float64Array {
  const k = g.length;
  const ow = w - k + 1;
  const oh = h - k + 1;
  const tmp = new Float64Array(ow * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let i = 0; i < k; i++) s += src[y * w + x + i] * g[i];
      tmp[y * ow + x] = s;
    }
  const out = new Float64Array(ow * oh);
  for (let y = 0; y < oh; y++)
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let i = 0; i < k; i++) s += tmp[(y + i) * ow + x] * g[i];
      out[y * ow + x] = s;
    }
  return out;
}

export function ssim(a: ArrayLike<number>, b: ArrayLike<number>, width: number, height = width, opts = { window: 11, sigma: 1.5, k1: 0.01, k2: 0.03, range: 1 }): number {
  const g = gaussian1d(opts.window, opts.sigma);
  const n = width * height;
  const A = Float64Array.from({ length: n }, (_, i) => a[i]);
  const B = Float64Array.from({ length: n }, (_, i) => b[i]);
  const AA = A.map((v) => v * v);
  const BB = B.map((v) => v * v);
  const AB = A.map((v, i) => v * B[i]);
  const [ma, mb, saa, sbb, sab] = [A, B, AA, BB, AB].map((x) => filterValid(x, width, height, g));
  const c1 = (opts.k1 * opts.range) ** 2;
  const c2 = (opts.k2 * opts.range) ** 2;
  let s = 0;
  for (let i = 0; i < ma.length; i++) {
    const va = saa[i] - ma[i] * ma[i];
    const vb = sbb[i] - mb[i] * mb[i];
    const cov = sab[i] - ma[i] * mb[i];
    s += ((2 * ma[i] * mb[i] + c1) * (2 * cov + c2)) / ((ma[i] * ma[i] + mb[i] * mb[i] + c1) * (va + vb + c2));
  }
  return s / ma.length;
}

export function meanSd(xs: number[]): { mean: number; sd: number; n: number } {
  const v = xs.filter((x) => Number.isFinite(x));
  const n = v.length;
  if (n === 0) return { mean: NaN, sd: NaN, n: 0 };
  const mean = v.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, sd, n };
}
