/**
 * The bias probe (the paper's Figure 6): does an encoder's representation of a scan predict the
 * patient's sex, ethnic group or age group? For each scan, the middle slice (largest body
 * cross-section) is embedded by each encoder (global average of its latent map); a simple
 * classifier (L2 logistic regression, stratified k-fold cross-validation) predicts each
 * attribute; the same classifier on the raw slice (downsampled pixels, no pretraining) is the
 * baseline. AUROC (one-vs-rest macro for several classes) with a bootstrap 95% interval for two
 * classes. Runs where tfjs runs: the CLI or a trainer process, never Electron main.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { CohortFilter } from '../shared/types';
import { parseRunConfig } from '../shared/run-config';
import { displayTransform, toDisplay } from '../core/dicom/geometry';
import { readFileSync } from 'node:fs';
import { aurocOvr, auroc } from '../core/metrics/auroc';
import { aurocBootstrapCi } from '../core/metrics/classification';
import { encode, inferenceContext, vqvaePreset, type VqvaePresetName } from '../core/ml/vqvae';
import { createStore, disposeStore } from '../core/ml/weights';
import { encoderSpecs } from '../core/ml/vqvae';
import { barChart } from '../core/plots';
import { crossValidatedProba } from '../core/probe/logreg';
import { argMax, bodyArea } from '../core/ssl/body';
import { preprocessSlice } from '../core/ssl/preprocess';
import { seriesAttributes } from '../library/db/attributes';
import { initBackend, type BackendChoice } from './backend';
import { latestCheckpointDir, readCheckpoint } from '../library/runs/checkpoint';
import { listSeries, seriesPlanes } from '../library/db/catalog';
import { readFrameHU } from '../library/volumes/pixels';
import type { Database } from '../library/db/sqlite';
import type { BiasProbeResult, ProbeAttribute, ProbeManifest, ProbeScore } from '../shared/results';

/** The probe's manifest and result are declared in src/shared/results.ts, where the protocol and the contract carry them. */
export type { BiasProbeResult, ProbeAttribute, ProbeManifest, ProbeScore };

export function prepareProbe(db: Database, o: { filter?: CohortFilter; seriesIds?: number[] }): ProbeManifest {
  const rows = o.seriesIds ? listSeries(db).filter((s) => o.seriesIds!.includes(s.id)) : listSeries(db, o.filter ?? { modality: 'CT', orientation: 'axial' });
  return {
    scans: rows.map((r) => {
      const a = seriesAttributes(db, r.id);
      const { geometry, planes } = seriesPlanes(db, r.id);
      const t = displayTransform(geometry.planes[0]?.orientation ?? null, geometry.orientation);
      return {
        seriesId: r.id,
        seriesUid: r.seriesInstanceUid,
        attrs: { sex: a.sex, ethnicGroup: a.ethnicGroup, ageGroup: a.ageGroup },
        planes: planes.map((p) => ({ path: p.path, frame: p.frame })),
        transform: { transpose: t.transpose, flipX: t.flipX, flipY: t.flipY },
      };
    }),
  };
}

export interface BiasProbeOptions {
  /** Run folders whose encoders are probed. */
  encoders: string[];
  attributes?: ProbeAttribute[];
  folds?: number;
  seed?: number;
  /** Side of the raw-slice baseline's downsampled image. */
  rawSize?: number;
  outDir: string;
  backend?: string;
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
    const by = new Map(entries.map((e) => [e.name, e]));
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

const ATTR_LABEL: Record<ProbeAttribute, string> = { sex: 'sex', ethnicGroup: 'ethnic group', ageGroup: 'age group' };

/** The probe from a library: prepares the manifest and computes (CLI; the app splits the two). */
export async function runBiasProbe(db: Database, o: BiasProbeOptions & { filter?: CohortFilter; seriesIds?: number[] }): Promise<BiasProbeResult> {
  return computeBiasProbe(prepareProbe(db, o), o);
}

/** The computation: reads the manifest's files, embeds, cross-validates, writes the report. */
export async function computeBiasProbe(manifest: ProbeManifest, o: BiasProbeOptions): Promise<BiasProbeResult> {
  const attributes = o.attributes ?? ['sex', 'ethnicGroup', 'ageGroup'];
  const folds = o.folds ?? 5;
  const seed = o.seed ?? 1;
  const rawSize = o.rawSize ?? 16;
  const warnings: string[] = [];
  const rows = manifest.scans;
  if (rows.length < folds * 2) throw new Error(`the cohort has ${rows.length} scans: the probe needs at least ${folds * 2} for ${folds}-fold cross-validation`);
  await initBackend({ force: o.backend as BackendChoice | undefined });

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
    const name = `${cfg.name || (cfg.kind === 'pretrain' ? `${cfg.task}${cfg.task === 'masked' ? ` ${cfg.maskPercent}%` : ''}` : cfg.task)} (${preset})`;
    features.push({ name, x, d: x.length / scans.length });
  }

