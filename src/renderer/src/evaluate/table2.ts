/**
 * A Table II evaluation (runs.evaluate, also kept in the run's summary as `eval`) as a row of the
 * paper's table: task | MSE | masked MSE | SSIM | CE | AUROC, each mean ± sd across held-out
 * volumes. Pure; unit-tested.
 */
import { taskTableName } from '../../../shared/pretext-tasks';
import type { SslEvaluation, Stat } from '../../../shared/results';

export interface Table2Row {
  task: string;
  mse: string;
  maskedMse: string;
  ssim: string;
  ce: string;
  auroc: string;
}

/** "0.0233 ± 0.0033"; '' when absent or undefined (an sd over one volume counts as 0). */
export function meanSd(s: Stat | undefined, digits = 4): string {
  if (!s || !Number.isFinite(s.mean)) return '';
  return `${s.mean.toFixed(digits)} ± ${(Number.isFinite(s.sd) ? s.sd : 0).toFixed(digits)}`;
}

/** The row's task as the paper names it ('masked 20% (area)', 'next slice', 'denoising'). */
export function taskName(r: Pick<SslEvaluation, 'task' | 'maskPercent' | 'maskDefinition'>): string {
  return taskTableName(r, { paper: true });
}

export function table2Row(r: SslEvaluation): Table2Row {
  const pv = r.perVolume;
  const auroc = pv.auroc;
  return {
    task: taskName(r),
    mse: meanSd(pv.mse),
    maskedMse: meanSd(pv.maskedMse),
    ssim: meanSd(pv.ssim),
    ce: meanSd(pv.crossEntropy),
    // One AUROC over all held-out images (the sd across volumes is not defined for it).
    auroc: auroc && Number.isFinite(auroc.mean) ? auroc.mean.toFixed(4) : '',
  };
}

/** The paper's Table II (128 held-out volumes), for reference next to this machine's numbers. */
export const PAPER_TABLE2: readonly Table2Row[] = [
  { task: 'next slice', mse: '0.0233 ± 0.0033', maskedMse: '', ssim: '0.6950 ± 0.0290', ce: '', auroc: '' },
  { task: 'masked 5%', mse: '0.0073 ± 0.0009', maskedMse: '0.1333 ± 0.0722', ssim: '0.744 ± 0.0143', ce: '', auroc: '' },
  { task: 'masked 10%', mse: '0.0044 ± 0.0002', maskedMse: '0.1226 ± 0.0557', ssim: '0.7903 ± 0.0107', ce: '', auroc: '' },
  { task: 'masked 20%', mse: '0.0029 ± 0.0002', maskedMse: '0.0988 ± 0.0494', ssim: '0.8527 ± 0.0115', ce: '', auroc: '' },
  { task: 'masked 33%', mse: '0.0045 ± 0.0003', maskedMse: '0.1000 ± 0.1142', ssim: '0.8307 ± 0.0117', ce: '', auroc: '' },
  { task: 'denoising', mse: '0.0029 ± 0.0011', maskedMse: '', ssim: '0.8756 ± 0.0269', ce: '', auroc: '' },
  { task: 'rotation', mse: '', maskedMse: '', ssim: '', ce: '0.7436 ± 0.0001', auroc: '1.0' },
  { task: 'flip', mse: '', maskedMse: '', ssim: '', ce: '0.7533 ± 0.0599', auroc: '0.85' },
];
