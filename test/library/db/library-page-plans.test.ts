/**
 * The queries the Library page runs on every visit, pinned by their query plans on a real library
 * (written through the indexer's own write path by bench/index-scale-library.ts, small here): none
 * reads every file or instance row, so they stay fast at a million instances (`npm run
 * bench:index-scale` measures them there). Each assertion names the index the plan must use; the
 * plans were full scans of `files` (or of its path index) before migration 7.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { openLibrary } from '../../../src/library/db/schema';
import type { Database } from '../../../src/library/db/sqlite';
import { cohortCounts, libraryStats, listFolders, listSeries, listSkipped, PAPER_COHORT, seriesPage } from '../../../src/library/db/catalog';
import { skippedUnder } from '../../../src/library/indexing/indexer';
import { FileRecorder, statements } from '../../../src/library/indexing/index-records';
import type { ReadResult } from '../../../src/library/indexing/file-header';
import { buildLibrary, cohortPlan, instanceHeader } from '../../../bench/index-scale-library';
import { tempDir } from '../../helpers';

const FOLDER = '/archive/scale';

/** The SQL of every statement prepared while `fn` runs, with the plan SQLite chooses for it. */
function plansOf(db: Database, fn: () => void): { sql: string; plan: string[] }[] {
  const seen: string[] = [];
  const prepare = db.prepare.bind(db);
  db.prepare = ((sql: string) => {
    seen.push(sql);
    return prepare(sql);
  }) as Database['prepare'];
  try {
    fn();
  } finally {
    db.prepare = prepare;
  }
  return seen.map((sql) => {
    const params = (sql.match(/\?/g) ?? []).map(() => null);
    const plan = (prepare('EXPLAIN QUERY PLAN ' + sql).all(...params) as { detail: string }[]).map((r) => r.detail);
    return { sql: sql.replace(/\s+/g, ' ').trim(), plan };
  });
}

const planOf = (plans: { sql: string; plan: string[] }[], part: string) => {
  const p = plans.find((x) => x.sql.includes(part));
  if (!p) throw new Error(`no statement containing ${part} was prepared: ${plans.map((x) => x.sql).join('\n')}`);
  return p.plan.join('\n');
};

