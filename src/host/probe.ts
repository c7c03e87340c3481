/**
 * The bias probe's host half: the manifest of the scans from the library (attributes, slice
 * files, display transform), a trainer process that embeds and cross-validates them (the 'probe'
 * message, src/trainer/bias-probe.ts), and the report written from its answer into the output
 * folder: bias-probe.json (the result), .csv (the scores), .svg (the chart) and .html. The app's
 * experiment service and `ctssl bias-probe` both go through here. As the paper probes held-out
 * exams, the scans whose series a probed encoder (or a run it started from) trained or validated on
 * are left out by default, from its run manifests, and the result says how many.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { BiasProbeResult, ProbeAttribute, ProbeExclusion, ProbeManifest } from '../shared/results';
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

/** What an encoder's run folders say it saw: the series UIDs of the train and validation splits of its manifest and its init chain's; null when a run of the chain has no manifest (imported). */
export function encoderSeenSeries(dir: string): Set<string> | null {
  const seen = new Set<string>();
  const visited = new Set<string>();
  for (let d: string | null = resolve(dir); d !== null && !visited.has(d); ) {
    visited.add(d);
    const manifestPath = join(d, 'manifest.json');
    if (!existsSync(manifestPath)) return null;
    let m: { series?: { seriesUid?: unknown; split?: unknown }[] };
    let init: unknown;
    try {
      m = JSON.parse(readFileSync(manifestPath, 'utf8')) as typeof m;
      init = (JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')) as { init?: unknown }).init;
    } catch {
      return null;
    }
    // an imported run's manifest lists no series: what it trained on cannot be checked
    if (!Array.isArray(m.series) || m.series.length === 0) return null;
    for (const s of m.series) if ((s.split === 'train' || s.split === 'val') && typeof s.seriesUid === 'string') seen.add(s.seriesUid);
    d = typeof init === 'string' && init ? resolve(init) : null;
  }
  return seen;
}

/**
 * The manifest without the scans a probed encoder trained or validated on (encoderSeenSeries), and
 * what was left out: scans in all, per encoder, and the encoders that cannot be checked.
 */
export function excludeEncoderScans(manifest: ProbeManifest, encoders: readonly string[]): { manifest: ProbeManifest; excluded: ProbeExclusion } {
  const seen = encoders.map((e) => ({ encoder: basename(resolve(e)), uids: encoderSeenSeries(e) }));
  const unchecked = seen.filter((s) => s.uids === null).map((s) => s.encoder);
  const isSeen = (uid: string) => seen.some((s) => s.uids?.has(uid));
  const kept = manifest.scans.filter((s) => !isSeen(s.seriesUid));
  return {
    manifest: { ...manifest, scans: kept },
    excluded: {
      scans: manifest.scans.length - kept.length,
      byEncoder: seen.filter((s) => s.uids !== null).map((s) => ({ encoder: s.encoder, scans: manifest.scans.filter((x) => s.uids!.has(x.seriesUid)).length })),
      unchecked,
      training: false,
    },
  };
}

/** The exclusion in words (the CLI, the report, the app). */
export function exclusionText(e: ProbeExclusion): string {
  if (e.training) return 'scans the encoders trained or validated on are included (--include-training-scans): the probe is not on held-out scans';
  const per = e.byEncoder.filter((b) => b.scans > 0).map((b) => `${b.scans} of ${b.encoder}`);
  return `${e.scans} scan${e.scans === 1 ? '' : 's'} left out: in a probed encoder's training or validation split${per.length ? ` (${per.join(', ')})` : ''}`;
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
  /** Probe the scans the encoders trained or validated on too (default: left out, as the paper probes held-out exams). */
  includeTrainingScans?: boolean;
  /** The CNN baseline's settings (tests: fewer steps). */
  cnn?: { preset?: 'paper' | 'standard' | 'small' | 'tiny'; size?: number; steps?: number; batch?: number; lr?: number };
  /** Aborting kills the trainer; the probe then rejects, cancelled, once it has exited. */
  signal?: AbortSignal;
  onProgress?: (done: number, total: number, what: string) => void;
}

/**
 * Probes the scans of `manifest` in a trainer process and writes the report. Rejects with the
 * trainer's error (a TrainerRequestError: crashed, cancelled, or the computation's message).
 */
export async function runProbe(all: ProbeManifest, o: ProbeOptions): Promise<BiasProbeResult> {
  const { manifest, excluded } = o.includeTrainingScans
    ? { manifest: all, excluded: { scans: 0, byEncoder: [], unchecked: [], training: true } satisfies ProbeExclusion }
    : excludeEncoderScans(all, o.encoders);
  const folds = o.folds ?? 5;
  if (excluded.scans > 0 && manifest.scans.length < folds * 2)
    throw new Error(`${exclusionText(excluded)}; ${manifest.scans.length} remain: the probe needs at least ${folds * 2} for ${folds}-fold cross-validation (add held-out scans, or probe them anyway with --include-training-scans)`);
  const e = await trainerRequest(
    o.spawn ?? (() => spawnNodeTrainer()),
    { v: 1, type: 'probe', manifest, encoders: o.encoders, attributes: o.attributes, folds: o.folds, seed: o.seed, backend: o.backend, ...(o.cnn && { cnn: o.cnn }) },
    'probe-result',
    (ev) => {
      if (ev.type === 'probe-progress') o.onProgress?.(ev.done, ev.total, ev.what);
    },
    o.signal,
  );
  return writeProbeReport(o.outDir, e.result, excluded);
}

/** The probe of a library's scans (the listed series, else the filter): `ctssl bias-probe`. */
export function runBiasProbe(db: Database, o: ProbeOptions & { filter?: CohortFilter; seriesIds?: number[] }): Promise<BiasProbeResult> {
  return runProbe(prepareProbe(db, o), o);
}

/** Writes bias-probe.{json,csv,svg,html} into `outDir` from the trainer's answer; returns the result (the JSON). */
export function writeProbeReport(outDir: string, c: ProbeComputation, excluded?: ProbeExclusion): BiasProbeResult {
  mkdirSync(outDir, { recursive: true });
  const svg = probeChart(c);
  const files = {
    json: join(outDir, 'bias-probe.json'),
    csv: join(outDir, 'bias-probe.csv'),
    svg: join(outDir, 'bias-probe.svg'),
    html: join(outDir, 'bias-probe.html'),
  };
  // Scans probed although an encoder trained on them, and encoders that could not be checked, are warnings (every door shows those).
  const exclusionWarnings = excluded
    ? [
        ...(excluded.training ? [exclusionText(excluded)] : []),
        ...excluded.unchecked.map((e) => `${e}: the scans it trained on cannot be checked (no run manifest: trained elsewhere); none left out for it`),
      ]
    : [];
  const result: BiasProbeResult = { scans: c.scans, middleSlices: c.middleSlices, scores: c.scores, files, warnings: [...exclusionWarnings, ...c.warnings], ...(excluded && { excluded }) };
  writeFileSync(files.json, JSON.stringify(result, null, 2));
  writeFileSync(files.csv, probeCsv(c.scores));
  writeFileSync(files.svg, svg);
  // the page says what was left out first
  writeFileSync(files.html, probeHtml({ ...c, warnings: [...(excluded && !excluded.training ? [exclusionText(excluded)] : []), ...result.warnings] }, svg));
  return result;
}
