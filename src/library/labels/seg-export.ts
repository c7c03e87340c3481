/**
 * Writing labels back out: a DICOM SEG per series (one segment per nodule group / SEG segment),
 * referencing the indexed source images.
 */
import { readFileSync } from 'node:fs';
import { parseDicom, str } from '../../core/dicom/parse';
import { sliceMasks, type MaskQuery } from './label-queries';
import { seriesPlanes } from '../db/catalog';
import { writeSeg, type SegSource, type WriteSegOptions } from './seg';
import type { Database } from '../db/sqlite';

export interface SegExportResult {
  file: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
  segments: { label: string; slices: number }[];
  frames: number;
}

/** What a SEG of a series copies from it: patient, study and series modules, geometry, and its source images in order. */
export interface SegSeriesContext {
  base: Omit<WriteSegOptions, 'segments'>;
  seriesUid: string;
  /** Each single-frame source image with its stored size. */
  images: { sopUid: string; rows: number; columns: number }[];
}

export function segSeriesContext(db: Database, seriesId: number): SegSeriesContext {
  const meta = db
    .prepare(
      `SELECT se.series_uid, se.frame_of_reference_uid, se.rows, se.columns, se.pixel_spacing_row, se.pixel_spacing_col, se.slice_thickness,
              st.study_uid, st.study_date, st.study_time, st.study_id, p.patient_id, p.sex, p.birth_date
       FROM series se JOIN studies st ON st.id = se.study_ref JOIN patients p ON p.id = st.patient_ref WHERE se.id = ?`,
    )
    .get(seriesId) as
    | {
        series_uid: string;
        frame_of_reference_uid: string;
        rows: number;
        columns: number;
        pixel_spacing_row: number | null;
        pixel_spacing_col: number | null;
        slice_thickness: number | null;
        study_uid: string;
        study_date: string;
        study_time: string;
        study_id: string;
        patient_id: string;
        sex: string;
        birth_date: string;
      }
    | undefined;
  if (!meta) throw new Error(`no series with id ${seriesId}`);
  const { planes } = seriesPlanes(db, seriesId);
  const inst = db.prepare('SELECT sop_uid, sop_class_uid, image_orientation, rows, columns FROM instances WHERE id = ?');
  const sources: SegSource[] = [];
  const images: SegSeriesContext['images'] = [];
  let orientation: number[] = [1, 0, 0, 0, 1, 0];
  for (const p of planes) {
    if (p.frame !== 0) continue; // SEG export covers single-frame source images
    const r = inst.get(p.instanceId) as { sop_uid: string; sop_class_uid: string; image_orientation: string | null; rows: number; columns: number };
    if (r.image_orientation) orientation = JSON.parse(r.image_orientation) as number[];
    sources.push({ sopUid: r.sop_uid, sopClassUid: r.sop_class_uid, position: p.position });
    images.push({ sopUid: r.sop_uid, rows: r.rows, columns: r.columns });
  }
  if (sources.length === 0) throw new Error(`series ${meta.series_uid} has no single-frame images to reference`);
  // The patient's name is not kept in the index: read it from a source file so the SEG matches its images.
  const firstFile = db
    .prepare('SELECT f.path FROM instances i JOIN files f ON f.id = i.file_ref WHERE i.sop_uid = ?')
    .pluck()
    .get(sources[0].sopUid) as string | undefined;
  let patientName = '';
  if (firstFile) {
    try {
      patientName = str(parseDicom(new Uint8Array(readFileSync(firstFile)), { headerOnly: true }).dataSet, 'x00100010');
    } catch {
      /* leave empty */
    }
  }
  return {
    seriesUid: meta.series_uid,
    images,
    base: {
      patient: { patientId: meta.patient_id, patientName, sex: meta.sex, birthDate: meta.birth_date },
      study: { studyInstanceUid: meta.study_uid, studyDate: meta.study_date, studyTime: meta.study_time, studyId: meta.study_id },
      series: { seriesInstanceUid: meta.series_uid, frameOfReferenceUid: meta.frame_of_reference_uid },
      rows: meta.rows,
      columns: meta.columns,
      pixelSpacing: [meta.pixel_spacing_row ?? 1, meta.pixel_spacing_col ?? 1],
      sliceThickness: meta.slice_thickness ?? 1,
      orientation,
      sources,
    },
  };
}

export function exportSeriesSeg(db: Database, seriesId: number, outPath: string, q: MaskQuery = {}): SegExportResult {
  const ctx = segSeriesContext(db, seriesId);
  const groups = new Map<string, Map<string, Uint8Array>>();
  for (const r of ctx.images) {
    for (const g of sliceMasks(db, r.sopUid, r.rows, r.columns, q)) {
      const m = groups.get(g.group) ?? new Map<string, Uint8Array>();
      m.set(r.sopUid, g.mask);
      groups.set(g.group, m);
    }
  }
  if (groups.size === 0) throw new Error(`series ${ctx.seriesUid} has no labels matching the request`);
  const segments = [...groups.entries()].map(([group, masks]) => ({ label: group.split(':')[1] ?? group, masks }));
  const res = writeSeg(outPath, { ...ctx.base, segments });
  return {
    file: outPath,
    seriesInstanceUid: ctx.seriesUid,
    sopInstanceUid: res.sopInstanceUid,
    segments: segments.map((s) => ({ label: s.label, slices: [...s.masks.values()].filter((m) => m.some((v) => v)).length })),
    frames: res.frames,
  };
}
