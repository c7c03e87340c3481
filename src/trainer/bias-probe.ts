/**
 * The bias probe's trainer half (the paper's Figure 6): does an encoder's representation of a
 * scan predict the patient's sex, ethnic group or age group? For each scan of the manifest, the
 * middle slice (largest body cross-section) is embedded by each encoder (global average of its
 * latent map); a simple classifier (L2 logistic regression, stratified k-fold cross-validation)
 * predicts each attribute. The baseline is the paper's: a CNN trained from scratch on the raw
 * middle slices (the encoder-classifier architecture, tiny preset at 64 px, random weights, 150
 * steps per fold: small enough for a CPU),
 * cross-validated on the same folds (its out-of-fold probabilities); the logistic regression on
 * the raw slice's 16x16 pixels stays as an extra row. AUROC (one-vs-rest macro for several
 * classes) with a bootstrap 95% interval for two classes. Runs in a trainer process (the 'probe' message); the host half
 * (src/host/probe.ts) prepares the manifest from the library and writes the report.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { taskTitle } from '../shared/pretext-tasks';
import { parseRunConfig } from '../shared/run-config';
import type { ProbeComputation } from '../shared/trainer-protocol';
import { toDisplay } from '../core/dicom/geometry';
import { aurocOvr, auroc } from '../core/metrics/auroc';
import { aurocBootstrapCi } from '../core/metrics/classification';
import { encode, encoderSpecs, foldToGreyInput, inferenceContext, vqvaePreset, type VqvaePresetName } from '../core/ml/vqvae';
import { createStore, disposeStore } from '../core/ml/weights';
import { crossValidatedProba, stratifiedFolds } from '../core/probe/logreg';
import { classifierForward, classifierPreset, createClassifier } from '../core/ml/classifier';
import { createOptimizer } from '../core/ml/optim';
import { trainStepClassifier } from '../core/ml/train-step';
import { recalibrateRunningStats } from '../core/ml/bn-recalibrate';
import { Rng } from '../core/random';
import { PROBE_ATTRIBUTE_LABELS } from '../core/probe/report';
import { argMax, bodyArea } from '../core/ssl/body';
import { DEFAULT_PREPROCESS, preprocessSlice, runPreprocessSpec } from '../core/ssl/preprocess';
import { initBackend, type BackendChoice } from './backend';
import { latestCheckpointDir, readCheckpoint } from '../library/runs/checkpoint';
import { readFrameHU } from '../library/volumes/pixels';
import type { ProbeAttribute, ProbeManifest, ProbeScore } from '../shared/results';

export interface BiasProbeOptions {
  /** Run folders whose encoders are probed. */
  encoders: string[];
  attributes?: ProbeAttribute[];
  folds?: number;
  seed?: number;
  /** Side of the raw slice's downsampled image for the extra logistic-regression row. */
  rawSize?: number;
  /** The CNN baseline (trained from scratch on raw slices): input side, steps per fold, batch, learning rate. */
  cnn?: Partial<CnnBaselineOptions>;
  backend?: BackendChoice;
  onProgress?: (done: number, total: number, what: string) => void;
}

interface Scan {
  seriesId: number;
  seriesUid: string;
  attrs: Record<ProbeAttribute, string>;
  /** Middle slice in display orientation, HU (NaN = padding). */
  hu: Float32Array;
  width: number;
  height: number;
  index: number;
  slices: number;
  area: number;
}

/** Finds the slice with the largest body cross-section and returns it in display orientation. */
async function middleSlice(scan: ProbeManifest['scans'][number]): Promise<Omit<Scan, 'seriesUid' | 'attrs' | 'seriesId'>> {
  const { planes, transform: t } = scan;
  const areas: number[] = [];
  for (const p of planes) {
    const f = await readFrameHU(p.path, p.frame);
    areas.push(bodyArea(f.hu, f.columns, f.rows, -500, 4));
  }
  const index = argMax(areas);
  const f = await readFrameHU(planes[index].path, planes[index].frame);
  const hu = new Float32Array(f.hu.length);
  const { width, height } = toDisplay(f.hu, f.rows, f.columns, t, hu);
  return { hu, width, height, index, slices: planes.length, area: areas[index] };
}

export interface CnnBaselineOptions {
  /** The encoder-classifier's architecture (a preset's widths and blocks). */
  preset: VqvaePresetName;
  /** Input side of the raw slices (multiple of 16). */
  size: number;
  /** Optimisation steps per fold. */
  steps: number;
  batch: number;
  lr: number;
}

export const DEFAULT_CNN_BASELINE: CnnBaselineOptions = { preset: 'tiny', size: 64, steps: 150, batch: 16, lr: 1e-3 };

/** What the CNN baseline is, in the report's words. */
export function cnnBaselineName(o: CnnBaselineOptions): string {
  return `raw slice: CNN from scratch (encoder-classifier, ${o.preset} preset, ${o.size}x${o.size} px)`;
}

