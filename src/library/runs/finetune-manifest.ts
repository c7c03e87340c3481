/**
 * Labelled data for fine-tuning, from the index and its labels: slice-level binary labels (RSNA
 * pe_present_on_image, any per-image label, or "a nodule is on this slice") and nodule masks
 * (LIDC readers' consensus or SEG segments). Split by patient like pretraining manifests, and
 * stratified: patients with a positive slice and those without are split apart, so that each split
 * gets positives once there are 3 positive patients (splitClassProblems says when not). Masks
 * are written next to the manifest (masks.bin, deflated bit-packed in stored pixel order) so the
 * trainer process reads everything from the run folder and never opens the database.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync, inflateSync } from 'fflate';
import type { CohortFilter, SplitLineage } from '../../shared/types';
import { displayTransform } from '../../core/dicom/geometry';
import { packBits, unpackBits } from '../../core/labels/raster';
import { Rng } from '../../core/random';
import { sliceMasks } from '../labels/label-queries';
import { listSeries, seriesPlanes } from '../db/catalog';
import { countSplits, DEFAULT_FRACTIONS, seriesPatientKeys, splitPatientsConstrained, type Manifest, type ManifestSeries, type Split, type SplitCounts } from './manifest';
import type { Database } from '../db/sqlite';

/** What the label of a slice is. */
export type LabelSpec =
  | { kind: 'image-label'; name: string; threshold?: number }
  | {
      kind: 'nodule';
      consensusK?: number;
      /** Nodule area (pixels, stored resolution) from which a slice is positive; slices with a smaller non-zero area are left out (default 1). */
      minAreaPx?: number;
      sourceId?: number;
    };

export interface FinetuneSlice {
  path: string;
  frame: number;
  sopUid: string;
  /** 0/1 slice label (classification), or whether the slice has a mask (segmentation). */
  label: number;
  /** Byte range of the deflated packed mask in masks.bin (segmentation positives). */
  mask?: [number, number];
}

export interface FinetuneSeries extends Omit<ManifestSeries, 'slices'> {
  slices: FinetuneSlice[];
}

export interface FinetuneManifest extends Omit<Manifest, 'series' | 'counts'> {
  task: 'classification' | 'segmentation';
  label: LabelSpec;
  series: FinetuneSeries[];
  counts: Record<Split, SplitCounts & { positives: number }>;
}

export interface FinetuneManifestOptions {
  task: 'classification' | 'segmentation';
  label: LabelSpec;
  filter?: CohortFilter;
  seriesIds?: number[];
  seed: number;
  fractions?: { train: number; val: number; test: number };
  /** Segmentation: negatives kept per positive slice (0 = positives only). */
  negativesPerPositive?: number;
  sliceStride?: number;
  /** Patients that trained a run this one starts from: kept in the training split. */
  keepInTrain?: ReadonlySet<string>;
  /** Split patients with a positive slice and those without apart (default true). */
  stratify?: boolean;
  /**
   * Labelled series whose patients go to the training split only, added after the cohort is split:
   * more labelled training patients with the same validation and held-out patients (a study of the
   * labelled cohort's size). None may be in the cohort or of one of its patients.
   */
  trainOnlySeriesIds?: number[];
}

function labelOfSlices(db: Database, sops: string[], rowsCols: { rows: number; columns: number }[], spec: LabelSpec): { labels: (number | null)[]; masks: (Uint8Array | null)[] } {
  if (spec.kind === 'image-label') {
    const q = db.prepare('SELECT MAX(value) FROM image_labels WHERE sop_uid = ? AND name = ?').pluck();
    const labels = sops.map((s) => {
      const v = q.get(s, spec.name) as number | null;
      return v === null || v === undefined ? null : v > (spec.threshold ?? 0.5) ? 1 : 0;
    });
    return { labels, masks: sops.map(() => null) };
  }
  const labels: (number | null)[] = [];
  const masks: (Uint8Array | null)[] = [];
  const minArea = Math.max(1, spec.minAreaPx ?? 1);
  sops.forEach((sop, i) => {
    const { rows, columns } = rowsCols[i];
    const groups = sliceMasks(db, sop, rows, columns, { consensusK: spec.consensusK, sourceId: spec.sourceId, kinds: ['nodule', 'segment'] });
    let m: Uint8Array | null = null;
    for (const g of groups) {
      m ??= new Uint8Array(rows * columns);
      for (let k = 0; k < m.length; k++) if (g.mask[k]) m[k] = 1;
    }
    let area = 0;
    if (m) for (let k = 0; k < m.length; k++) area += m[k];
    // A slice that shows only a sliver of a nodule (area below minAreaPx, the cap of a sphere) is
    // neither a clear positive nor a negative: it is left out, not counted as a negative.
    if (area > 0 && area < minArea) {
      labels.push(null);
      masks.push(null);
      return;
    }
    const positive = area >= minArea;
    labels.push(positive ? 1 : 0);
    masks.push(positive ? m : null);
  });
  return { labels, masks };
}

