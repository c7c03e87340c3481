/**
 * Inference of a fine-tuned model on one series (`ctssl predict`, the viewer's Predict button):
 * what the host sends the trainer process, what the trainer computes and what the services hand
 * back. A classifier gives one score per slice (the positive class's probability); a U-Net gives a
 * mask per slice, in display orientation at the slice's own size (the viewer's voxels), kept only
 * for slices with foreground.
 */

/** One series as the trainer reads it: its slices in display order (the viewer's), with their files. */
export interface PredictSeries {
  seriesUid: string;
  rows: number;
  columns: number;
  /** Stored pixels -> display orientation (as in run manifests). */
  transform: { transpose: boolean; flipX: boolean; flipY: boolean };
  slices: { path: string; frame: number; sopUid: string }[];
}

/** What the trainer computes (answer to 'predict'). */
export interface PredictionComputation {
  task: 'classification' | 'segmentation';
  model: string;
  checkpointStep: number;
  backend: string;
  /** The model's input side in pixels. */
  size: number;
  /** Segmentation: the probability at and above which a pixel is foreground. */
  threshold: number;
  /** Display width and height of the slices (masks are this size). */
  width: number;
  height: number;
  /** Classification: the positive class's probability of each slice, in display order. */
  scores?: number[];
  /** Segmentation: display indices of slices with foreground, and their masks packed MSB-first (width x height bits each). */
  maskSlices?: number[];
  masks?: Uint8Array[];
  /** Segmentation: the largest foreground probability of each slice (a per-slice score for the strip). */
  maxProbability?: number[];
}

/** A prediction as the services keep and return it (without the masks). */
export interface PredictionSummary {
  runId: number;
  runDir: string;
  seriesId: number;
  seriesUid: string;
  task: 'classification' | 'segmentation';
  model: string;
  checkpointStep: number;
  backend: string;
  /** Segmentation: the probability at and above which a pixel is foreground. */
  threshold: number;
  slices: number;
  width: number;
  height: number;
  /** Per slice (display order): classification score, or the segmentation's largest foreground probability. */
  scores: number[];
  /** Display indices of the highest-scoring slices, best first (at most 10). */
  top: number[];
  /** Segmentation: display indices of slices with a predicted mask, and the mask's voxel count. */
  maskSlices: number[];
  maskVoxels: number;
  seconds: number;
  createdAt: string;
}

/** Progress of a prediction: slices done of total. */
export interface PredictProgress {
  requestId: string | null;
  runId: number;
  seriesId: number;
  done: number;
  total: number;
}
