/**
 * The geometry of the ROC curve the fine-tune page draws from a run's held-out results
 * (`RecordedResults` of src/shared/results.ts), and how their interval was made. Pure; unit-tested.
 */
import type { ClassificationResults } from '../../../shared/results';
import { plural } from '../lib/format';

/** Plot box of the ROC chart: a square of `size` px inside `pad` px margins. */
export interface RocBox {
  size: number;
  pad: number;
}

/** Screen position of an ROC point (FPR right, TPR up). */
export function rocXY(fpr: number, tpr: number, box: RocBox): [number, number] {
  const clamp = (v: number) => Math.min(1, Math.max(0, v));
  const r = (v: number) => Math.round(v * 100) / 100;
  return [r(box.pad + clamp(fpr) * box.size), r(box.pad + (1 - clamp(tpr)) * box.size)];
}

/** SVG path data of an ROC curve (points in order, as rocCurve returns them). */
export function rocPath(fpr: readonly number[], tpr: readonly number[], box: RocBox): string {
  const n = Math.min(fpr.length, tpr.length);
  const parts: string[] = [];
  for (let i = 0; i < n; i++) {
    const [x, y] = rocXY(fpr[i], tpr[i], box);
    parts.push(`${i === 0 ? 'M' : 'L'}${x},${y}`);
  }
  return parts.join('');
}

/** The operating point at the threshold: (1 - specificity, sensitivity), or null when either is undefined. */
export function operatingPoint(r: Pick<ClassificationResults, 'sensitivity' | 'specificity'>): { fpr: number; tpr: number } | null {
  if (!Number.isFinite(r.sensitivity) || !Number.isFinite(r.specificity)) return null;
  return { fpr: 1 - r.specificity, tpr: r.sensitivity };
}

/**
 * How the held-out interval was computed, in words: "patient-level bootstrap, 2000 resamples of the
 * 12 patients", or, for results written before it, "slice-level bootstrap (older result: treats
 * slices as independent, too narrow)".
 */
export function ciNote(r: { ci?: { unit: 'patient'; resamples: number }; patients?: number }): string {
  if (!r.ci) return 'slice-level bootstrap (older result: treats slices as independent, too narrow)';
  const p = r.patients;
  return `patient-level bootstrap, ${r.ci.resamples} resamples of the ${p === undefined ? 'patients' : plural(p, 'patient')}`;
}
