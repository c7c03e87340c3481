/**
 * Reading labels back: which slices of a series carry which labels, and masks per reader,
 * per finding or as a consensus of readers, in stored pixel coordinates (rows x columns).
 */
import { consensus, roisToMask, unpackBits, type Point } from '../../core/labels/raster';
import type { Database } from '../db/sqlite';
import type { FindingAttributes } from '../../shared/types';

export interface FindingRow {
  id: number;
  sourceId: number;
  sourceKind: string;
  kind: 'nodule' | 'small-nodule' | 'non-nodule' | 'segment';
  reader: string;
  key: string;
  group: string;
  attributes: FindingAttributes;
}

interface RoiRow {
  finding_ref: number;
  sop_uid: string;
  inclusion: number;
  contour: string | null;
  mask: Buffer | null;
  rows: number | null;
  columns: number | null;
}

export interface MaskQuery {
  /** Only labels from this label source. */
  sourceId?: number;
  /** Only this reader's annotations (LIDC reading session number as a string). */
  reader?: string;
  /** Consensus: a pixel counts when at least k readers marked it (per nodule group). */
  consensusK?: number;
  /** Finding kinds to include (default nodules and segments). */
  kinds?: FindingRow['kind'][];
}

export function seriesUidOf(db: Database, seriesId: number): string {
  const uid = db.prepare('SELECT series_uid FROM series WHERE id = ?').pluck().get(seriesId) as string | undefined;
  if (!uid) throw new Error(`no series with id ${seriesId}`);
  return uid;
}

/** Findings with at least one ROI on an image of the series. */
export function findingsForSeries(db: Database, seriesId: number): FindingRow[] {
  const rows = db
    .prepare(
      `SELECT DISTINCT f.id, f.source_ref, s.kind AS source_kind, f.kind, f.reader, f.finding_key, f.group_key, f.attributes
       FROM findings f JOIN label_sources s ON s.id = f.source_ref
       JOIN rois r ON r.finding_ref = f.id
       JOIN instances i ON i.sop_uid = r.sop_uid
       WHERE i.series_ref = ? ORDER BY f.source_ref, f.group_key, f.reader, f.id`,
    )
    .all(seriesId) as {
    id: number;
    source_ref: number;
    source_kind: string;
    kind: FindingRow['kind'];
    reader: string;
    finding_key: string;
    group_key: string;
    attributes: string;
  }[];
  return rows.map((r) => ({
    id: r.id,
    sourceId: r.source_ref,
    sourceKind: r.source_kind,
    kind: r.kind,
    reader: r.reader,
    key: r.finding_key,
    group: r.group_key,
    attributes: JSON.parse(r.attributes) as FindingAttributes,
  }));
}

export interface SliceLabelSummary {
  sopUid: string;
  /** Findings with an ROI on this slice, by kind. */
  findings: { nodule: number; 'small-nodule': number; 'non-nodule': number; segment: number };
  readers: string[];
  /** Per-image labels, e.g. {pe_present_on_image: 1}. */
  image: Record<string, number>;
}

/** Per-slice label badges for a series, keyed by SOP Instance UID. */
export function sliceLabelSummary(db: Database, seriesId: number): Map<string, SliceLabelSummary> {
  const out = new Map<string, SliceLabelSummary>();
  const get = (sop: string) => {
    let s = out.get(sop);
    if (!s) {
      s = { sopUid: sop, findings: { nodule: 0, 'small-nodule': 0, 'non-nodule': 0, segment: 0 }, readers: [], image: {} };
      out.set(sop, s);
    }
    return s;
  };
  const rois = db
    .prepare(
      `SELECT r.sop_uid, f.kind, f.reader, COUNT(DISTINCT f.id) AS n FROM rois r JOIN findings f ON f.id = r.finding_ref
       JOIN instances i ON i.sop_uid = r.sop_uid WHERE i.series_ref = ? GROUP BY r.sop_uid, f.kind, f.reader`,
    )
    .all(seriesId) as { sop_uid: string; kind: FindingRow['kind']; reader: string; n: number }[];
  for (const r of rois) {
    const s = get(r.sop_uid);
    s.findings[r.kind] += r.n;
    if (r.reader && !s.readers.includes(r.reader)) s.readers.push(r.reader);
  }
  const img = db
    .prepare(
      `SELECT l.sop_uid, l.name, MAX(l.value) AS value FROM image_labels l JOIN instances i ON i.sop_uid = l.sop_uid
       WHERE i.series_ref = ? GROUP BY l.sop_uid, l.name`,
    )
    .all(seriesId) as { sop_uid: string; name: string; value: number }[];
  for (const r of img) get(r.sop_uid).image[r.name] = r.value;
  return out;
}