  const scores: ProbeScore[] = [];
  for (const attr of attributes) {
    const known = scans.map((s, i) => [i, s.attrs[attr]] as const).filter(([, v]) => v !== '');
    const counts = new Map<string, number>();
    for (const [, v] of known) counts.set(v, (counts.get(v) ?? 0) + 1);
    const classes = [...counts.entries()].filter(([, c]) => c >= folds).map(([v]) => v).sort();
    const dropped = [...counts.entries()].filter(([, c]) => c < folds);
    if (dropped.length) warnings.push(`${ATTR_LABEL[attr]}: ${dropped.map(([v, c]) => `"${v}" (${c})`).join(', ')} left out: fewer scans than folds`);
    const keep = known.filter(([, v]) => classes.includes(v));
    if (classes.length < 2) {
      warnings.push(`${ATTR_LABEL[attr]}: fewer than 2 classes with ${folds}+ scans: not probed`);
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

  mkdirSync(o.outDir, { recursive: true });
  const probed = attributes.filter((a) => scores.some((s) => s.attribute === a));
  const svg = probed.length
    ? barChart({
        title: 'Bias probe: AUROC of predicting patient attributes from each representation',
        groups: probed.map((a) => ATTR_LABEL[a]),
        series: features.map((f) => {
          const of = (a: ProbeAttribute) => scores.find((s) => s.attribute === a && s.features === f.name);
          return {
            name: f.name,
            values: probed.map((a) => of(a)?.auroc ?? NaN),
            lower: probed.map((a) => of(a)?.ci95?.[0] ?? NaN),
            upper: probed.map((a) => of(a)?.ci95?.[1] ?? NaN),
          };
        }),
        // Headroom above 1 for the value labels of bars at AUROC 1.
        yDomain: [0, 1.1],
        yTicks: [0, 0.2, 0.4, 0.6, 0.8, 1],
        hlines: [{ value: 0.5, label: 'chance' }],
        yLabel: 'AUROC (cross-validated)',
        valueLabels: 2,
      })
    : '<svg xmlns="http://www.w3.org/2000/svg"/>';
  const files = {
    json: join(o.outDir, 'bias-probe.json'),
    csv: join(o.outDir, 'bias-probe.csv'),
    svg: join(o.outDir, 'bias-probe.svg'),
    html: join(o.outDir, 'bias-probe.html'),
  };
  const result: BiasProbeResult = {
    scans: scans.length,
    middleSlices: scans.map((s) => ({ seriesUid: s.seriesUid, index: s.index, slices: s.slices, areaPx: s.area })),
    scores,
    files,
    warnings,
  };
  writeFileSync(files.json, JSON.stringify(result, null, 2));
  writeFileSync(
    files.csv,
    ['features,attribute,classes,n,auroc,ci_lower,ci_upper', ...scores.map((s) => [JSON.stringify(s.features), s.attribute, JSON.stringify(s.classes.join('|')), s.n, s.auroc, s.ci95?.[0] ?? '', s.ci95?.[1] ?? ''].join(','))].join('\n') + '\n',
  );
  writeFileSync(files.svg, svg);
  writeFileSync(
    files.html,
    `<!doctype html><meta charset="utf-8"><title>Bias probe</title><style>body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}</style>
<h1>Bias probe</h1><p>${scans.length} scans; middle slice = largest body cross-section; logistic regression, ${folds}-fold cross-validation (seed ${seed}).</p>
${svg}
<table><tr><th>representation</th><th>attribute</th><th>classes</th><th>n</th><th>AUROC</th><th>95% CI</th></tr>
${scores.map((s) => `<tr><td>${escapeHtml(s.features)}</td><td>${ATTR_LABEL[s.attribute]}</td><td>${escapeHtml(s.classes.join(', '))}</td><td>${s.n}</td><td>${s.auroc.toFixed(3)}</td><td>${s.ci95 ? `${s.ci95[0].toFixed(3)}–${s.ci95[1].toFixed(3)}` : ''}</td></tr>`).join('\n')}
</table>${warnings.length ? `<h2>Notes</h2><ul>${warnings.map((w) => `<li>${escapeHtml(w)}</li>`).join('')}</ul>` : ''}`,
  );
  return result;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
