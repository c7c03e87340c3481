/**
 * Queries over the library database: series geometry upkeep, cohort filters, folders, stats,
 * and the ordered planes of a series for the pixel pipeline.
 */
import type { CohortCounts, CohortFilter, FolderRow, LibraryStats, SeriesRow, SliceOrientation } from '../../shared/types';
import { computeGeometry, type Plane, type SeriesGeometry } from '../../core/dicom/geometry';
import type { Vec3 } from '../../core/dicom/header';
import type { Database } from './sqlite';
import { naturalKey, type SeriesPage, type SeriesPageRequest, type SeriesSortKey } from '../../shared/series-page';

interface InstanceGeomRow {
  id: number;
  instance_number: number | null;
  rows: number | null;
  columns: number | null;
  pixel_spacing: string | null;
  slice_thickness: number | null;
  image_position: string | null;
  image_orientation: string | null;
  frame_positions: string | null;
  number_of_frames: number;
}

const parseJson = <T>(s: string | null): T | null => (s ? (JSON.parse(s) as T) : null);

function planesOf(rows: InstanceGeomRow[]): Plane[] {
  const planes: Plane[] = [];
  for (const r of rows) {
    const orientation = parseJson<number[]>(r.image_orientation);
    const framePositions = parseJson<Vec3[]>(r.frame_positions);
    const frames = Math.max(1, r.number_of_frames);
    for (let f = 0; f < frames; f++) {
      const position = framePositions?.[f] ?? (frames === 1 ? parseJson<Vec3>(r.image_position) : null);
      planes.push({ key: r.id, frame: f, position, orientation, instanceNumber: r.instance_number });
    }
  }
  return planes;
}

const mostCommon = <T>(xs: T[]): T | null => {
  const counts = new Map<string, { v: T; n: number }>();
  for (const x of xs) {
    const k = JSON.stringify(x);
    const e = counts.get(k);
    if (e) e.n++;
    else counts.set(k, { v: x, n: 1 });
  }
  let best: { v: T; n: number } | null = null;
  for (const e of counts.values()) if (!best || e.n > best.n) best = e;
  return best ? best.v : null;
};

/** Image instances of a series (objects with pixel data), for geometry and volumes. */
function imageRows(db: Database, seriesId: number): InstanceGeomRow[] {
  return db
    .prepare(
      `SELECT id, instance_number, rows, columns, pixel_spacing, slice_thickness, image_position, image_orientation,
              frame_positions, number_of_frames
       FROM instances WHERE series_ref = ? AND has_pixel_data = 1`,
    )
    .all(seriesId) as InstanceGeomRow[];
}

/** Geometry of a series from its indexed planes. */
export function seriesGeometry(db: Database, seriesId: number): SeriesGeometry & { rowsAll: InstanceGeomRow[] } {
  const rowsAll = imageRows(db, seriesId);
  return { ...computeGeometry(planesOf(rowsAll)), rowsAll };
}

/** Recomputes the geometry summary of every series marked dirty. */
export function updateDirtyGeometry(db: Database): number {
  const dirty = db.prepare(`SELECT id FROM series WHERE geometry_dirty = 1`).pluck().all() as number[];
  if (dirty.length === 0) return 0;
  const update = db.prepare(
    `UPDATE series SET geometry_dirty = 0, rows = ?, columns = ?, slices = ?, image_instances = ?, slice_thickness = ?,
       spacing = ?, pixel_spacing_row = ?, pixel_spacing_col = ?, orientation = ?, uniform_spacing = ?, gaps = ?,
       gantry_tilt = ?, multi_frame = ?, geometry_warnings = ? WHERE id = ?`,
  );
  db.transaction(() => {
    for (const id of dirty) {
      const g = seriesGeometry(db, id);
      const rows = g.rowsAll;
      const dims = mostCommon(rows.map((r) => [r.rows, r.columns]));
      const ps = mostCommon(rows.map((r) => parseJson<[number, number]>(r.pixel_spacing)));
      const thick = mostCommon(rows.map((r) => r.slice_thickness));
      const multi = rows.some((r) => r.number_of_frames > 1);
      const warnings = [...g.warnings];
      if (new Set(rows.map((r) => `${r.rows}x${r.columns}`)).size > 1) warnings.push('planes of different sizes');
      update.run(
        dims?.[0] ?? null,
        dims?.[1] ?? null,
        g.planes.length,
        rows.length,
        thick,
        g.spacing,
        ps?.[0] ?? null,
        ps?.[1] ?? null,
        g.orientation,
        g.uniform ? 1 : 0,
        g.gaps,
        Math.round(g.gantryTilt * 1000) / 1000,
        multi ? 1 : 0,
        JSON.stringify(warnings),
        id,
      );
    }
  })();
  return dirty.length;
}