/**
 * The paper's baseline: a classifier trained from random weights on the raw middle slices, one per
 * fold of the same stratified k-fold split as the embeddings' logistic regression (a fresh
 * encoder-classifier, Adam, class-balanced batches, BatchNorm statistics re-estimated on the
 * training fold), predicting its held-out fold. Returns the out-of-fold class probabilities
 * [n, classes]. `images` are n windowed [0, 1] slices of size x size.
 */
export function cnnCrossValidatedProba(images: Float32Array, size: number, y: Int32Array, n: number, classes: number, k: number, seed: number, o: CnnBaselineOptions): Float64Array {
  const folds = stratifiedFolds(y, k, seed);
  const out = new Float64Array(n * classes);
  const px = size * size;
  const stack = (ids: number[]) => {
    const input = new Float32Array(ids.length * px);
    ids.forEach((id, r) => input.set(images.subarray(id * px, (id + 1) * px), r * px));
    return { shape: [ids.length, size, size, 1] as [number, number, number, number], input, labels: Int32Array.from(ids, (id) => y[id]) };
  };
  for (let f = 0; f < k; f++) {
    const tr: number[] = [];
    const te: number[] = [];
    for (let i = 0; i < n; i++) (folds[i] === f ? te : tr).push(i);
    if (te.length === 0 || tr.length === 0) continue;
    const model = createClassifier(classifierPreset(o.preset, classes, { size }), seed * 1000 + f);
    const optimizer = createOptimizer('adam', { lr: o.lr });
    try {
      // Class-balanced batches: each example a class drawn uniformly, then a training scan of it.
      const byClass = Array.from({ length: classes }, (_, c) => tr.filter((i) => y[i] === c));
      const rng = new Rng(seed * 7919 + f);
      for (let step = 0; step < o.steps; step++) {
        const ids = Array.from({ length: o.batch }, () => {
          const pool = byClass[rng.int(classes)];
          return pool.length ? pool[rng.int(pool.length)] : tr[rng.int(tr.length)];
        });
        trainStepClassifier(model, optimizer, stack(ids));
      }
      const chunks = (ids: number[]) => Array.from({ length: Math.ceil(ids.length / o.batch) }, (_, c) => ids.slice(c * o.batch, (c + 1) * o.batch));
      recalibrateRunningStats(model, (x, ctx) => void classifierForward(model, x, ctx), chunks(tr).filter((c) => c.length > 1).map(stack));
      for (const ids of chunks(te)) {
        const b = stack(ids);
        const p = tf.tidy(() => tf.softmax(classifierForward(model, tf.tensor4d(b.input, b.shape), inferenceContext())).dataSync());
        ids.forEach((id, r) => out.set(p.subarray(r * classes, (r + 1) * classes), id * classes));
      }
    } finally {
      optimizer.dispose();
      disposeStore(model);
    }
  }
  return out;
}

/** Global-average-pooled encoder output of each image: [n, latent]. */
function embed(entries: ReturnType<typeof readCheckpoint>['weights'], preset: VqvaePresetName, size: number, images: Float32Array, n: number): Float64Array {
  const cfg = vqvaePreset(preset, { size });
  const store = createStore(encoderSpecs(cfg), 0);
  try {
    // grey slices into a 1-channel encoder: a 3-channel run's E1 filter summed over its channels (exact)
    const by = new Map(foldToGreyInput(entries).map((e) => [e.name, e]));
    for (const [name, v] of [...store.params, ...store.buffers]) {
      const e = by.get(name);
      if (!e) throw new Error(`encoder weights: missing ${name}`);
      v.assign(tf.tensor(e.data, e.shape));
    }
    const out = tf.tidy(() => tf.mean(encode(store, cfg, tf.tensor4d(images, [n, size, size, 1]), inferenceContext()), [1, 2]).dataSync());
    return Float64Array.from(out);
  } finally {
    disposeStore(store);
  }
}

/**
 * The computation: reads the manifest's files, embeds, cross-validates. The answer names the
 * feature sets in order (the raw slice, then each encoder) and the settings used; the host writes
 * the report from it.
 */
