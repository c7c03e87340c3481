/**
 * Held-out results of a pretraining run, slice by slice, for the Evaluate page's browser: every
 * slice of one series of the held-out split (else validation, else training, as the evaluation
 * falls back), corrupted by the run's pretext task (seeded per slice, so the same slice always
 * shows the same corruption), passed through the latest checkpoint, and returned as grey PNG bytes:
 * input, output, target and |output - target| x 4 for reconstruction tasks, the input with the
 * true and predicted class for classification tasks. Never written anywhere: the host hands the
 * bytes to the renderer through the bridge.
 */
import { Rng } from '../core/random';
import { isReconstructionTask, makeExample, pairedSliceOffset, stackClass, stackRecon, type ClassExample, type ReconExample } from '../core/ssl/tasks';
import { taskClasses, taskOptionsOf } from '../shared/pretext-tasks';
import type { HeldOutSeriesImages } from '../shared/types';
import type { Split } from '../library/runs/manifest';
import { sliceRefs } from '../library/runs/manifest';
import { latestCheckpointDir, readCheckpoint } from '../library/runs/checkpoint';
import { initBackend, type BackendChoice } from './backend';
import { createPretrainEngine } from './pretrain/pretrain-engine';
import { mixSeed, SliceSource } from './pretrain/pretrain-batches';
import { runPreprocessSpec } from '../core/ssl/preprocess';
import { readPretrainRun } from './pretrain/pretrain-loop';
import { greyPng, reconstructionPngs } from './sample-png';

/** The split the browser shows: held-out, or the evaluation's fallback when it is empty. */
export function browsedSplit(counts: Record<Split, { slices: number }>): Split {
  return (['test', 'val', 'train'] as Split[]).find((s) => counts[s].slices > 0) ?? 'test';
}

export async function heldOutImages(runDir: string, o: { series: number; cacheDir: string | null; backend?: BackendChoice }): Promise<HeldOutSeriesImages> {
  const { config, manifest } = readPretrainRun(runDir);
  const ck = latestCheckpointDir(runDir);
  if (!ck) throw new Error(`${runDir} has no checkpoint yet`);
  const split = browsedSplit(manifest.counts);
  const series = manifest.series[o.series];
  if (!series || series.split !== split) throw new Error(`series ${o.series} is not in the ${split} split of this run`);
  await initBackend({ force: o.backend });
  const engine = createPretrainEngine(config);
  try {
    const c = readCheckpoint(ck);
    await engine.setWeights(c.weights, true);
    const size = engine.size;
    const source = new SliceSource(manifest, runPreprocessSpec(config, size), o.cacheDir);
    const task = taskOptionsOf(config);
    const paired = pairedSliceOffset(task);
    const refs = sliceRefs(manifest, split, paired).filter((r) => r.series === o.series);
    const px = size * size;
    const classes = taskClasses(config.task);
    const slices: HeldOutSeriesImages['slices'] = [];
    const batch = Math.max(1, Math.min(config.batchSize, 16));
    for (let i = 0; i < refs.length; i += batch) {
      const chunk = refs.slice(i, i + batch);
      const imgs = await Promise.all(chunk.map((r) => source.load(r)));
      const nexts = paired > 0 ? await Promise.all(chunk.map((r) => source.load({ series: r.series, slice: r.slice + paired }))) : [];
      const examples = imgs.map((img, k) => makeExample(task, img, size, new Rng(mixSeed(config.seed, 0x4e1d, chunk[k].series, chunk[k].slice)), nexts[k]));
      const b = isReconstructionTask(task.task)
        ? { kind: 'recon' as const, ...stackRecon(examples as ReconExample[], size), refs: chunk }
        : { kind: 'class' as const, ...stackClass(examples as ClassExample[], size), refs: chunk };
      const out = await engine.predict(b);
      for (let k = 0; k < chunk.length; k++) {
        const input = b.input.subarray(k * px, (k + 1) * px);
        if (b.kind === 'recon') {
          const y = out.subarray(k * px, (k + 1) * px);
          const t = b.target.subarray(k * px, (k + 1) * px);
          let se = 0;
          for (let j = 0; j < px; j++) se += (y[j] - t[j]) ** 2;
          slices.push({
            slice: chunk[k].slice,
            ...reconstructionPngs(input, y, t, size),
            mse: se / px,
            label: null,
            predicted: null,
          });
        } else {
          const p = Array.from(out.subarray(k * classes, (k + 1) * classes));
          slices.push({ slice: chunk[k].slice, input: greyPng(input, size), output: null, target: null, diff: null, mse: null, label: b.labels[k], predicted: p.indexOf(Math.max(...p)) });
        }
      }
    }
    return { split, series: o.series, size, kind: isReconstructionTask(task.task) ? 'recon' : 'class', checkpointStep: c.state.step, slices };
  } finally {
    await engine.dispose();
  }
}
