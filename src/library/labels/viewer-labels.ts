/**
 * Label requests from the renderer: series labels in display order and slice masks in display
 * orientation (the same transform the viewer's voxels went through).
 */
import { ApiError } from '../../shared/contract';
import type { SeriesLabels, SliceMasks } from '../../shared/types';
import { displayTransform, toDisplay } from '../../core/dicom/geometry';
import { findingsForSeries, sliceLabelSummary, sliceMasks, type MaskQuery } from './label-queries';
import { seriesPlanes } from '../db/catalog';
import type { Database } from '../db/sqlite';

function planeSops(db: Database, seriesId: number) {
  const { geometry, planes } = seriesPlanes(db, seriesId);
  const q = db.prepare('SELECT sop_uid, rows, columns, image_orientation FROM instances WHERE id = ?');
  const rows = planes.map((p) => q.get(p.instanceId) as { sop_uid: string; rows: number; columns: number; image_orientation: string | null });
  return { geometry, planes, rows };
}

export function seriesLabels(db: Database, seriesId: number): SeriesLabels {
  if (!db.prepare('SELECT 1 FROM series WHERE id = ?').get(seriesId)) throw new ApiError('not-found', `no series with id ${seriesId}`);
  const summary = sliceLabelSummary(db, seriesId);
  const { rows } = planeSops(db, seriesId);
  const findings = findingsForSeries(db, seriesId);
  const slices: SeriesLabels['slices'] = [];
  rows.forEach((r, index) => {
    const s = summary.get(r.sop_uid);
    if (!s) return;
    // A slice with nothing but non-nodule markers is not a labelled slice: its markers are marks.
    if (s.findings.nodule + s.findings['small-nodule'] + s.findings.segment === 0 && Object.keys(s.image).length === 0) return;
    slices.push({
      index,
      sopUid: r.sop_uid,
      nodules: s.findings.nodule,
      smallNodules: s.findings['small-nodule'],
      segments: s.findings.segment,
      readers: s.readers,
      image: s.image,
    });
  });
  return { seriesId, findings, readers: [...new Set(findings.map((f) => f.reader).filter(Boolean))].sort(), slices, marks: seriesMarks(db, seriesId) };
}

/** Non-nodule point markers of a series in display coordinates (their slice's display transform). */
export function seriesMarks(db: Database, seriesId: number): NonNullable<SeriesLabels['marks']> {
  const { geometry, rows } = planeSops(db, seriesId);
  const indexOf = new Map(rows.map((r, i) => [r.sop_uid, i]));
  const points = db
    .prepare(
      `SELECT r.sop_uid, r.contour, f.reader, f.finding_key FROM rois r JOIN findings f ON f.id = r.finding_ref
       JOIN instances i ON i.sop_uid = r.sop_uid WHERE i.series_ref = ? AND f.kind = 'non-nodule' AND r.contour IS NOT NULL ORDER BY r.id`,
    )
    .all(seriesId) as { sop_uid: string; contour: string; reader: string; finding_key: string }[];
  const out: NonNullable<SeriesLabels['marks']> = [];
  for (const p of points) {
    const index = indexOf.get(p.sop_uid);
    if (index === undefined) continue;
    const r = rows[index];
    let pt: unknown;
    try {
      pt = (JSON.parse(p.contour) as unknown[])[0];
    } catch {
      continue;
    }
    if (!Array.isArray(pt) || pt.length < 2 || !pt.every((v) => typeof v === 'number' && Number.isFinite(v))) continue;
    const [c, rr] = pt as [number, number];
    const t = displayTransform(r.image_orientation ? (JSON.parse(r.image_orientation) as number[]) : null, geometry.orientation);
    const width = t.transpose ? r.rows : r.columns;
    const height = t.transpose ? r.columns : r.rows;
    // toDisplay's inverse for one point: stored (row, column) -> display (x, y).
    const sx = t.transpose ? rr : c;
    const sy = t.transpose ? c : rr;
    out.push({ index, sopUid: p.sop_uid, x: t.flipX ? width - 1 - sx : sx, y: t.flipY ? height - 1 - sy : sy, reader: p.reader, key: p.finding_key });
  }
  return out;
}

export function sliceMasksForViewer(db: Database, seriesId: number, index: number, q: MaskQuery): SliceMasks {
  const { geometry, rows } = planeSops(db, seriesId);
  const r = rows[index];
  if (!r) throw new ApiError('invalid-argument', `slice ${index} is outside the series (${rows.length} slices)`);
  const t = displayTransform(r.image_orientation ? (JSON.parse(r.image_orientation) as number[]) : null, geometry.orientation);
  const groups = sliceMasks(db, r.sop_uid, r.rows, r.columns, q).map((g) => {
    const out = new Uint8Array(g.mask.length);
    toDisplay(g.mask, r.rows, r.columns, t, out);
    return { group: g.group, kind: g.kind, sourceId: g.sourceId, readers: g.readers, mask: out };
  });
  return { seriesId, index, width: t.transpose ? r.rows : r.columns, height: t.transpose ? r.columns : r.rows, groups };
}
