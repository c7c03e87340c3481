/**
 * Held-out results of a fine-tuning run (the trainer's 'results' event / results.json), read
 * defensively from the untyped record the contract carries, and the geometry of the ROC curve the
 * page draws. Pure; unit-tested.
 */

export interface ClassificationResults {
  kind: 'classification';
  split: string;
  heldOut: boolean;
  slices: number | null;
  positives: number | null;
  auroc: number;
  ci: [number, number] | null;
  /** Youden-optimal threshold, chosen on `chosenOn` (validation), applied to the held-out split. */
  threshold: number | null;
  chosenOn: string | null;
  sensitivity: number | null;
  specificity: number | null;
  ppv: number | null;
  npv: number | null;
  roc: { fpr: number[]; tpr: number[] } | null;
}

export interface SegmentationResults {
  kind: 'segmentation';
  split: string;
  heldOut: boolean;
  slices: number | null;
  dice: number;
  iou: number | null;
  meanSliceDice: number | null;
  sdSliceDice: number | null;
  meanSliceIou: number | null;
  slicesScored: number | null;
}

export interface FailedResults {
  kind: 'error';
  message: string;
}

export type ResultsView = ClassificationResults | SegmentationResults | FailedResults;

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function numbers(v: unknown): number[] | null {
  if (!Array.isArray(v)) return null;
  const out = v.map(num);
  return out.every((x) => x !== null) ? (out as number[]) : null;
}

/** The results record as the page shows it, or null when there is nothing usable. */
export function readResults(raw: Record<string, unknown> | null | undefined): ResultsView | null {
  if (!raw || typeof raw !== 'object') return null;
  if (typeof raw.error === 'string') return { kind: 'error', message: raw.error };
  const split = typeof raw.split === 'string' ? raw.split : 'test';
  const heldOut = raw.heldOut !== false;
  const slices = num(raw.slices);
  const auroc = num(raw.auroc);
  if (raw.task === 'classification' || (raw.task === undefined && auroc !== null)) {
    if (auroc === null) return null;
    const ci = numbers(raw.aurocCi95);
    const th = (raw.threshold ?? null) as { value?: unknown; chosenOn?: unknown } | null;
    const rocRaw = (raw.roc ?? null) as { fpr?: unknown; tpr?: unknown } | null;
    const fpr = numbers(rocRaw?.fpr);
    const tpr = numbers(rocRaw?.tpr);
    return {
      kind: 'classification',
      split,
      heldOut,
      slices,
      positives: num(raw.positives),
      auroc,
      ci: ci && ci.length === 2 ? [ci[0], ci[1]] : null,
      threshold: num(th?.value),
      chosenOn: typeof th?.chosenOn === 'string' ? th.chosenOn : null,
      sensitivity: num(raw.sensitivity),
      specificity: num(raw.specificity),
      ppv: num(raw.ppv),
      npv: num(raw.npv),
      roc: fpr && tpr && fpr.length === tpr.length && fpr.length > 1 ? { fpr, tpr } : null,
    };
  }
  const dice = num(raw.dice);
  if (dice === null) return null;
  return {
    kind: 'segmentation',
    split,
    heldOut,
    slices,
    dice,
    iou: num(raw.iou),
    meanSliceDice: num(raw.meanSliceDice),
    sdSliceDice: num(raw.sdSliceDice),
    meanSliceIou: num(raw.meanSliceIou),
    slicesScored: num(raw.slicesScored),
  };
}

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

/** The operating point at the threshold: (1 - specificity, sensitivity), or null. */
export function operatingPoint(r: Pick<ClassificationResults, 'sensitivity' | 'specificity'>): { fpr: number; tpr: number } | null {
  if (r.sensitivity === null || r.specificity === null) return null;
  return { fpr: 1 - r.specificity, tpr: r.sensitivity };
}