function roiMask(r: RoiRow, rows: number, cols: number): Uint8Array | null {
  if (r.mask) {
    if (r.rows !== rows || r.columns !== cols) return null;
    return unpackBits(new Uint8Array(r.mask), rows * cols);
  }
  if (r.contour) return roisToMask([{ points: JSON.parse(r.contour) as Point[], inclusion: r.inclusion === 1 }], rows, cols);
  return null;
}

/**
 * Masks of one slice, one per finding group (a nodule across readers, or a SEG segment), as the
 * query asks: one reader, all readers' union, or a consensus of at least k readers.
 */
export function sliceMasks(
  db: Database,
  sopUid: string,
  rows: number,
  cols: number,
  q: MaskQuery = {},
): { group: string; kind: FindingRow['kind']; sourceId: number; readers: string[]; mask: Uint8Array }[] {
  const kinds = q.kinds ?? ['nodule', 'segment'];
  const all = db
    .prepare(
      `SELECT r.finding_ref, r.sop_uid, r.inclusion, r.contour, r.mask, r.rows, r.columns, f.kind, f.reader, f.group_key, f.source_ref
       FROM rois r JOIN findings f ON f.id = r.finding_ref WHERE r.sop_uid = ? ORDER BY f.id, r.inclusion DESC`,
    )
    .all(sopUid) as (RoiRow & { kind: FindingRow['kind']; reader: string; group_key: string; source_ref: number })[];
  const rowsSel = all.filter(
    (r) => kinds.includes(r.kind) && (q.sourceId === undefined || r.source_ref === q.sourceId) && (q.reader === undefined || r.reader === q.reader),
  );
  // Per finding: its inclusion contours united, exclusions removed (all ROIs of a finding on this slice).
  const perFinding = new Map<number, { row: (typeof rowsSel)[number]; rois: RoiRow[] }>();
  for (const r of rowsSel) {
    const e = perFinding.get(r.finding_ref) ?? { row: r, rois: [] };
    e.rois.push(r);
    perFinding.set(r.finding_ref, e);
  }
  const byGroup = new Map<string, { kind: FindingRow['kind']; sourceId: number; readers: string[]; masks: Uint8Array[] }>();
  for (const { row, rois } of perFinding.values()) {
    let mask: Uint8Array | null;
    const contours = rois.filter((r) => r.contour);
    if (contours.length === rois.length) {
      mask = roisToMask(
        contours.map((r) => ({ points: JSON.parse(r.contour!) as Point[], inclusion: r.inclusion === 1 })),
        rows,
        cols,
      );
    } else {
      mask = new Uint8Array(rows * cols);
      for (const r of rois) {
        const m = roiMask(r, rows, cols);
        if (m) for (let i = 0; i < m.length; i++) if (m[i]) mask[i] = 1;
      }
    }
    const key = `${row.source_ref}:${row.group_key || 'F' + row.finding_ref}`;
    const g = byGroup.get(key) ?? { kind: row.kind, sourceId: row.source_ref, readers: [], masks: [] };
    g.readers.push(row.reader);
    g.masks.push(mask);
    byGroup.set(key, g);
  }
  // k larger than the number of readers who marked this slice gives an empty mask, as it should.
  const k = q.consensusK ?? 1;
  return [...byGroup.entries()].map(([group, g]) => ({ group, kind: g.kind, sourceId: g.sourceId, readers: g.readers, mask: consensus(g.masks, k) }));
}

/** One mask per slice of a series (all groups united), for training and export. Slices without labels are absent. */
export function seriesMasks(db: Database, seriesId: number, q: MaskQuery = {}): Map<string, Uint8Array> {
  const slices = db
    .prepare(
      `SELECT DISTINCT i.sop_uid, i.rows, i.columns FROM instances i JOIN rois r ON r.sop_uid = i.sop_uid WHERE i.series_ref = ?`,
    )
    .all(seriesId) as { sop_uid: string; rows: number; columns: number }[];
  const out = new Map<string, Uint8Array>();
  for (const s of slices) {
    const groups = sliceMasks(db, s.sop_uid, s.rows, s.columns, q);
    if (groups.length === 0) continue;
    const m = new Uint8Array(s.rows * s.columns);
    for (const g of groups) for (let i = 0; i < m.length; i++) if (g.mask[i]) m[i] = 1;
    let any = false;
    for (let i = 0; i < m.length && !any; i++) any = m[i] === 1;
    if (any) out.set(s.sop_uid, m);
  }
  return out;
}
