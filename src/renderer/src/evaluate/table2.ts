/**
 * A Table II evaluation result (runs.evaluate, also kept in the run's summary as `eval`) as a row
 * of the paper's table: task | MSE | masked MSE | SSIM | CE | AUROC, each mean ± sd across held-out
 * volumes. Pure; unit-tested.
 */

export interface Stat {
  mean: number;
  sd: number;
  n: number;
}

export interface Table2Row {
  task: string;
  mse: string;
  maskedMse: string;
  ssim: string;
  ce: string;
  auroc: string;
  split: string;
  volumes: number | null;
  images: number | null;
  checkpointStep: number | null;
  warnings: string[];
  samples: { input?: string; output?: string; target?: string; diff?: string }[];
}

function stat(v: unknown): Stat | null {
  if (!v || typeof v !== 'object') return null;
  const s = v as Record<string, unknown>;
  if (typeof s.mean !== 'number' || !Number.isFinite(s.mean)) return null;
  return { mean: s.mean, sd: typeof s.sd === 'number' && Number.isFinite(s.sd) ? s.sd : 0, n: typeof s.n === 'number' ? s.n : 0 };
}

/** "0.0233 ± 0.0033"; '' when absent. */
export function meanSd(s: Stat | null, digits = 4): string {
  if (!s) return '';
  return `${s.mean.toFixed(digits)} ± ${s.sd.toFixed(digits)}`;
}

export function taskName(r: Record<string, unknown>): string {
  const task = String(r.task ?? '?');
  if (task === 'masked') return `masked ${r.maskPercent ?? '?'}%${r.maskDefinition ? ` (${String(r.maskDefinition)})` : ''}`;
  if (task === 'next-slice') return 'next slice';
  if (task === 'denoise') return 'denoising';
  return task;
}

export function table2Row(r: Record<string, unknown>): Table2Row {
  const pv = (r.perVolume ?? {}) as Record<string, unknown>;
  const auroc = stat(pv.auroc);
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  return {
    task: taskName(r),
    mse: meanSd(stat(pv.mse)),
    maskedMse: meanSd(stat(pv.maskedMse)),
    ssim: meanSd(stat(pv.ssim)),
    ce: meanSd(stat(pv.crossEntropy)),
    // One AUROC over all held-out images (the sd across volumes is not defined for it).
    auroc: auroc ? auroc.mean.toFixed(4) : '',
    split: String(r.split ?? ''),
    volumes: num(r.volumes),
    images: num(r.images),
    checkpointStep: num(r.checkpointStep),
    warnings: Array.isArray(r.warnings) ? r.warnings.map(String) : [],
    samples: Array.isArray(r.samples) ? (r.samples as Table2Row['samples']) : [],
  };
}

/** The paper's Table II (128 held-out volumes), for reference next to this machine's numbers. */
export const PAPER_TABLE2: readonly Omit<Table2Row, 'split' | 'volumes' | 'images' | 'checkpointStep' | 'warnings' | 'samples'>[] = [
  { task: 'next slice', mse: '0.0233 ± 0.0033', maskedMse: '', ssim: '0.6950 ± 0.0290', ce: '', auroc: '' },
  { task: 'masked 5%', mse: '0.0073 ± 0.0009', maskedMse: '0.1333 ± 0.0722', ssim: '0.744 ± 0.0143', ce: '', auroc: '' },
  { task: 'masked 10%', mse: '0.0044 ± 0.0002', maskedMse: '0.1226 ± 0.0557', ssim: '0.7903 ± 0.0107', ce: '', auroc: '' },
  { task: 'masked 20%', mse: '0.0029 ± 0.0002', maskedMse: '0.0988 ± 0.0494', ssim: '0.8527 ± 0.0115', ce: '', auroc: '' },
  { task: 'masked 33%', mse: '0.0045 ± 0.0003', maskedMse: '0.1000 ± 0.1142', ssim: '0.8307 ± 0.0117', ce: '', auroc: '' },
  { task: 'denoising', mse: '0.0029 ± 0.0011', maskedMse: '', ssim: '0.8756 ± 0.0269', ce: '', auroc: '' },
  { task: 'rotation', mse: '', maskedMse: '', ssim: '', ce: '0.7436 ± 0.0001', auroc: '1.0' },
  { task: 'flip', mse: '', maskedMse: '', ssim: '', ce: '0.7533 ± 0.0599', auroc: '0.85' },
];