const SERIES_SELECT = `
  SELECT se.id, se.series_uid, st.study_uid, p.patient_id, p.patient_key, se.modality, se.series_number, se.description,
         se.body_part, se.manufacturer, se.model, st.study_date, se.rows, se.columns, se.slices, se.image_instances,
         se.slice_thickness, se.spacing, se.pixel_spacing_row, se.pixel_spacing_col, se.orientation, se.uniform_spacing,
         se.gantry_tilt, se.gaps, se.multi_frame, se.contrast_agent, se.kernel,
         (se.uid_derived OR st.uid_derived OR p.uid_derived) AS derived
  FROM series se JOIN studies st ON st.id = se.study_ref JOIN patients p ON p.id = st.patient_ref`;

interface SeriesDbRow {
  id: number;
  series_uid: string;
  study_uid: string;
  patient_id: string;
  patient_key: string;
  modality: string;
  series_number: number | null;
  description: string;
  body_part: string;
  manufacturer: string;
  model: string;
  study_date: string;
  rows: number | null;
  columns: number | null;
  slices: number;
  image_instances: number;
  slice_thickness: number | null;
  spacing: number | null;
  pixel_spacing_row: number | null;
  pixel_spacing_col: number | null;
  orientation: string;
  uniform_spacing: number;
  gantry_tilt: number;
  gaps: number;
  multi_frame: number;
  contrast_agent: string;
  kernel: string;
  derived: number;
}

function toRow(r: SeriesDbRow): SeriesRow {
  return {
    id: r.id,
    seriesInstanceUid: r.series_uid,
    studyInstanceUid: r.study_uid,
    patientId: r.patient_id || r.patient_key,
    modality: r.modality,
    seriesNumber: r.series_number,
    description: r.description,
    bodyPart: r.body_part,
    manufacturer: r.manufacturer,
    model: r.model,
    studyDate: r.study_date,
    rows: r.rows,
    columns: r.columns,
    slices: r.slices,
    instances: r.image_instances,
    sliceThickness: r.slice_thickness,
    spacing: r.spacing === null ? null : Math.round(r.spacing * 10000) / 10000,
    pixelSpacing: r.pixel_spacing_row === null || r.pixel_spacing_col === null ? null : [r.pixel_spacing_row, r.pixel_spacing_col],
    orientation: r.orientation as SliceOrientation,
    uniformSpacing: r.uniform_spacing === 1,
    gantryTilt: r.gantry_tilt,
    gaps: r.gaps,
    multiFrame: r.multi_frame === 1,
    contrast: r.contrast_agent !== '',
    kernel: r.kernel,
    derivedUids: r.derived === 1,
  };
}

