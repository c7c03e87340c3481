/**
 * warmSeriesPage: what `ctssl serve` reads before it prints its address, so that the Library page's
 * first request (FIRST_SERIES_PAGE) finds its pages in memory on a fresh server. On a real library
 * file (bench/index-scale-library.ts's synthetic headers through the indexer's write path): it reads
 * every row of the tables the first page reads and says the page may be asked for; it stops at its
 * deadline; it writes nothing (stale geometry is left to the first request, and the page with it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { openLibrary } from '../../../src/library/db/schema';
import type { Database } from '../../../src/library/db/sqlite';
import { warmSeriesPage } from '../../../src/library/db/catalog';
import { buildLibrary } from '../../../bench/index-scale-library';
import { tempDir } from '../../helpers';

let tmp: ReturnType<typeof tempDir>;
let db: Database;
let tableRows: number;

beforeAll(() => {
  tmp = tempDir();
  db = openLibrary(join(tmp.dir, 'library.sqlite'));
  buildLibrary(db, { instances: 20_000, folder: join(tmp.dir, 'dicom') });
  tableRows = ['series', 'studies', 'patients'].reduce((a, t) => a + (db.prepare(`SELECT COUNT(*) FROM ${t}`).pluck().get() as number), 0);
});

afterAll(() => {
  db.close();
  tmp.cleanup();
});

describe('warmSeriesPage', () => {
  it('reads every row of the series, studies and patients tables, and the first page may then be asked for', () => {
    expect(tableRows).toBeGreaterThan(64 * 3);
    const w = warmSeriesPage(db, 60_000);
    expect(w).toMatchObject({ rowsRead: tableRows, complete: true, pageReady: true });
    expect(w.ms).toBeGreaterThan(0);
  });

  it('stops at its deadline, a clock check every 64 rows, and then the page is not ready', () => {
    let t = 0;
    // A clock that moves 1 ms per look: a budget of 3 ms ends at the third check.
    const w = warmSeriesPage(db, 3, () => t++);
    expect(w).toMatchObject({ rowsRead: 3 * 64, complete: false, pageReady: false });
    expect(warmSeriesPage(db, 0, () => 0)).toMatchObject({ rowsRead: 64, complete: false, pageReady: false });
  });

  it('writes nothing: a series with stale geometry leaves the page (and its geometry update) to the first request', () => {
    const id = db.prepare('SELECT id FROM series ORDER BY id LIMIT 1').pluck().get() as number;
    db.prepare('UPDATE series SET geometry_dirty = 1 WHERE id = ?').run(id);
    const changes = db.prepare('SELECT total_changes()').pluck();
    const before = changes.get();
    const w = warmSeriesPage(db, 60_000);
    expect(w).toMatchObject({ rowsRead: tableRows, complete: true, pageReady: false });
    expect(changes.get()).toBe(before);
    expect(db.prepare('SELECT geometry_dirty FROM series WHERE id = ?').pluck().get(id)).toBe(1);
  });
});