/** Series with labels of the requested kind (others have no ground truth). */
function labelledSeriesIds(db: Database, spec: LabelSpec): Set<number> {
  const sql =
    spec.kind === 'image-label'
      ? `SELECT DISTINCT i.series_ref FROM image_labels l JOIN instances i ON i.sop_uid = l.sop_uid WHERE l.name = ?`
      : `SELECT DISTINCT i.series_ref FROM rois r JOIN findings f ON f.id = r.finding_ref JOIN instances i ON i.sop_uid = r.sop_uid
         WHERE f.kind IN ('nodule', 'small-nodule', 'segment')${spec.sourceId !== undefined ? ' AND f.source_ref = ?' : ''}`;
  const args = spec.kind === 'image-label' ? [spec.name] : spec.sourceId !== undefined ? [spec.sourceId] : [];
  return new Set(db.prepare(sql).pluck().all(...args) as number[]);
}

export function buildFinetuneManifest(db: Database, outDir: string, o: FinetuneManifestOptions): FinetuneManifest {
  const fractions = o.fractions ?? DEFAULT_FRACTIONS;
  const stride = Math.max(1, o.sliceStride ?? 1);
  const labelled = labelledSeriesIds(db, o.label);
  const cohort = o.seriesIds ? listSeries(db).filter((s) => o.seriesIds!.includes(s.id)) : listSeries(db, o.filter ?? {});
  const trainOnly = new Set(o.trainOnlySeriesIds ?? []);
  const both = cohort.find((s) => trainOnly.has(s.id));
  if (both) throw new Error(`series ${both.id} is in the cohort and among the training-only series: give it once`);
  const extra = trainOnly.size ? listSeries(db).filter((s) => trainOnly.has(s.id)) : [];
  const missing = [...trainOnly].find((id) => !extra.some((s) => s.id === id));
  if (missing !== undefined) throw new Error(`training-only series ${missing} is not in the library`);
  const unlabelled = extra.find((s) => !labelled.has(s.id));
  if (unlabelled) throw new Error(`training-only series ${unlabelled.id} has no labels of this kind`);
  const candidates = [...cohort, ...extra];
  const rows = candidates.filter((s) => labelled.has(s.id) && s.slices > 0 && s.rows && s.columns);
  if (rows.length === 0) {
    throw new Error(
      o.label.kind === 'image-label'
        ? `no series in the cohort has per-image labels named "${o.label.name}": import them first (ctssl labels import)`
        : 'no series in the cohort has nodule annotations: import LIDC XML or DICOM SEG first (ctssl labels import)',
    );
  }
  const inst = db.prepare('SELECT sop_uid, rows, columns, image_orientation FROM instances WHERE id = ?');
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const rng = new Rng(o.seed ^ 0x4e6);
  // The labelled slices of each series first: a patient's class (any positive slice) decides its split.
  const labelledSeries: Omit<FinetuneSeries, 'split'>[] = [];
  for (const { row: r, patientKey } of seriesPatientKeys(db, rows)) {
    const { geometry, planes } = seriesPlanes(db, r.id);
    const info = planes.map((p) => inst.get(p.instanceId) as { sop_uid: string; rows: number; columns: number; image_orientation: string | null });
    const iop = info[0]?.image_orientation ? (JSON.parse(info[0].image_orientation) as number[]) : null;
    const t = displayTransform(iop, geometry.orientation);
    const idx = planes.map((_, i) => i).filter((i) => i % stride === 0);
    const { labels, masks } = labelOfSlices(
      db,
      idx.map((i) => info[i].sop_uid),
      idx.map((i) => info[i]),
      o.label,
    );
    let slices: FinetuneSlice[] = [];
    idx.forEach((i, k) => {
      if (labels[k] === null) return; // no ground truth for this slice
      const s: FinetuneSlice = { path: planes[i].path, frame: planes[i].frame, sopUid: info[i].sop_uid, label: labels[k]! };
      const m = masks[k];
      if (o.task === 'segmentation' && m) {
        const z = deflateSync(packBits(m), { level: 6 });
        chunks.push(z);
        s.mask = [offset, z.length];
        offset += z.length;
      }
      slices.push(s);
    });
    if (o.task === 'segmentation') {
      const pos = slices.filter((s) => s.label === 1);
      const neg = rng.shuffle(slices.filter((s) => s.label === 0)).slice(0, Math.round(pos.length * (o.negativesPerPositive ?? 1)));
      const keep = new Set([...pos, ...neg]);
      slices = slices.filter((s) => keep.has(s));
    }
    if (slices.length === 0) continue;
    labelledSeries.push({
      seriesId: r.id,
      seriesUid: r.seriesInstanceUid,
      patientKey,
      rows: r.rows!,
      columns: r.columns!,
      transform: { transpose: t.transpose, flipX: t.flipX, flipY: t.flipY },
      slices,
    });
  }
  // The cohort is split as if the training-only series were not there; their patients then join training.
  const inCohort = labelledSeries.filter((s) => !trainOnly.has(s.seriesId));
  const cohortPatients = new Set(inCohort.map((s) => s.patientKey));
  const shared = labelledSeries.find((s) => trainOnly.has(s.seriesId) && cohortPatients.has(s.patientKey));
  if (shared) throw new Error(`training-only series ${shared.seriesId} is of a patient in the cohort: a patient's series go to one split, so give it with the cohort`);
  const classes = patientClasses(inCohort);
  const { splits, due } = splitPatientsConstrained(
    inCohort.map((s) => s.patientKey),
    o.seed,
    fractions,
    { keepInTrain: o.keepInTrain, ...(o.stratify !== false && { classes }) },
  );
  const series: FinetuneSeries[] = labelledSeries.map((s) => ({ ...s, split: trainOnly.has(s.seriesId) ? 'train' : splits.get(s.patientKey)! }));
  const blob = new Uint8Array(offset);
  let at = 0;
  for (const c of chunks) {
    blob.set(c, at);
    at += c.length;
  }
  writeFileSync(join(outDir, 'masks.bin'), blob);
  const base = countSplits(series);
  const counts = {} as FinetuneManifest['counts'];
  for (const sp of ['train', 'val', 'test'] as Split[]) {
    const positives = series.filter((x) => x.split === sp).reduce((a, x) => a + x.slices.filter((s) => s.label === 1).length, 0);
    counts[sp] = { ...base[sp], positives };
  }
  const hash = createHash('sha256')
    .update(JSON.stringify({ seed: o.seed, fractions, task: o.task, label: o.label, series: series.map((s) => [s.seriesUid, s.split, s.slices.map((x) => [x.sopUid, x.label])]) }))
    .update(blob)
    .digest('hex');
  const split: SplitLineage = { inheritedFrom: null, parents: [], keptInTrain: [], overlap: [], stratified: o.stratify !== false, due, warnings: [] };
  return { version: 1, createdAt: new Date().toISOString(), seed: o.seed, filter: o.filter ?? {}, fractions, task: o.task, label: o.label, series, counts, hash, split };
}