/** SQL conditions for each filter, with parameters. */
function filterClauses(f: CohortFilter): { name: string; sql: string; params: unknown[] }[] {
  const c: { name: string; sql: string; params: unknown[] }[] = [];
  if (f.modality) c.push({ name: 'modality', sql: 'se.modality = ?', params: [f.modality.toUpperCase()] });
  if (f.orientation) c.push({ name: 'orientation', sql: 'se.orientation = ?', params: [f.orientation] });
  if (f.maxThickness !== undefined)
    c.push({ name: 'maxThickness', sql: 'se.slice_thickness IS NOT NULL AND se.slice_thickness <= ?', params: [f.maxThickness] });
  if (f.minSlices !== undefined) c.push({ name: 'minSlices', sql: 'se.slices >= ?', params: [f.minSlices] });
  if (f.contrast === 'yes') c.push({ name: 'contrast', sql: "se.contrast_agent != ''", params: [] });
  if (f.contrast === 'no') c.push({ name: 'contrast', sql: "se.contrast_agent = ''", params: [] });
  if (f.uniformOnly) c.push({ name: 'uniformOnly', sql: 'se.uniform_spacing = 1', params: [] });
  if (f.labels) {
    const finding = (kinds: string) =>
      `EXISTS (SELECT 1 FROM instances li JOIN rois lr ON lr.sop_uid = li.sop_uid JOIN findings lf ON lf.id = lr.finding_ref
               WHERE li.series_ref = se.id AND lf.kind IN (${kinds}))`;
    const pe = `EXISTS (SELECT 1 FROM instances li JOIN image_labels ll ON ll.sop_uid = li.sop_uid
               WHERE li.series_ref = se.id AND ll.name = 'pe_present_on_image' AND ll.value > 0)`;
    const sql =
      f.labels === 'nodule'
        ? // The slices nodule segmentation trains on: reader nodules and DICOM SEG segments.
          finding("'nodule', 'small-nodule', 'segment'")
        : f.labels === 'segment'
          ? finding("'segment'")
          : f.labels === 'pe'
            ? pe
            : `(${finding("'nodule', 'small-nodule', 'non-nodule', 'segment'")} OR EXISTS (SELECT 1 FROM instances li JOIN image_labels ll ON ll.sop_uid = li.sop_uid WHERE li.series_ref = se.id))`;
    c.push({ name: 'labels', sql, params: [] });
  }
  if (f.text) {
    const like = '%' + f.text.replace(/[\\%_]/g, (ch) => '\\' + ch) + '%';
    c.push({
      name: 'text',
      sql: `(p.patient_id LIKE ? ESCAPE '\\' OR se.description LIKE ? ESCAPE '\\' OR se.manufacturer LIKE ? ESCAPE '\\' OR se.series_uid LIKE ? ESCAPE '\\')`,
      params: [like, like, like, like],
    });
  }
  return c;
}

export { PAPER_COHORT } from '../../shared/presets';

/** The list's own order: ties of any sort keep it. */
const LIST_ORDER = 'p.patient_id, st.study_date, st.study_uid, se.series_number, se.id';

/**
 * Each sortable column as SQL: the value the series table shows (SeriesRow's field, as
 * src/renderer/src/library/series-columns.ts's `value`), and whether it is text (compared by its
 * natural key) or a number.
 */
const SORT_SQL: Record<SeriesSortKey, { expr: string; text: boolean }> = {
  patientId: { expr: "COALESCE(NULLIF(p.patient_id, ''), p.patient_key)", text: true },
  modality: { expr: 'se.modality', text: true },
  orientation: { expr: 'se.orientation', text: true },
  slices: { expr: 'se.slices', text: false },
  matrix: { expr: 'se.columns * se.rows', text: false },
  sliceThickness: { expr: 'se.slice_thickness', text: false },
  spacing: { expr: 'ROUND(se.spacing, 4)', text: false },
  pixelSpacing: { expr: 'se.pixel_spacing_row * se.pixel_spacing_col', text: false },
  studyDate: { expr: 'st.study_date', text: true },
  uniformSpacing: { expr: 'se.uniform_spacing', text: false },
  gantryTilt: { expr: 'se.gantry_tilt', text: false },
  description: { expr: 'se.description', text: true },
};

/** ORDER BY of a sort: missing values last in both directions, then the value, then the list's order. */
function orderBy(sort: SeriesPageRequest['sort'] | undefined): string {
  if (!sort) return LIST_ORDER;
  const { expr, text } = SORT_SQL[sort.key];
  const dir = sort.dir === 'desc' ? 'DESC' : 'ASC';
  return text
    ? `(${expr} IS NULL OR ${expr} = '') ASC, ctssl_natural(${expr}) ${dir}, ${LIST_ORDER}`
    : `(${expr} IS NULL) ASC, ${expr} ${dir}, ${LIST_ORDER}`;
}

/**
 * Connections that have the natural sort key function (a deterministic SQL function, registered
 * once per connection). Its keys are remembered (up to 100,000 texts, then forgotten at once): a
 * sort by patient computes each key once, not on every page.
 */
