/**
 * The bias probe's host half: the manifest of the scans from the library (attributes, slice
 * files, display transform), a trainer process that embeds and cross-validates them (the 'probe'
 * message, src/trainer/bias-probe.ts), and the report written from its answer into the output
 * folder: bias-probe.json (the result), .csv (the scores), .svg (the chart) and .html. The app's
 * experiment service and `ctssl bias-probe` both go through here.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BiasProbeResult, ProbeAttribute, ProbeManifest } from '../shared/results';
import type { ProbeComputation } from '../shared/trainer-protocol';
import type { CohortFilter } from '../shared/types';
import { displayTransform } from '../core/dicom/geometry';
import { probeChart, probeCsv, probeHtml } from '../core/probe/report';
import { seriesAttributes } from '../library/db/attributes';
import { listSeries, seriesPlanes } from '../library/db/catalog';
import type { Database } from '../library/db/sqlite';
import { spawnNodeTrainer, trainerRequest, type SpawnTrainer } from './runs/trainer-host';
import type { BackendName } from '../shared/backends';

/** The scans to probe (the listed series, else the cohort filter, by default CT axial) as the trainer reads them. */
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

export interface ProbeOptions {
  /** Run folders whose encoders are probed (besides the raw-slice baseline). */
  encoders: string[];
  /** Default: sex, ethnic group and age group. */
  attributes?: ProbeAttribute[];
  /** Cross-validation folds (default 5). */
  folds?: number;
  /** Seed of the folds and the bootstrap (default 1). */
  seed?: number;
  /** Folder for the report files (created). */
  outDir: string;
  /** Force the trainer's compute backend. */
  backend?: BackendName;
  /** Starts the trainer process (the app's utility process; default: a Node child process). */
  spawn?: SpawnTrainer;
  /** Aborting kills the trainer; the probe then rejects, cancelled, once it has exited. */
  signal?: AbortSignal;
  onProgress?: (done: number, total: number, what: string) => void;
}

/**
 * Probes the scans of `manifest` in a trainer process and writes the report. Rejects with the
 * trainer's error (a TrainerRequestError: crashed, cancelled, or the computation's message).
 */
export async function runProbe(manifest: ProbeManifest, o: ProbeOptions): Promise<BiasProbeResult> {
  const e = await trainerRequest(
    o.spawn ?? (() => spawnNodeTrainer()),
    { v: 1, type: 'probe', manifest, encoders: o.encoders, attributes: o.attributes, folds: o.folds, seed: o.seed, backend: o.backend },
    'probe-result',
    (ev) => {
      if (ev.type === 'probe-progress') o.onProgress?.(ev.done, ev.total, ev.what);
    },
    o.signal,
  );
  return writeProbeReport(o.outDir, e.result);
}

/** The probe of a library's scans (the listed series, else the filter): `ctssl bias-probe`. */
export function runBiasProbe(db: Database, o: ProbeOptions & { filter?: CohortFilter; seriesIds?: number[] }): Promise<BiasProbeResult> {
  return runProbe(prepareProbe(db, o), o);
}

/** Writes bias-probe.{json,csv,svg,html} into `outDir` from the trainer's answer; returns the result (the JSON). */
export function writeProbeReport(outDir: string, c: ProbeComputation): BiasProbeResult {
  mkdirSync(outDir, { recursive: true });
  const svg = probeChart(c);
  const files = {
    json: join(outDir, 'bias-probe.json'),
    csv: join(outDir, 'bias-probe.csv'),
    svg: join(outDir, 'bias-probe.svg'),
    html: join(outDir, 'bias-probe.html'),
  };
  const result: BiasProbeResult = { scans: c.scans, middleSlices: c.middleSlices, scores: c.scores, files, warnings: c.warnings };
  writeFileSync(files.json, JSON.stringify(result, null, 2));
  writeFileSync(files.csv, probeCsv(c.scores));
  writeFileSync(files.svg, svg);
  writeFileSync(files.html, probeHtml(c, svg));
  return result;
}
