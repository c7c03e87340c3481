/**
 * Labelled data for fine-tuning, from the index and its labels: slice-level binary labels (RSNA
 * pe_present_on_image, any per-image label, or "a nodule is on this slice") and nodule masks
 * (LIDC readers' consensus or SEG segments). Split by patient like pretraining manifests. Masks
 * are written next to the manifest (masks.bin, deflated bit-packed in stored pixel order) so the
 * trainer process reads everything from the run folder and never opens the database.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync, inflateSync } from 'fflate';
import type { CohortFilter } from '../../shared/types';
import { displayTransform } from '../../core/dicom/geometry';
import { packBits, unpackBits } from '../../core/labels/raster';
import { Rng } from '../../core/random';
import { sliceMasks } from '../labels/label-queries';
import { listSeries, seriesPlanes } from '../db/catalog';
import { countSplits, DEFAULT_FRACTIONS, splitSeriesByPatient, type Manifest, type ManifestSeries, type Split, type SplitCounts } from './manifest';
import type { Database } from '../db/sqlite';

/** What the label of a slice is. */
export type LabelSpec =
  | { kind: 'image-label'; name: string; threshold?: number }
  | { kind: 'nodule'; consensusK?: number; minAreaPx?: number; sourceId?: number };

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
  const labels: number[] = [];
  const masks: (Uint8Array | null)[] = [];
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
    const positive = area >= Math.max(1, spec.minAreaPx ?? 1);
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
  const candidates = o.seriesIds ? listSeries(db).filter((s) => o.seriesIds!.includes(s.id)) : listSeries(db, o.filter ?? {});
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
  const series: FinetuneSeries[] = [];
  for (const { row: r, patientKey, split } of splitSeriesByPatient(db, rows, o.seed, fractions)) {
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
    series.push({
      seriesId: r.id,
      seriesUid: r.seriesInstanceUid,
      patientKey,
      split,
      rows: r.rows!,
      columns: r.columns!,
      transform: { transpose: t.transpose, flipX: t.flipX, flipY: t.flipY },
      slices,
    });
  }
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
  return { version: 1, createdAt: new Date().toISOString(), seed: o.seed, filter: o.filter ?? {}, fractions, task: o.task, label: o.label, series, counts, hash };
}

/** Reads one slice's mask (stored rows x columns, 0/1) from masks.bin. */
export function readMask(masks: Uint8Array, range: [number, number], rows: number, columns: number): Uint8Array {
  return unpackBits(inflateSync(masks.subarray(range[0], range[0] + range[1])), rows * columns);
}
