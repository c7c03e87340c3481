/**
 * Inference of a fine-tuned run on one series, in the trainer process: the run's model from its
 * latest checkpoint, each slice preprocessed as the run's training slices were (its window, scaling
 * and size), in batches; a classifier's positive-class probability per slice, or a U-Net's mask per
 * slice brought back to the slice's display size (src/core/labels/mask-resample.ts). Progress after
 * every batch; `shouldStop` is checked between batches (the host also kills the process to cancel).
 */
import { readFrameHU } from '../library/volumes/pixels';
import { toDisplay } from '../core/dicom/geometry';
import { preprocessSlice, runPreprocessSpec } from '../core/ssl/preprocess';
import { modelMaskToDisplay } from '../core/labels/mask-resample';
import { packBits } from '../core/labels/raster';
import { latestCheckpointDir, readCheckpoint } from '../library/runs/checkpoint';
import type { PredictionComputation, PredictSeries } from '../shared/predict';
import { initBackend, type BackendChoice } from './backend';
import { createFinetuneEngine } from './finetune/finetune-engine';
import { finetuneSize, readFinetuneRun } from './finetune/finetune-loop';

export interface PredictOptions {
  backend?: BackendChoice;
  batchSize?: number;
  /** Segmentation: foreground where the probability is at least this (default 0.5). */
  threshold?: number;
  onProgress?: (done: number, total: number) => void;
  shouldStop?: () => boolean;
}

export async function predictSeries(runDir: string, series: PredictSeries, o: PredictOptions = {}): Promise<PredictionComputation> {
  const { config } = readFinetuneRun(runDir);
  const ck = latestCheckpointDir(runDir);
  if (!ck) throw new Error(`${runDir} has no checkpoint: train the run before predicting with it`);
  if (series.slices.length === 0) throw new Error(`series ${series.seriesUid} has no image slices`);
  const backend = await initBackend({ force: o.backend });
  const engine = await createFinetuneEngine(config, [1, 1]);
  const c = readCheckpoint(ck);
  try {
    await engine.setWeights(c.weights);
    const size = finetuneSize(config);
    // The run's own preprocessing (window, scaling, size; a reference recipe's 8 bits), as every reader of a run's slices.
    const spec = runPreprocessSpec(config, size);
    const width = series.transform.transpose ? series.rows : series.columns;
    const height = series.transform.transpose ? series.columns : series.rows;
    const total = series.slices.length;
    const batchSize = Math.max(1, o.batchSize ?? config.batchSize ?? 8);
    const px = size * size;
    const threshold = o.threshold ?? 0.5;
    if (!(threshold > 0 && threshold < 1)) throw new Error(`threshold ${threshold}: a probability between 0 and 1`);
    const scores: number[] = [];
    const maxProbability: number[] = [];
    const maskSlices: number[] = [];
    const masks: Uint8Array[] = [];
    for (let start = 0; start < total; start += batchSize) {
      if (o.shouldStop?.()) throw new Error('cancelled');
      const n = Math.min(batchSize, total - start);
      const input = new Float32Array(n * px);
      for (let k = 0; k < n; k++) {
        const sl = series.slices[start + k];
        const f = await readFrameHU(sl.path, sl.frame);
        if (f.rows !== series.rows || f.columns !== series.columns)
          throw new Error(`${sl.path}: ${f.rows} x ${f.columns} pixels, the series has ${series.rows} x ${series.columns}`);
        const disp = new Float32Array(f.hu.length);
        toDisplay(f.hu, f.rows, f.columns, series.transform, disp);
        input.set(preprocessSlice(disp, width, height, spec), k * px);
      }
      const shape: [number, number, number, number] = [n, size, size, 1];
      const out =
        config.task === 'classification'
          ? await engine.predict({ kind: 'class', shape, input, labels: new Int32Array(n), refs: [] })
          : await engine.predict({ kind: 'seg', shape, input, mask: new Float32Array(0), refs: [] });
      for (let k = 0; k < n; k++) {
        if (config.task === 'classification') {
          scores.push(out[k * 2 + 1]);
          continue;
        }
        const prob = out.subarray(k * px, (k + 1) * px);
        let max = 0;
        for (let i = 0; i < px; i++) if (prob[i] > max) max = prob[i];
        maxProbability.push(max);
        if (max < threshold) continue;
        const m = modelMaskToDisplay(prob, size, width, height, threshold);
        if (m.some((v) => v !== 0)) {
          maskSlices.push(start + k);
          masks.push(packBits(m));
        }
      }
      o.onProgress?.(start + n, total);
    }
    return {
      task: config.task,
      model: config.model,
      checkpointStep: c.state.step,
      backend: `${backend.package}@${backend.version}`,
      size,
      threshold,
      width,
      height,
      ...(config.task === 'classification' ? { scores } : { maxProbability, maskSlices, masks }),
    };
  } finally {
    await engine.dispose();
  }
}