export async function computeBiasProbe(manifest: ProbeManifest, o: BiasProbeOptions): Promise<ProbeComputation> {
  const attributes = o.attributes ?? ['sex', 'ethnicGroup', 'ageGroup'];
  const folds = o.folds ?? 5;
  const seed = o.seed ?? 1;
  const rawSize = o.rawSize ?? 16;
  const warnings: string[] = [];
  const rows = manifest.scans;
  if (rows.length < folds * 2) throw new Error(`the cohort has ${rows.length} scans: the probe needs at least ${folds * 2} for ${folds}-fold cross-validation`);
  await initBackend({ force: o.backend });

  const scans: Scan[] = [];
  for (const [i, r] of rows.entries()) {
    o.onProgress?.(i, rows.length, 'finding middle slices');
    const m = await middleSlice(r);
    scans.push({ seriesId: r.seriesId, seriesUid: r.seriesUid, attrs: r.attrs, ...m });
  }
  o.onProgress?.(rows.length, rows.length, 'embedding');

  // Feature sets: the raw slice (its 16x16 pixels, for the logistic regression), then each
  // encoder; the CNN baseline is trained per attribute below, on the raw slices at its own size.
  const cnn: CnnBaselineOptions = { ...DEFAULT_CNN_BASELINE, ...o.cnn };
  const cnnImages = new Float32Array(scans.length * cnn.size * cnn.size);
  scans.forEach((s, i) => cnnImages.set(preprocessSlice(s.hu, s.width, s.height, { ...DEFAULT_PREPROCESS, size: cnn.size }), i * cnn.size * cnn.size));
  const features: { name: string; x: Float64Array; d: number }[] = [];
  {
    const d = rawSize * rawSize;
    const x = new Float64Array(scans.length * d);
    scans.forEach((s, i) => x.set(preprocessSlice(s.hu, s.width, s.height, { ...DEFAULT_PREPROCESS, size: rawSize }), i * d));
    features.push({ name: `raw slice: logistic regression (${rawSize}x${rawSize} px)`, x, d });
  }
  for (const dir of o.encoders) {
    const abs = resolve(dir);
    const cfg = parseRunConfig(JSON.parse(readFileSync(join(abs, 'config.json'), 'utf8')));
    const ck = latestCheckpointDir(abs);
    if (!ck) throw new Error(`${abs} has no checkpoint`);
    const preset = cfg.preset as VqvaePresetName;
    const size = cfg.size ?? vqvaePreset(preset).size;
    const images = new Float32Array(scans.length * size * size);
    scans.forEach((s, i) =>
      // as the run's own slices were made (its window and scaling; a reference run's 8 bits)
      images.set(preprocessSlice(s.hu, s.width, s.height, runPreprocessSpec(cfg, size)), i * size * size),
    );
    const weights = readCheckpoint(ck).weights;
    const x = embed(weights, preset, size, images, scans.length);
    const name = `${cfg.name || (cfg.kind === 'pretrain' ? taskTitle(cfg) : cfg.task)} (${preset})`;
    features.push({ name, x, d: x.length / scans.length });
  }

  const scores: ProbeScore[] = [];
  for (const attr of attributes) {
    const known = scans.map((s, i) => [i, s.attrs[attr]] as const).filter(([, v]) => v !== '');
    const counts = new Map<string, number>();
    for (const [, v] of known) counts.set(v, (counts.get(v) ?? 0) + 1);
    const classes = [...counts.entries()].filter(([, c]) => c >= folds).map(([v]) => v).sort();
    const dropped = [...counts.entries()].filter(([, c]) => c < folds);
    if (dropped.length) warnings.push(`${PROBE_ATTRIBUTE_LABELS[attr]}: ${dropped.map(([v, c]) => `"${v}" (${c})`).join(', ')} left out: fewer scans than folds`);
    const keep = known.filter(([, v]) => classes.includes(v));
    if (classes.length < 2) {
      warnings.push(`${PROBE_ATTRIBUTE_LABELS[attr]}: fewer than 2 classes with ${folds}+ scans: not probed`);
      continue;
    }
    const y = Int32Array.from(keep.map(([, v]) => classes.indexOf(v)));
    const px = cnn.size * cnn.size;
    const cnnX = new Float32Array(keep.length * px);
    keep.forEach(([i], r) => cnnX.set(cnnImages.subarray(i * px, (i + 1) * px), r * px));
    o.onProgress?.(scans.length, scans.length, `training the CNN baseline (${PROBE_ATTRIBUTE_LABELS[attr]}, ${folds} folds)`);
    const baseline = { name: cnnBaselineName(cnn), proba: () => cnnCrossValidatedProba(cnnX, cnn.size, y, keep.length, classes.length, folds, seed, cnn) };
    const linear = features.map((f) => ({
      name: f.name,
      proba: () => {
        const x = new Float64Array(keep.length * f.d);
        keep.forEach(([i], r) => x.set(f.x.subarray(i * f.d, (i + 1) * f.d), r * f.d));
        return crossValidatedProba(x, y, keep.length, f.d, classes.length, folds, seed);
      },
    }));
    for (const f of [baseline, ...linear]) {
      const p = f.proba();
      let score: number;
      let ci: [number, number] | null = null;
      let perClass: number[];
      if (classes.length === 2) {
        const s1 = Float64Array.from({ length: keep.length }, (_, i) => p[i * 2 + 1]);
        score = auroc(s1, y);
        const b = aurocBootstrapCi(s1, y, { nResamples: 1000, seed });
        ci = [b.lower, b.upper];
        perClass = [1 - score, score];
      } else {
        const r = aurocOvr(p, y, classes.length);
        score = r.macro;
        perClass = r.perClass;
      }
      scores.push({ features: f.name, attribute: attr, classes, n: keep.length, auroc: score, ci95: ci, perClass });
    }
  }

  return {
    scans: scans.length,
    middleSlices: scans.map((s) => ({ seriesUid: s.seriesUid, index: s.index, slices: s.slices, areaPx: s.area })),
    scores,
    warnings,
    features: [cnnBaselineName(cnn), ...features.map((f) => f.name)],
    attributes,
    folds,
    seed,
  };
}