const withNatural = new WeakSet<Database>();
function ensureNatural(db: Database): void {
  if (withNatural.has(db)) return;
  const keys = new Map<string, string>();
  db.function('ctssl_natural', { deterministic: true }, (s: unknown) => {
    if (typeof s !== 'string') return s;
    let k = keys.get(s);
    if (k === undefined) {
      if (keys.size >= 100_000) keys.clear();
      k = naturalKey(s);
      keys.set(s, k);
    }
    return k;
  });
  withNatural.add(db);
}

/** The WHERE of the series list (and of its counts) for filter clauses. */
function whereOf(clauses: { sql: string }[]): string {
  // DICOM SEG objects are not image series: they are attached to the series they segment (labels/seg-attach.ts).
  return ' WHERE ' + ["se.modality != 'SEG'", ...clauses.map((c) => c.sql)].join(' AND ');
}

const SERIES_FROM = ' FROM series se JOIN studies st ON st.id = se.study_ref JOIN patients p ON p.id = st.patient_ref';

/**
 * The SQL and parameters of the series list for a filter: every matching series in the list's
 * order (listSeries; the benchmark's references run the same), or one page of them in a sort
 * (seriesPage). One builder for both, so a page is exactly a slice of the sorted list.
 */
export function seriesQuery(
  filter: CohortFilter = {},
  sort?: SeriesPageRequest['sort'],
  page?: { offset: number; limit: number },
): { sql: string; params: unknown[] } {
  const clauses = filterClauses(filter);
  const params = clauses.flatMap((c) => c.params);
  let sql = SERIES_SELECT + whereOf(clauses) + ' ORDER BY ' + orderBy(sort);
  if (page) {
    sql += ' LIMIT ? OFFSET ?';
    params.push(page.limit, page.offset);
  }
  return { sql, params };
}

export function listSeries(db: Database, filter: CohortFilter = {}): SeriesRow[] {
  updateDirtyGeometry(db);
  const { sql, params } = seriesQuery(filter);
  return (db.prepare(sql).all(...params) as SeriesDbRow[]).map(toRow);
}

/** How many series match a filter's clauses (the list's own WHERE). */
function countMatching(db: Database, clauses: ReturnType<typeof filterClauses>): number {
  return db
    .prepare('SELECT COUNT(*)' + SERIES_FROM + whereOf(clauses))
    .pluck()
    .get(...clauses.flatMap((c) => c.params)) as number;
}

/** One page of the series list in a sort, and how many series match (the Library page's table). */
export function seriesPage(db: Database, req: SeriesPageRequest): SeriesPage {
  updateDirtyGeometry(db);
  ensureNatural(db);
  const { sql, params } = seriesQuery(req.filter, req.sort, req);
  const rows = (db.prepare(sql).all(...params) as SeriesDbRow[]).map(toRow);
  return { rows, offset: req.offset, total: countMatching(db, filterClauses(req.filter)) };
}

/** What `warmSeriesPage` did: the rows it read, whether it read every row of the tables, whether the page may be asked for now, and how long it took. */
export interface SeriesPageWarmth {
  rowsRead: number;
  complete: boolean;
  /** Every row read before the deadline, and no series geometry to bring up to date (a write, left to the first request). */
  pageReady: boolean;
  ms: number;
}

/**
 * Reads, within `budgetMs`, the pages a first `seriesPage` reads, so that it finds them in memory:
 * every row of the series, studies and patients tables (the list scans the series and looks up
 * each one's study and patient), a row at a time, stopping at the deadline. Writes nothing.
 * `ctssl serve` calls it before it prints its address, then, when `pageReady`, answers the page
 * itself (src/server/serve.ts): on a fresh server the Library page's first request read these
 * pages from the disk (bench/index-scale.ts, a million instances: 110-270 ms of its first rows).
 */
export function warmSeriesPage(db: Database, budgetMs: number, now: () => number = () => performance.now()): SeriesPageWarmth {
  const start = now();
  const deadline = start + budgetMs;
  let rowsRead = 0;
  let complete = true;
  walk: for (const table of ['series', 'studies', 'patients']) {
    for (const _ of db.prepare(`SELECT * FROM ${table}`).raw(true).iterate()) {
      // The clock every 64 rows: a row is a few microseconds from memory, more from the disk.
      if (++rowsRead % 64 === 0 && now() >= deadline) {
        complete = false;
        break walk;
      }
    }
  }
  const pageReady = complete && now() < deadline && db.prepare('SELECT 1 FROM series WHERE geometry_dirty = 1 LIMIT 1').get() === undefined;
  return { rowsRead, complete, pageReady, ms: now() - start };
}

