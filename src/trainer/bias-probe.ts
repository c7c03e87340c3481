/**
 * The bias probe's trainer half (the paper's Figure 6): does an encoder's representation of a
 * scan predict the patient's sex, ethnic group or age group? For each scan of the manifest, the
 * middle slice (largest body cross-section) is embedded by each encoder (global average of its
 * latent map); a simple classifier (L2 logistic regression, stratified k-fold cross-validation)
 * predicts each attribute; the same classifier on the raw slice (downsampled pixels, no
 * pretraining) is the baseline. AUROC (one-vs-rest macro for several classes) with a bootstrap 95%
 * interval for two classes. Runs in a trainer process (the 'probe' message); the host half
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
import { crossValidatedProba } from '../core/probe/logreg';
import { PROBE_ATTRIBUTE_LABELS } from '../core/probe/report';
import { argMax, bodyArea } from '../core/ssl/body';
import { preprocessSlice } from '../core/ssl/preprocess';
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
  /** Side of the raw-slice baseline's downsampled image. */
  rawSize?: number;
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

  // Feature sets: the raw slice, then each encoder.
  const features: { name: string; x: Float64Array; d: number }[] = [];
  {
    const d = rawSize * rawSize;
    const x = new Float64Array(scans.length * d);
    scans.forEach((s, i) => x.set(preprocessSlice(s.hu, s.width, s.height, { level: 50, width: 350, size: rawSize, scaling: 'fixed' }), i * d));
    features.push({ name: `raw slice (${rawSize}x${rawSize} px, no pretraining)`, x, d });
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
      images.set(preprocessSlice(s.hu, s.width, s.height, { level: cfg.windowLevel, width: cfg.windowWidth, size, scaling: cfg.scaling }), i * size * size),
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
    for (const f of features) {
      const x = new Float64Array(keep.length * f.d);
      keep.forEach(([i], r) => x.set(f.x.subarray(i * f.d, (i + 1) * f.d), r * f.d));
      const p = crossValidatedProba(x, y, keep.length, f.d, classes.length, folds, seed);
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
    features: features.map((f) => f.name),
    attributes,
    folds,
    seed,
  };
}
