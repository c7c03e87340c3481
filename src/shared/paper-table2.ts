/**
 * The paper's Table II (pretext tasks on 128 held-out volumes) as published, and the definitions
 * of each column: ours and the paper's where they differ (../shared/docs/reference-model.md).
 * Read by the trainer's eval-ssl (its Markdown table, which `ctssl eval-ssl` prints), the
 * renderer's Evaluate page and the README's Table II lines. Numbers only; pure.
 *
 * Two columns are defined differently in the paper:
 * - masked MSE: the public code sums each image's masked-region MSE over its batch of 16, so the
 *   published values are 16 x a per-image masked MSE (at 20 % area, a per-pixel masked MSE of
 *   0.0988 would force the whole-image MSE above 0.2 x 0.0988 = 0.0198; the paper reports 0.0029).
 * - cross-entropy: taken on outputs that were already softmax probabilities (softmax applied a
 *   second time), whose floor at perfect accuracy is ln(1 + (K - 1)/e): 0.743668 for the 4
 *   rotation classes (the paper's 0.7436 ± 0.0001 at AUROC 1.0: the floor cut to 4 digits),
 *   0.551445 for the 3 flip classes.
 * MSE, SSIM and AUROC are defined alike.
 */

/** The public code's batch, over which it sums each image's masked MSE. */
export const REFERENCE_BATCH = 16;

/** Floor of the double-softmax cross-entropy at perfect accuracy: ln(1 + (K - 1)/e). */
export function doubleSoftmaxFloor(classes: number): number {
  return Math.log(1 + (classes - 1) / Math.E);
}

/** A published mean ± sd (sd null where the paper gives one number). */
export interface PaperStat {
  mean: number;
  sd: number | null;
}

/** "0.0988 ± 0.0494" (4 decimals, as our numbers are shown); a lone number as published ("0.85"). */
export function formatPaperStat(s: PaperStat | undefined): string {
  if (!s) return '';
  return s.sd === null ? (Number.isInteger(s.mean) ? s.mean.toFixed(1) : String(s.mean)) : `${s.mean.toFixed(4)} ± ${s.sd.toFixed(4)}`;
}

/** The columns of Table II, in order. */
export type Table2Column = 'mse' | 'maskedMse' | 'ssim' | 'crossEntropy' | 'auroc';

/** One row of the paper's Table II, in the paper's definitions. */
export interface PaperTable2Row {
  /** The task as the paper names it. */
  name: string;
  task: 'next-slice' | 'masked' | 'denoise' | 'rotation' | 'flip';
  maskPercent: number | null;
  values: Partial<Record<Table2Column, PaperStat>>;
}

export const PAPER_TABLE2_SOURCE = 'paper, Table II: 128 held-out volumes, 512 px (mean ± sd across volumes)';

/** The paper's Table II as published (paper.txt; reference-model.md). */
export const PAPER_TABLE2: readonly PaperTable2Row[] = [
  { name: 'next slice', task: 'next-slice', maskPercent: null, values: { mse: { mean: 0.0233, sd: 0.0033 }, ssim: { mean: 0.695, sd: 0.029 } } },
  { name: 'masked 5%', task: 'masked', maskPercent: 5, values: { mse: { mean: 0.0073, sd: 0.0009 }, maskedMse: { mean: 0.1333, sd: 0.0722 }, ssim: { mean: 0.744, sd: 0.0143 } } },
  { name: 'masked 10%', task: 'masked', maskPercent: 10, values: { mse: { mean: 0.0044, sd: 0.0002 }, maskedMse: { mean: 0.1226, sd: 0.0557 }, ssim: { mean: 0.7903, sd: 0.0107 } } },
  { name: 'masked 20%', task: 'masked', maskPercent: 20, values: { mse: { mean: 0.0029, sd: 0.0002 }, maskedMse: { mean: 0.0988, sd: 0.0494 }, ssim: { mean: 0.8527, sd: 0.0115 } } },
  { name: 'masked 33%', task: 'masked', maskPercent: 33, values: { mse: { mean: 0.0045, sd: 0.0003 }, maskedMse: { mean: 0.1, sd: 0.1142 }, ssim: { mean: 0.8307, sd: 0.0117 } } },
  { name: 'denoising', task: 'denoise', maskPercent: null, values: { mse: { mean: 0.0029, sd: 0.0011 }, ssim: { mean: 0.8756, sd: 0.0269 } } },
  { name: 'rotation', task: 'rotation', maskPercent: null, values: { crossEntropy: { mean: 0.7436, sd: 0.0001 }, auroc: { mean: 1.0, sd: null } } },
  { name: 'flip', task: 'flip', maskPercent: null, values: { crossEntropy: { mean: 0.7533, sd: 0.0599 }, auroc: { mean: 0.85, sd: null } } },
];

/** The paper's row for a run's task (masked: same percent, whichever mask definition), or null. */
export function paperTable2Row(r: { task: string; maskPercent: number | null }): PaperTable2Row | null {
  return PAPER_TABLE2.find((p) => p.task === r.task && (p.task !== 'masked' || p.maskPercent === r.maskPercent)) ?? null;
}

/** How each column is computed: ours, and the paper's (the same text where they agree). */
export interface Table2Definition {
  column: Table2Column;
  label: string;
  /** The key of our value in an evaluation's perVolume / perImage. */
  ours: string;
  /** The key of the value in the paper's definition. */
  paper: string;
  oursText: string;
  paperText: string;
}

export const TABLE2_DEFINITIONS: readonly Table2Definition[] = [
  {
    column: 'mse',
    label: 'MSE',
    ours: 'mse',
    paper: 'mse',
    oursText: "mean over an image's pixels of (output − target)²",
    paperText: 'the same',
  },
  {
    column: 'maskedMse',
    label: 'masked MSE',
    ours: 'maskedMse',
    paper: 'maskedMseBatchSum',
    oursText: 'mean of (output − target)² over the masked pixels of an image',
    paperText: `each image's masked MSE summed over a batch of ${REFERENCE_BATCH}, as the public code does (= ${REFERENCE_BATCH} × ours)`,
  },
  {
    column: 'ssim',
    label: 'SSIM',
    ours: 'ssim',
    paper: 'ssim',
    oursText: 'Gaussian window 11, σ 1.5, k1 0.01, k2 0.03, data range 1, no padding',
    paperText: 'the same',
  },
  {
    column: 'crossEntropy',
    label: 'CE',
    ours: 'crossEntropy',
    paper: 'crossEntropyDoubleSoftmax',
    oursText: '−ln p(true class) of the softmax output (0 at perfect accuracy)',
    paperText: `softmax applied again to the softmax output, −ln softmax(p)(true class): at perfect accuracy ln(1 + (K − 1)/e) = ${doubleSoftmaxFloor(4).toFixed(5)} for 4 classes (the paper prints 0.7436), ${doubleSoftmaxFloor(3).toFixed(5)} for 3`,
  },
  {
    column: 'auroc',
    label: 'AUROC',
    ours: 'auroc',
    paper: 'auroc',
    oursText: 'one-vs-rest, macro average, over all evaluated images',
    paperText: 'the same',
  },
];