/** Each patient's class: 1 when any of its labelled slices is positive. */
export function patientClasses(series: readonly { patientKey: string; slices: readonly { label: number }[] }[]): Map<string, 0 | 1> {
  const out = new Map<string, 0 | 1>();
  for (const s of series) out.set(s.patientKey, out.get(s.patientKey) === 1 || s.slices.some((x) => x.label === 1) ? 1 : 0);
  return out;
}

const SPLIT_NAMES: Record<Split, string> = { train: 'training', val: 'validation', test: 'held-out' };

/**
 * What keeps a fine-tuning manifest's splits from measuring anything: a split with patients but no
 * positive slice (or, for classification, no negative one), each said with where the positive
 * patients went. Empty: every split that has patients has both classes. A split without patients
 * (a cohort too small to hold any out) is not a problem here: the results say they are not held out.
 */
export function splitClassProblems(m: Pick<FinetuneManifest, 'series' | 'counts' | 'task' | 'split'>): string[] {
  const classes = patientClasses(m.series);
  const positives = [...classes].filter(([, c]) => c === 1).map(([k]) => k);
  const splitOf = new Map(m.series.map((s) => [s.patientKey, s.split]));
  const kept = new Set(m.split?.keptInTrain ?? []);
  const where = (['train', 'val', 'test'] as Split[])
    .map((sp) => ({ sp, n: positives.filter((k) => splitOf.get(k) === sp).length }))
    .filter((x) => x.n > 0);
  const keptPositives = positives.filter((k) => kept.has(k)).length;
  const spread =
    positives.length === 0
      ? 'no patient has a positive slice'
      : `${positives.length} positive patient${positives.length === 1 ? '' : 's'}: ${where.length === 1 ? `all in ${where[0].sp}` : where.map((x) => `${x.n} in ${x.sp}`).join(', ')}${keptPositives ? `, ${keptPositives} of them kept in train because a parent run trained on them` : ''}`;
  const out: string[] = [];
  for (const sp of ['train', 'val', 'test'] as Split[]) {
    const c = m.counts[sp];
    if (c.patients === 0) continue;
    if (c.positives === 0) out.push(`${SPLIT_NAMES[sp]} split has no positive patients (${spread})`);
    else if (m.task === 'classification' && c.positives === c.slices) out.push(`${SPLIT_NAMES[sp]} split has no negative slices (${c.patients} patient${c.patients === 1 ? '' : 's'}, every labelled slice positive)`);
  }
  return out;
}

/** Reads one slice's mask (stored rows x columns, 0/1) from masks.bin. */
export function readMask(masks: Uint8Array, range: [number, number], rows: number, columns: number): Uint8Array {
  return unpackBits(inflateSync(masks.subarray(range[0], range[0] + range[1])), rows * columns);
}