export function getSeries(db: Database, id: number): SeriesRow | null {
  updateDirtyGeometry(db);
  const r = db.prepare(SERIES_SELECT + ' WHERE se.id = ?').get(id) as SeriesDbRow | undefined;
  return r ? toRow(r) : null;
}

export function findSeriesByUid(db: Database, uid: string): SeriesRow | null {
  const id = db.prepare('SELECT id FROM series WHERE series_uid = ?').pluck().get(uid) as number | undefined;
  return id === undefined ? null : getSeries(db, id);
}

export function cohortCounts(db: Database, filter: CohortFilter): CohortCounts {
  updateDirtyGeometry(db);
  const clauses = filterClauses(filter);
  // The same series listSeries lists: DICOM SEG objects are labels of other series, not counted.
  const count = (cs: typeof clauses) => countMatching(db, cs);
  const byFilter: Record<string, number> = {};
  for (const c of clauses) byFilter[c.name] = count([c]);
  return { total: count([]), matching: count(clauses), byFilter };
}

export function listFolders(db: Database): FolderRow[] {
  return (
    db
      .prepare(
        `SELECT f.id, f.path, f.added_at, f.last_indexed_at,
           (SELECT COUNT(*) FROM files x WHERE x.folder_ref = f.id) AS files,
           (SELECT COUNT(*) FROM files x WHERE x.folder_ref = f.id AND x.status = 'skipped') AS skipped
         FROM folders f ORDER BY f.path`,
      )
      .all() as { id: number; path: string; added_at: string; last_indexed_at: string | null; files: number; skipped: number }[]
  ).map((r) => ({ id: r.id, path: r.path, addedAt: r.added_at, lastIndexedAt: r.last_indexed_at, files: r.files, skipped: r.skipped }));
}

/** Skipped files with their reasons, by path (the Library page's skipped panel): from the skipped table, never a walk of every file's path. */
export function listSkipped(db: Database, limit: number): { path: string; reason: string }[] {
  return db
    .prepare(`SELECT f.path AS path, s.reason AS reason FROM skipped s CROSS JOIN files f ON f.id = s.file_ref ORDER BY f.path LIMIT ?`)
    .all(limit) as { path: string; reason: string }[];
}

export function libraryStats(db: Database, dbPath: string): LibraryStats {
  const one = (sql: string) => db.prepare(sql).pluck().get() as number;
  return {
    dbPath,
    folders: one('SELECT COUNT(*) FROM folders'),
    files: one('SELECT COUNT(*) FROM files'),
    instances: one('SELECT COUNT(*) FROM instances'),
    series: one('SELECT COUNT(*) FROM series'),
    studies: one('SELECT COUNT(*) FROM studies'),
    patients: one('SELECT COUNT(*) FROM patients'),
    duplicates: one(`SELECT COUNT(*) FROM files WHERE status = 'duplicate'`),
    skipped: one(`SELECT COUNT(*) FROM files WHERE status = 'skipped'`),
  };
}

/** One plane of a series in display order, with what decoding needs. */
export interface PlaneRef {
  instanceId: number;
  frame: number;
  path: string;
  distance: number;
  position: Vec3 | null;
}

/** Ordered planes of a series (display order), with the file each comes from. */
export function seriesPlanes(db: Database, seriesId: number): { geometry: SeriesGeometry; planes: PlaneRef[] } {
  const geometry = seriesGeometry(db, seriesId);
  const paths = new Map<number, string>();
  const q = db.prepare(`SELECT f.path FROM instances i JOIN files f ON f.id = i.file_ref WHERE i.id = ?`).pluck();
  const planes = geometry.planes.map((p) => {
    let path = paths.get(p.key);
    if (path === undefined) {
      path = (q.get(p.key) as string | undefined) ?? '';
      paths.set(p.key, path);
    }
    return { instanceId: p.key, frame: p.frame, path, distance: p.distance, position: p.position };
  });
  return { geometry, planes };
}
