/**
 * What the indexer writes: the prepared statements of one job, and recording one file (as
 * indexed with its patient, study, series and instance, as a duplicate of an instance at another
 * path, or as skipped with the reason), detaching what a changed or deleted file contributed.
 */
import { dirname } from 'node:path';
import { type InstanceHeader, isImage } from '../../core/dicom/header';
import { resolveIdentity, type Identity } from '../../core/dicom/identity';
import type { Database } from '../db/sqlite';
import { readFileHeader, type ReadResult } from './file-header';
import type { ScannedFile } from './folder-walk';

/** A file as the library last saw it. */
export interface KnownFile {
  id: number;
  size: number;
  mtime_ms: number;
}

const json = (v: unknown) => (v === null || v === undefined ? null : JSON.stringify(v));

/** Prepared statements for one database, built once per job. */
export function statements(db: Database) {
  return {
    upsertFolder: db.prepare(
      `INSERT INTO folders (path, added_at) VALUES (?, ?) ON CONFLICT(path) DO UPDATE SET path = excluded.path RETURNING id`,
    ),
    folderDone: db.prepare(`UPDATE folders SET last_indexed_at = ? WHERE id = ?`),
    fileByPath: db.prepare(`SELECT id, size, mtime_ms FROM files WHERE path = ?`),
    markSeen: db.prepare(`UPDATE files SET seen_run = ? WHERE id = ?`),
    unseenUnder: db.prepare(`SELECT id FROM files WHERE (path = ? OR path LIKE ? ESCAPE '\\') AND seen_run != ?`),
    insertFile: db.prepare(
      `INSERT INTO files (path, folder_ref, size, mtime_ms, status, instance_ref, warnings) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
    ),
    updateFile: db.prepare(`UPDATE files SET size = ?, mtime_ms = ?, status = ?, instance_ref = ?, warnings = ? WHERE id = ?`),
    deleteFile: db.prepare(`DELETE FROM files WHERE id = ?`),
    fileById: db.prepare(`SELECT id, status, instance_ref FROM files WHERE id = ?`),
    insertSkipped: db.prepare(`INSERT OR REPLACE INTO skipped (file_ref, reason) VALUES (?, ?)`),
    deleteSkipped: db.prepare(`DELETE FROM skipped WHERE file_ref = ?`),
    upsertPatient: db.prepare(
      `INSERT INTO patients (patient_key, patient_id, sex, birth_date, ethnic_group, uid_derived) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(patient_key) DO UPDATE SET
         sex = CASE WHEN excluded.sex != '' THEN excluded.sex ELSE sex END,
         birth_date = CASE WHEN excluded.birth_date != '' THEN excluded.birth_date ELSE birth_date END,
         ethnic_group = CASE WHEN excluded.ethnic_group != '' THEN excluded.ethnic_group ELSE ethnic_group END
       RETURNING id`,
    ),
    upsertStudy: db.prepare(
      `INSERT INTO studies (study_uid, patient_ref, study_date, study_time, study_id, description, patient_age, uid_derived)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(study_uid) DO UPDATE SET patient_ref = excluded.patient_ref,
         patient_age = CASE WHEN excluded.patient_age != '' THEN excluded.patient_age ELSE patient_age END
       RETURNING id`,
    ),
    upsertSeries: db.prepare(
      `INSERT INTO series (series_uid, study_ref, modality, series_number, description, body_part, manufacturer, model,
         contrast_agent, kernel, series_date, frame_of_reference_uid, uid_derived, geometry_dirty)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
       ON CONFLICT(series_uid) DO UPDATE SET geometry_dirty = 1, study_ref = excluded.study_ref,
         contrast_agent = CASE WHEN excluded.contrast_agent != '' THEN excluded.contrast_agent ELSE contrast_agent END
       RETURNING id`,
    ),
    insertIdentifier: db.prepare(`INSERT OR IGNORE INTO phi_identifiers (series_ref, kind, value) VALUES (?, ?, ?)`),
    instanceBySop: db.prepare(`SELECT id, file_ref, series_ref FROM instances WHERE sop_uid = ?`),
    insertInstance: db.prepare(
      `INSERT INTO instances (sop_uid, series_ref, file_ref, sop_class_uid, instance_number, rows, columns, pixel_spacing,
         slice_thickness, image_position, image_orientation, frame_positions, slice_location, gantry_tilt, rescale_slope,
         rescale_intercept, rescale_type, bits_allocated, bits_stored, high_bit, pixel_representation, photometric,
         samples_per_pixel, transfer_syntax, number_of_frames, pixel_padding_value, pixel_padding_range_limit,
         window_center, window_width, has_pixel_data, image_type, acquisition_time, uid_derived, identifiers_indexed)
       VALUES (@sop_uid, @series_ref, @file_ref, @sop_class_uid, @instance_number, @rows, @columns, @pixel_spacing,
         @slice_thickness, @image_position, @image_orientation, @frame_positions, @slice_location, @gantry_tilt, @rescale_slope,
         @rescale_intercept, @rescale_type, @bits_allocated, @bits_stored, @high_bit, @pixel_representation, @photometric,
         @samples_per_pixel, @transfer_syntax, @number_of_frames, @pixel_padding_value, @pixel_padding_range_limit,
         @window_center, @window_width, @has_pixel_data, @image_type, @acquisition_time, @uid_derived, @identifiers_indexed)
       RETURNING id`,
    ),
    deleteInstance: db.prepare(`DELETE FROM instances WHERE id = ?`),
    setInstanceFile: db.prepare(`UPDATE instances SET file_ref = ? WHERE id = ?`),
    markSeriesDirty: db.prepare(`UPDATE series SET geometry_dirty = 1 WHERE id = ?`),
    duplicateOf: db.prepare(`SELECT id FROM files WHERE instance_ref = ? AND status = 'duplicate' AND id != ? ORDER BY id LIMIT 1`),
    promote: db.prepare(`UPDATE files SET status = 'indexed' WHERE id = ?`),
    seriesOfInstance: db.prepare(`SELECT series_ref FROM instances WHERE id = ?`),
  };
}

export type Stmts = ReturnType<typeof statements>;

/**
 * Detaches a file from what it contributed: if it was the primary file of an instance, a duplicate
 * file takes over, or the instance goes.
 */
export function detachFile(s: Stmts, fileId: number): void {
  const f = s.fileById.get(fileId) as { id: number; status: string; instance_ref: number | null } | undefined;
  if (!f) return;
  s.deleteSkipped.run(fileId);
  if (f.status === 'indexed' && f.instance_ref !== null) {
    const inst = s.seriesOfInstance.get(f.instance_ref) as { series_ref: number } | undefined;
    const dup = s.duplicateOf.get(f.instance_ref, fileId) as { id: number } | undefined;
    if (dup) {
      s.setInstanceFile.run(dup.id, f.instance_ref);
      s.promote.run(dup.id);
    } else {
      s.deleteInstance.run(f.instance_ref);
    }
    if (inst) s.markSeriesDirty.run(inst.series_ref);
  }
}

export function cleanupOrphans(db: Database): void {
  db.exec(`
    DELETE FROM series WHERE id NOT IN (SELECT DISTINCT series_ref FROM instances);
    DELETE FROM studies WHERE id NOT IN (SELECT DISTINCT study_ref FROM series);
    DELETE FROM patients WHERE id NOT IN (SELECT DISTINCT patient_ref FROM studies);
  `);
}

export function totals(db: Database) {
  const one = (sql: string) => (db.prepare(sql).pluck().get() as number) ?? 0;
  return {
    instances: one('SELECT COUNT(*) FROM instances'),
    series: one('SELECT COUNT(*) FROM series'),
    studies: one('SELECT COUNT(*) FROM studies'),
    patients: one('SELECT COUNT(*) FROM patients'),
    duplicates: one(`SELECT COUNT(*) FROM files WHERE status = 'duplicate'`),
  };
}

/** Whether the library holds this file as it is now (same size and mtime): it is not read again. */
export function isUnchanged(s: Stmts, f: ScannedFile): boolean {
  const prev = s.fileByPath.get(f.path) as KnownFile | undefined;
  return prev !== undefined && prev.size === f.size && prev.mtime_ms === f.mtimeMs;
}

/**
 * Records the files of one job, each marked as seen by the job's run id. Patient, study and series
 * rows are written once per series per job (the first file of a series brings them up to date; its
 * other files only add instances), patient identifiers once per distinct value per series.
 */
export class FileRecorder {
  /** Files read and recorded (not unchanged ones). */
  parsed = 0;
  /** Files recorded as skipped. */
  skipped = 0;
  /** Files with derived identities (empty UIDs or PatientID), by folder. */
  readonly derivedFolders = new Map<string, number>();
  private readonly seriesSeen = new Map<string, number>();
  // Patient identifiers for the export check: one row per distinct value per series, written
  // once per job (this job's rows are remembered, the table's primary key ignores older ones).
  private readonly identifiersSeen = new Map<number, Set<string>>();
  private readonly lastIdentifiers = new Map<number, InstanceHeader['identifiers']>();
  private readonly buf: Uint8Array;

  constructor(
    private readonly s: Stmts,
    private readonly runId: number,
    private readonly headChunk: number,
  ) {
    this.buf = new Uint8Array(headChunk);
  }

  /**
   * Records one file; `read` holds the headers read ahead (a file missing there is read now).
   * An error (a database constraint, an unexpected header shape) records the file as skipped with
   * it, so a batch is never lost.
   */
  record(file: ScannedFile, folderId: number, read: Map<string, ReadResult>): void {
    const { s } = this;
    try {
      this.recordFile(file, folderId, read);
    } catch (err) {
      const row = s.fileByPath.get(file.path) as KnownFile | undefined;
      const fid = row?.id ?? (s.insertFile.get(file.path, folderId, file.size, file.mtimeMs, 'skipped', null, null) as { id: number }).id;
      s.updateFile.run(file.size, file.mtimeMs, 'skipped', null, null, fid);
      s.insertSkipped.run(fid, `could not index: ${(err as Error).message}`);
      s.markSeen.run(this.runId, fid);
      this.skipped++;
    }
  }

  private recordFile(file: ScannedFile, folderId: number, read: Map<string, ReadResult>): void {
    const { s } = this;
    const prev = s.fileByPath.get(file.path) as KnownFile | undefined;
    if (prev && prev.size === file.size && prev.mtime_ms === file.mtimeMs) {
      s.markSeen.run(this.runId, prev.id);
      return;
    }
    const res = file.skip !== undefined ? { skip: file.skip } : (read.get(file.path) ?? readFileHeader(file.path, file.size, this.headChunk, this.buf));
    this.parsed++;
    let fileId: number;
    if (prev) {
      detachFile(s, prev.id);
      fileId = prev.id;
    } else {
      fileId = (s.insertFile.get(file.path, folderId, file.size, file.mtimeMs, 'skipped', null, null) as { id: number }).id;
    }
    s.markSeen.run(this.runId, fileId);
    if ('skip' in res) {
      s.updateFile.run(file.size, file.mtimeMs, 'skipped', null, null, fileId);
      s.insertSkipped.run(fileId, res.skip);
      this.skipped++;
      return;
    }
    const h = res.header;
    const dir = dirname(file.path);
    const id = resolveIdentity(h, dir);
    if (id.derived.length > 0) this.derivedFolders.set(dir, (this.derivedFolders.get(dir) ?? 0) + 1);
    let seriesRef = this.seriesSeen.get(id.seriesUid);
    if (seriesRef === undefined) {
      seriesRef = recordSeries(s, id, h);
      this.seriesSeen.set(id.seriesUid, seriesRef);
    }
    // Duplicates too: a copy of an instance may carry other identifiers, and may become its file.
    if (h.identifiers) this.recordIdentifiers(seriesRef, h.identifiers);
    const existing = s.instanceBySop.get(id.sopUid) as { id: number; file_ref: number | null; series_ref: number } | undefined;
    const fileWarnings = h.warnings.length ? JSON.stringify(h.warnings) : null;
    if (existing && existing.file_ref !== null && existing.file_ref !== fileId) {
      s.updateFile.run(file.size, file.mtimeMs, 'duplicate', existing.id, fileWarnings, fileId);
      return;
    }
    if (existing) s.deleteInstance.run(existing.id);
    const instanceId = recordInstance(s, id, h, seriesRef, fileId);
    s.updateFile.run(file.size, file.mtimeMs, 'indexed', instanceId, fileWarnings, fileId);
  }

  private recordIdentifiers(seriesRef: number, ids: InstanceHeader['identifiers']): void {
    // Most files of a series carry the same identifiers as the last one recorded for it.
    const last = this.lastIdentifiers.get(seriesRef);
    if (last && last.length === ids.length && last.every((x, i) => x.kind === ids[i].kind && x.value === ids[i].value)) return;
    this.lastIdentifiers.set(seriesRef, ids);
    let seen = this.identifiersSeen.get(seriesRef);
    if (!seen) this.identifiersSeen.set(seriesRef, (seen = new Set()));
    for (const { kind, value } of ids) {
      const key = `${kind}\u0000${value}`;
      if (seen.has(key)) continue;
      seen.add(key);
      this.s.insertIdentifier.run(seriesRef, kind, value);
    }
  }
}

/** Brings the patient, study and series rows of a file up to date; returns the series row. */
function recordSeries(s: Stmts, id: Identity, h: InstanceHeader): number {
  const patientRef = (
    s.upsertPatient.get(id.patientKey, id.patientId, h.patientSex, h.patientBirthDate, h.ethnicGroup, id.derived.includes('patient') ? 1 : 0) as {
      id: number;
    }
  ).id;
  const studyRef = (
    s.upsertStudy.get(id.studyUid, patientRef, h.studyDate, h.studyTime, h.studyId, h.studyDescription, h.patientAge, id.derived.includes('study') ? 1 : 0) as {
      id: number;
    }
  ).id;
  return (
    s.upsertSeries.get(
      id.seriesUid,
      studyRef,
      h.modality,
      h.seriesNumber === null ? null : Math.round(h.seriesNumber),
      h.seriesDescription,
      h.bodyPart,
      h.manufacturer,
      h.model,
      h.contrastAgent,
      h.kernel,
      h.seriesDate || h.studyDate,
      h.frameOfReferenceUid,
      id.derived.includes('series') ? 1 : 0,
    ) as { id: number }
  ).id;
}

/** Inserts the instance row of a file; returns its id. */
function recordInstance(s: Stmts, id: Identity, h: InstanceHeader, seriesRef: number, fileId: number): number {
  const instanceId = (
    s.insertInstance.get({
      sop_uid: id.sopUid,
      series_ref: seriesRef,
      file_ref: fileId,
      sop_class_uid: h.sopClassUid,
      instance_number: h.instanceNumber === null ? null : Math.round(h.instanceNumber),
      rows: h.rows,
      columns: h.columns,
      pixel_spacing: json(h.pixelSpacing),
      slice_thickness: h.sliceThickness,
      image_position: json(h.imagePosition),
      image_orientation: json(h.imageOrientation),
      frame_positions: json(h.framePositions),
      slice_location: h.sliceLocation,
      gantry_tilt: h.gantryTilt,
      rescale_slope: h.rescaleSlope,
      rescale_intercept: h.rescaleIntercept,
      rescale_type: h.rescaleType,
      bits_allocated: h.bitsAllocated,
      bits_stored: h.bitsStored,
      high_bit: h.highBit,
      pixel_representation: h.pixelRepresentation,
      photometric: h.photometric,
      samples_per_pixel: h.samplesPerPixel,
      transfer_syntax: h.transferSyntaxUid,
      number_of_frames: h.numberOfFrames,
      pixel_padding_value: h.pixelPaddingValue,
      pixel_padding_range_limit: h.pixelPaddingRangeLimit,
      window_center: h.windowCenter,
      window_width: h.windowWidth,
      has_pixel_data: isImage(h) ? 1 : 0,
      image_type: h.imageType,
      acquisition_time: h.acquisitionTime,
      uid_derived: id.derived.includes('instance') ? 1 : 0,
      identifiers_indexed: h.identifiers ? 1 : 0,
    }) as { id: number }
  ).id;
  return instanceId;
}
