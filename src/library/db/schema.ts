/**
 * The library database: schema and migrations. One SQLite file holds the index of DICOM folders
 * (patients > studies > series > instances, files, skipped files) and, in later migrations,
 * labels and runs. Migrations are append-only and tracked by PRAGMA user_version.
 *
 * A migration that rebuilds a table (SQLite cannot drop a constraint in place) runs with foreign
 * keys off, as SQLite's "making other kinds of table schema changes" says: otherwise dropping the old
 * table would cascade to the rows that refer to it. Before it commits, `foreign_key_check` must
 * find nothing.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { type Database, type OpenOptions, openSqlite } from './sqlite';

/** SQL, or SQL that rebuilds tables (run with foreign keys off, then checked). */
type Migration = string | { rebuildsTables: true; sql: string };

const MIGRATIONS: Migration[] = [
  /* 1: the DICOM index */ `
  CREATE TABLE folders (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    added_at TEXT NOT NULL,
    last_indexed_at TEXT
  );
  CREATE TABLE patients (
    id INTEGER PRIMARY KEY,
    patient_key TEXT NOT NULL UNIQUE,
    patient_id TEXT NOT NULL,
    sex TEXT NOT NULL DEFAULT '',
    birth_date TEXT NOT NULL DEFAULT '',
    ethnic_group TEXT NOT NULL DEFAULT '',
    uid_derived INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE studies (
    id INTEGER PRIMARY KEY,
    study_uid TEXT NOT NULL UNIQUE,
    patient_ref INTEGER NOT NULL REFERENCES patients(id),
    study_date TEXT NOT NULL DEFAULT '',
    study_time TEXT NOT NULL DEFAULT '',
    study_id TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    patient_age TEXT NOT NULL DEFAULT '',
    uid_derived INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX studies_patient ON studies(patient_ref);
  CREATE TABLE series (
    id INTEGER PRIMARY KEY,
    series_uid TEXT NOT NULL UNIQUE,
    study_ref INTEGER NOT NULL REFERENCES studies(id),
    modality TEXT NOT NULL DEFAULT '',
    series_number INTEGER,
    description TEXT NOT NULL DEFAULT '',
    body_part TEXT NOT NULL DEFAULT '',
    manufacturer TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    contrast_agent TEXT NOT NULL DEFAULT '',
    kernel TEXT NOT NULL DEFAULT '',
    series_date TEXT NOT NULL DEFAULT '',
    frame_of_reference_uid TEXT NOT NULL DEFAULT '',
    uid_derived INTEGER NOT NULL DEFAULT 0,
    -- geometry summary, recomputed when geometry_dirty = 1
    geometry_dirty INTEGER NOT NULL DEFAULT 1,
    rows INTEGER,
    columns INTEGER,
    slices INTEGER NOT NULL DEFAULT 0,
    image_instances INTEGER NOT NULL DEFAULT 0,
    slice_thickness REAL,
    spacing REAL,
    pixel_spacing_row REAL,
    pixel_spacing_col REAL,
    orientation TEXT NOT NULL DEFAULT 'unknown',
    uniform_spacing INTEGER NOT NULL DEFAULT 0,
    gaps INTEGER NOT NULL DEFAULT 0,
    gantry_tilt REAL NOT NULL DEFAULT 0,
    multi_frame INTEGER NOT NULL DEFAULT 0,
    geometry_warnings TEXT NOT NULL DEFAULT '[]'
  );
  CREATE INDEX series_study ON series(study_ref);
  CREATE TABLE instances (
    id INTEGER PRIMARY KEY,
    sop_uid TEXT NOT NULL UNIQUE,
    series_ref INTEGER NOT NULL REFERENCES series(id),
    file_ref INTEGER,
    sop_class_uid TEXT NOT NULL DEFAULT '',
    instance_number INTEGER,
    rows INTEGER,
    columns INTEGER,
    pixel_spacing TEXT,
    slice_thickness REAL,
    image_position TEXT,
    image_orientation TEXT,
    frame_positions TEXT,
    slice_location REAL,
    gantry_tilt REAL,
    rescale_slope REAL NOT NULL DEFAULT 1,
    rescale_intercept REAL NOT NULL DEFAULT 0,
    rescale_type TEXT NOT NULL DEFAULT '',
    bits_allocated INTEGER,
    bits_stored INTEGER,
    high_bit INTEGER,
    pixel_representation INTEGER,
    photometric TEXT NOT NULL DEFAULT '',
    samples_per_pixel INTEGER,
    transfer_syntax TEXT NOT NULL DEFAULT '',
    number_of_frames INTEGER NOT NULL DEFAULT 1,
    pixel_padding_value INTEGER,
    pixel_padding_range_limit INTEGER,
    window_center REAL,
    window_width REAL,
    has_pixel_data INTEGER NOT NULL DEFAULT 0,
    image_type TEXT NOT NULL DEFAULT '',
    acquisition_time TEXT NOT NULL DEFAULT '',
    uid_derived INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX instances_series ON instances(series_ref);
  CREATE TABLE files (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    folder_ref INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
    size INTEGER NOT NULL,
    mtime_ms INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('indexed', 'duplicate', 'skipped')),
    instance_ref INTEGER REFERENCES instances(id) ON DELETE SET NULL,
    warnings TEXT,
    -- id of the last indexing run that saw this file on disk (files not seen by a complete run are gone)
    seen_run INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX files_folder ON files(folder_ref);
  CREATE INDEX files_instance ON files(instance_ref);
  CREATE TABLE skipped (
    file_ref INTEGER PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
    reason TEXT NOT NULL
  );
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  `,
  /* 2: labels, with provenance. Labels refer to images by SOP Instance UID (joined to instances
        at query time), so they survive re-indexing and may arrive before their images. */ `
  CREATE TABLE label_sources (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('lidc-xml', 'rsna-csv', 'dicom-seg', 'attributes-csv')),
    path TEXT NOT NULL,
    sha1 TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    series_uid TEXT NOT NULL DEFAULT '',
    report TEXT NOT NULL DEFAULT '{}'
  );
  CREATE UNIQUE INDEX label_sources_path ON label_sources(kind, path);
  CREATE TABLE findings (
    id INTEGER PRIMARY KEY,
    source_ref INTEGER NOT NULL REFERENCES label_sources(id) ON DELETE CASCADE,
    series_uid TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL CHECK (kind IN ('nodule', 'small-nodule', 'non-nodule', 'segment')),
    reader TEXT NOT NULL DEFAULT '',
    finding_key TEXT NOT NULL DEFAULT '',
    group_key TEXT NOT NULL DEFAULT '',
    attributes TEXT NOT NULL DEFAULT '{}'
  );
  CREATE INDEX findings_source ON findings(source_ref);
  CREATE INDEX findings_series ON findings(series_uid);
  CREATE TABLE rois (
    id INTEGER PRIMARY KEY,
    finding_ref INTEGER NOT NULL REFERENCES findings(id) ON DELETE CASCADE,
    sop_uid TEXT NOT NULL,
    frame INTEGER NOT NULL DEFAULT 0,
    z REAL,
    inclusion INTEGER NOT NULL DEFAULT 1,
    -- one of: an outline [[x, y], ...] in stored pixel coordinates, or a packed bit mask (MSB first) of rows x columns
    contour TEXT,
    mask BLOB,
    rows INTEGER,
    columns INTEGER,
    area_px INTEGER
  );
  CREATE INDEX rois_sop ON rois(sop_uid);
  CREATE INDEX rois_finding ON rois(finding_ref);
  CREATE TABLE image_labels (
    source_ref INTEGER NOT NULL REFERENCES label_sources(id) ON DELETE CASCADE,
    sop_uid TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (source_ref, sop_uid, name)
  );
  CREATE INDEX image_labels_sop ON image_labels(sop_uid);
  CREATE TABLE exam_labels (
    source_ref INTEGER NOT NULL REFERENCES label_sources(id) ON DELETE CASCADE,
    study_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (source_ref, series_uid, name)
  );
  CREATE TABLE patient_attributes (
    source_ref INTEGER NOT NULL REFERENCES label_sources(id) ON DELETE CASCADE,
    -- a PatientID or a StudyInstanceUID
    key TEXT NOT NULL,
    sex TEXT NOT NULL DEFAULT '',
    age_years REAL,
    ethnic_group TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (source_ref, key)
  );
  `,
  /* 3: training runs and their metrics */ `
  CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL,
    task TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    dir TEXT NOT NULL UNIQUE,
    config TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    manifest_hash TEXT NOT NULL DEFAULT '',
    seed INTEGER NOT NULL DEFAULT 0,
    app_version TEXT NOT NULL DEFAULT '',
    backend TEXT NOT NULL DEFAULT '',
    parent_dir TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    step INTEGER NOT NULL DEFAULT 0,
    total_steps INTEGER NOT NULL DEFAULT 0,
    summary TEXT NOT NULL DEFAULT '{}',
    error TEXT NOT NULL DEFAULT ''
  );
  CREATE TABLE run_metrics (
    run_ref INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    split TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (run_ref, split, name, step)
  );
  CREATE TABLE run_artifacts (
    run_ref INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    step INTEGER,
    created_at TEXT NOT NULL,
    PRIMARY KEY (run_ref, path)
  );
  `,
  // Deleted runs go to the trash (their folder moved under <data>/trash) until restored or purged.
  `
  ALTER TABLE runs ADD COLUMN deleted_at TEXT NOT NULL DEFAULT '';
  ALTER TABLE runs ADD COLUMN original_dir TEXT NOT NULL DEFAULT '';
  `,
  /* 5: patient identifiers of each series, read at index time, so that an export is checked
        against them without the source files (which may be moved or on an unmounted drive).
        One row per distinct (kind, value) per series; SOP Instance UIDs are in instances already.
        instances.identifiers_indexed says the instance's identifiers are in; rows indexed before
        this migration have 0, and export refuses their series until they are re-indexed. Every
        file's mtime is reset so that the next `ctssl index` re-reads all files (an unchanged
        file is otherwise never read again) and fills the table. */ `
  CREATE TABLE phi_identifiers (
    series_ref INTEGER NOT NULL REFERENCES series(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (series_ref, kind, value)
  ) WITHOUT ROWID;
  ALTER TABLE instances ADD COLUMN identifiers_indexed INTEGER NOT NULL DEFAULT 0;
  UPDATE files SET mtime_ms = -1;
  `,
  /* 6: the kinds of label files are the registered label formats' (src/library/labels/label-formats.ts),
        checked in code when a source is recorded, so that a format is added without a migration:
        label_sources is rebuilt without its CHECK on kind (rows, ids and the rows that refer to them
        kept; the unique index on kind and path recreated). */ {
    rebuildsTables: true,
    sql: `
  CREATE TABLE label_sources_v6 (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    sha1 TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    series_uid TEXT NOT NULL DEFAULT '',
    report TEXT NOT NULL DEFAULT '{}'
  );
  INSERT INTO label_sources_v6 (id, kind, path, sha1, imported_at, series_uid, report)
    SELECT id, kind, path, sha1, imported_at, series_uid, report FROM label_sources;
  DROP TABLE label_sources;
  ALTER TABLE label_sources_v6 RENAME TO label_sources;
  CREATE UNIQUE INDEX label_sources_path ON label_sources(kind, path);
  `,
  },
  /* 7: what the Library page asks on every visit, without reading every file or series row of a
        library of a million instances (bench/index-scale.ts): the series whose geometry is to be
        recomputed (asked before every series query), and the skipped and duplicate files (the
        library's counts, each folder's skipped count, the skipped list), as partial indexes that
        hold only those rows (IF NOT EXISTS: a library whose user_version was set back runs it again). */ `
  CREATE INDEX IF NOT EXISTS series_geometry_dirty ON series(id) WHERE geometry_dirty = 1;
  CREATE INDEX IF NOT EXISTS files_skipped ON files(folder_ref) WHERE status = 'skipped';
  CREATE INDEX IF NOT EXISTS files_duplicate ON files(folder_ref) WHERE status = 'duplicate';
  `,
  /* 8: per-image labels (an RSNA train.csv: a row per image, 1.8 M in the real file) kept in their
        primary key's b-tree (WITHOUT ROWID) instead of a rowid table plus that key as an index:
        two b-trees to write per label instead of three, on import and when a re-import replaces
        the earlier one, and a third less space (bench/index-scale.ts). Rows and the index by SOP
        Instance UID kept. */ {
    rebuildsTables: true,
    sql: `
  CREATE TABLE image_labels_v8 (
    source_ref INTEGER NOT NULL REFERENCES label_sources(id) ON DELETE CASCADE,
    sop_uid TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (source_ref, sop_uid, name)
  ) WITHOUT ROWID;
  INSERT INTO image_labels_v8 (source_ref, sop_uid, name, value) SELECT source_ref, sop_uid, name, value FROM image_labels;
  DROP TABLE image_labels;
  ALTER TABLE image_labels_v8 RENAME TO image_labels;
  CREATE INDEX image_labels_sop ON image_labels(sop_uid);
  `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the schema up to date (or up to version `to`: tests of a migration start from an older schema). */
export function migrate(db: Database, to = MIGRATIONS.length): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`database schema version ${current} is newer than this app understands (${MIGRATIONS.length}); update the app`);
  }
  for (let v = current; v < Math.min(to, MIGRATIONS.length); v++) {
    const m = MIGRATIONS[v];
    const rebuild = typeof m !== 'string';
    // Foreign keys can only be switched outside a transaction.
    const foreignKeys = db.pragma('foreign_keys', { simple: true }) as number;
    if (rebuild) db.pragma('foreign_keys = OFF');
    try {
      db.transaction(() => {
        db.exec(rebuild ? m.sql : m);
        if (rebuild) {
          const broken = db.pragma('foreign_key_check') as unknown[];
          if (broken.length) throw new Error(`migration ${v + 1} would leave ${broken.length} row(s) referring to missing rows: not applied`);
        }
        db.pragma(`user_version = ${v + 1}`);
      })();
    } finally {
      if (rebuild) db.pragma(`foreign_keys = ${foreignKeys ? 'ON' : 'OFF'}`);
    }
  }
}

/** Opens (creating if needed) a library database and brings its schema up to date. */
export function openLibrary(file: string, options: OpenOptions = {}): Database {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = openSqlite(file, options);
  if (!options.readonly) migrate(db);
  return db;
}