describe('Library page queries at scale: query plans', () => {
  let tmp: ReturnType<typeof tempDir>;
  let db: Database;

  beforeEach(() => {
    tmp = tempDir();
    db = openLibrary(join(tmp.dir, 'lib.sqlite'));
    const built = buildLibrary(db, { instances: 3000, folder: FOLDER });
    expect(built.skipped).toBe(0);
    // A skipped file and a duplicate (the first instance again, at another path), through the same recorder.
    const s = statements(db);
    const folderId = (s.upsertFolder.get(FOLDER, new Date().toISOString()) as { id: number }).id;
    const recorder = new FileRecorder(s, Date.now(), 64 * 1024);
    const first = cohortPlan(1).next().value!;
    const sop = `${first.series[0].uid}.1`;
    const original = db.prepare('SELECT f.path FROM instances i JOIN files f ON f.id = i.file_ref WHERE i.sop_uid = ?').pluck().get(sop) as string;
    const header = instanceHeader(first, first.series[0], 0);
    expect(header.sopInstanceUid).toBe(sop);
    const read = new Map<string, ReadResult>([
      [`${FOLDER}/notes.txt`, { skip: 'not a DICOM file' }],
      [`${FOLDER}/copy/IM-0001.dcm`, { header }],
    ]);
    db.transaction(() => {
      recorder.record({ path: `${FOLDER}/notes.txt`, size: 10, mtimeMs: 1 }, folderId, read);
      recorder.record({ path: `${FOLDER}/copy/IM-0001.dcm`, size: 525_000, mtimeMs: 1 }, folderId, read);
    })();
    expect(original).toBeTruthy();
  });
  afterEach(() => {
    db.close();
    tmp.cleanup();
  });

  it('counts skipped and duplicate files from their partial indexes, and still counts them right', () => {
    let stats!: ReturnType<typeof libraryStats>;
    const plans = plansOf(db, () => (stats = libraryStats(db, 'lib.sqlite')));
    expect(planOf(plans, "status = 'duplicate'")).toMatch(/USING COVERING INDEX files_duplicate/);
    expect(planOf(plans, "status = 'skipped'")).toMatch(/USING COVERING INDEX files_skipped/);
    expect(stats).toMatchObject({ instances: 3000, files: 3002, skipped: 1, duplicates: 1 });
  });

  it("counts each folder's skipped files from the partial index", () => {
    let folders!: ReturnType<typeof listFolders>;
    const plans = plansOf(db, () => (folders = listFolders(db)));
    const plan = planOf(plans, 'FROM folders f');
    expect(plan).toMatch(/SUBQUERY 2\n.*USING COVERING INDEX files_skipped/);
    expect(plan).not.toMatch(/USING INDEX files_folder/); // a non-covering walk of every file of the folder
    expect(folders).toMatchObject([{ path: FOLDER, files: 3002, skipped: 1 }]);
  });

  it('lists skipped files from the skipped table, not by walking every path', () => {
    let skipped!: ReturnType<typeof skippedUnder>;
    const plans = plansOf(db, () => (skipped = skippedUnder(db, [FOLDER])));
    const plan = planOf(plans, 'FROM skipped s');
    expect(plan.split('\n')[0]).toBe('SCAN s');
    expect(plan).toMatch(/SEARCH f USING INTEGER PRIMARY KEY/);
    expect(plan).not.toMatch(/SCAN f/);
    expect(skipped).toEqual([{ path: `${FOLDER}/notes.txt`, reason: 'not a DICOM file' }]);
  });

  it("lists the library's skipped files (the skipped panel) from the skipped table", () => {
    let skipped!: ReturnType<typeof listSkipped>;
    const plans = plansOf(db, () => (skipped = listSkipped(db, 1000)));
    const plan = planOf(plans, 'FROM skipped s');
    expect(plan.split('\n')[0]).toBe('SCAN s');
    expect(plan).not.toMatch(/SCAN f/);
    expect(skipped).toEqual([{ path: `${FOLDER}/notes.txt`, reason: 'not a DICOM file' }]);
  });

  it('finds the series whose geometry is stale from the partial index, before every series query', () => {
    let rows!: ReturnType<typeof listSeries>;
    const plans = plansOf(db, () => {
      rows = listSeries(db, PAPER_COHORT);
      cohortCounts(db, PAPER_COHORT);
    });
    expect(planOf(plans, 'WHERE geometry_dirty = 1')).toMatch(/USING COVERING INDEX series_geometry_dirty/);
    // The list itself reads the series once, each with its study and patient by primary key.
    const list = planOf(plans, 'ORDER BY p.patient_id');
    expect(list).toMatch(/SEARCH st USING INTEGER PRIMARY KEY/);
    expect(list).toMatch(/SEARCH p USING INTEGER PRIMARY KEY/);
    expect(list).not.toMatch(/instances|files/);
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.modality === 'CT' && r.orientation === 'axial' && (r.sliceThickness ?? 99) <= 3)).toBe(true);
  });

  it("reads one page of the series table from the series, their studies and patients, never the instances", () => {
    let page!: ReturnType<typeof seriesPage>;
    const plans = plansOf(db, () => (page = seriesPage(db, { filter: PAPER_COHORT, sort: { key: 'patientId', dir: 'asc' }, offset: 0, limit: 10 })));
    const list = planOf(plans, 'LIMIT ? OFFSET ?');
    // One pass over the series rows (a few thousand at a million instances), each study and patient by
    // primary key; the sort keeps only the page (LIMIT), and nothing reads instances or files.
    expect(list.split('\n')[0]).toBe('SCAN se');
    expect(list).toMatch(/SEARCH st USING INTEGER PRIMARY KEY/);
    expect(list).toMatch(/SEARCH p USING INTEGER PRIMARY KEY/);
    expect(list).not.toMatch(/instances|files/);
    const count = planOf(plans, 'SELECT COUNT(*)');
    expect(count).not.toMatch(/instances|files/);
    expect(page.rows).toHaveLength(10);
    expect(page.total).toBe(listSeries(db, PAPER_COHORT).length);
  });

  it('recomputes the geometry of a series marked stale (the index holds it until then)', () => {
    const id = listSeries(db, PAPER_COHORT)[0].id;
    db.prepare('UPDATE series SET geometry_dirty = 1, slices = 0 WHERE id = ?').run(id);
    expect(db.prepare("SELECT id FROM series INDEXED BY series_geometry_dirty WHERE geometry_dirty = 1").pluck().all()).toEqual([id]);
    const row = listSeries(db, PAPER_COHORT).find((r) => r.id === id)!;
    expect(row.slices).toBeGreaterThan(0);
    expect(db.prepare("SELECT id FROM series INDEXED BY series_geometry_dirty WHERE geometry_dirty = 1").pluck().all()).toEqual([]);
  });
});
