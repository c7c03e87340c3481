/**
 * `library.seriesPage`, the Library page's series table: pages sorted and cut in SQL on a real
 * library file (bench/index-scale-library.ts's synthetic headers through the indexer's write path,
 * with a few series edited to hold what sorting must get right: digits in text, accents and case,
 * missing values, a patient without an ID). Every page must be exactly a slice of the whole sorted
 * list, the whole list must be `library.series`'s rows in the column's order (missing values last
 * in both directions, ties in the list's own order), and the total must be the filter's count.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { openLibrary } from '../../../src/library/db/schema';
import type { Database } from '../../../src/library/db/sqlite';
import { cohortCounts, listSeries, seriesPage } from '../../../src/library/db/catalog';
import { createServices, type Services } from '../../../src/host/services';
import { naturalKey, SERIES_SORT_KEYS, seriesPageRequestSchema, type SeriesSortKey } from '../../../src/shared/series-page';
import { PAPER_COHORT } from '../../../src/shared/presets';
import type { CohortFilter, SeriesRow } from '../../../src/shared/types';
import { buildLibrary } from '../../../bench/index-scale-library';
import { tempDir } from '../../helpers';

/** The value a column sorts by, as the series table shows it (independent of the SQL). */
const value: Record<SeriesSortKey, (r: SeriesRow) => string | number | null> = {
  patientId: (r) => r.patientId,
  modality: (r) => r.modality,
  orientation: (r) => r.orientation,
  slices: (r) => r.slices,
  matrix: (r) => (r.columns === null || r.rows === null ? null : r.columns * r.rows),
  sliceThickness: (r) => r.sliceThickness,
  spacing: (r) => r.spacing,
  pixelSpacing: (r) => (r.pixelSpacing ? r.pixelSpacing[0] * r.pixelSpacing[1] : null),
  studyDate: (r) => r.studyDate,
  uniformSpacing: (r) => (r.uniformSpacing ? 1 : 0),
  gantryTilt: (r) => r.gantryTilt,
  description: (r) => r.description,
};

/** The reference: a stable sort of the whole list in JavaScript, missing values last, text by its natural key. */
function reference(rows: SeriesRow[], key: SeriesSortKey, dir: 'asc' | 'desc'): number[] {
  const sign = dir === 'asc' ? 1 : -1;
  return rows
    .map((r, i) => ({ r, i, v: value[key](r) }))
    .sort((a, b) => {
      const am = a.v === null || a.v === '';
      const bm = b.v === null || b.v === '';
      if (am || bm) return am === bm ? a.i - b.i : am ? 1 : -1;
      const av = typeof a.v === 'string' ? naturalKey(a.v) : a.v!;
      const bv = typeof b.v === 'string' ? naturalKey(b.v) : b.v!;
      const c = av < bv ? -1 : av > bv ? 1 : 0;
      return c !== 0 ? sign * c : a.i - b.i;
    })
    .map((x) => x.r.id);
}

let tmp: ReturnType<typeof tempDir>;
let db: Database;
let services: Services;
let noIdSeries: number;

beforeAll(async () => {
  tmp = tempDir();
  const dbPath = join(tmp.dir, 'library.sqlite');
  db = openLibrary(dbPath);
  buildLibrary(db, { instances: 6000, folder: '/archive/scale' });
  const ids = db.prepare(`SELECT id FROM series WHERE modality = 'CT' AND orientation = 'axial' AND slice_thickness <= 3 ORDER BY id`).pluck().all() as number[];
  expect(ids.length).toBeGreaterThan(20);
  const edit = db.prepare('UPDATE series SET description = ? WHERE id = ?');
  ['Series 10', 'series 9', 'Série 2', '', 'SERIES 009b', 'Thorax 1.0 B70f'].forEach((d, i) => edit.run(d, ids[i]));
  db.prepare('UPDATE series SET slice_thickness = NULL, spacing = NULL WHERE id = ?').run(ids[6]);
  db.prepare('UPDATE series SET slice_thickness = NULL WHERE id = ?').run(ids[7]);
  noIdSeries = ids[8];
  db.prepare(`UPDATE patients SET patient_id = '' WHERE id = (SELECT st.patient_ref FROM series se JOIN studies st ON st.id = se.study_ref WHERE se.id = ?)`).run(ids[8]);
  services = createServices({ mode: 'cli', dataDir: tmp.dir, dbPath, emit: () => {} });
});

afterAll(async () => {
  await services?.close();
  db?.close();
  tmp?.cleanup();
});

describe('library.seriesPage', () => {
  const filters: CohortFilter[] = [{}, PAPER_COHORT, { text: 'series' }, { modality: 'CT', minSlices: 150 }];

  it('is, page by page, the whole list sorted by each column in each direction', () => {
    for (const filter of filters) {
      const all = listSeries(db, filter);
      const total = cohortCounts(db, filter).matching;
      expect(all.length).toBe(total);
      for (const key of SERIES_SORT_KEYS)
        for (const dir of ['asc', 'desc'] as const) {
          const want = reference(all, key, dir);
          const got: number[] = [];
          for (let offset = 0; offset < total || offset === 0; offset += 37) {
            const page = seriesPage(db, { filter, sort: { key, dir }, offset, limit: 37 });
            expect(page.total).toBe(total);
            expect(page.offset).toBe(offset);
            got.push(...page.rows.map((r) => r.id));
            if (page.rows.length < 37) break;
          }
          expect(got, `${JSON.stringify(filter)} by ${key} ${dir}`).toEqual(want);
        }
    }
  });

  it('sorts text naturally, case- and accent-insensitive, with missing values last in both directions', () => {
    const page = (key: SeriesSortKey, dir: 'asc' | 'desc') => seriesPage(db, { filter: {}, sort: { key, dir }, offset: 0, limit: 1000 }).rows;
    const desc = page('description', 'asc').map((r) => r.description);
    const edited = desc.filter((d) => /^s[eé]ries? \d/i.test(d));
    expect(edited).toEqual(['Série 2', 'series 9', 'SERIES 009b', 'Series 10']);
    expect(desc.at(-1)).toBe('');
    expect(page('description', 'desc').at(-1)!.description).toBe('');
    for (const dir of ['asc', 'desc'] as const) {
      const thick = page('sliceThickness', dir).map((r) => r.sliceThickness);
      expect(thick.slice(-2)).toEqual([null, null]);
      expect(thick.slice(0, -2).every((t) => t !== null)).toBe(true);
    }
    // The patient without an ID is shown and sorted by its key (the library's own name for it).
    const key = db.prepare(`SELECT p.patient_key FROM series se JOIN studies st ON st.id = se.study_ref JOIN patients p ON p.id = st.patient_ref WHERE se.id = ?`).pluck().get(noIdSeries) as string;
    const byPatient = page('patientId', 'asc');
    const at = byPatient.findIndex((r) => r.id === noIdSeries);
    expect(byPatient[at].patientId).toBe(key);
    expect(at).toBe(reference(listSeries(db, {}), 'patientId', 'asc').indexOf(noIdSeries));
  });

  it('returns an empty page past the end, with the total', () => {
    const total = cohortCounts(db, PAPER_COHORT).matching;
    expect(seriesPage(db, { filter: PAPER_COHORT, sort: { key: 'slices', dir: 'desc' }, offset: total, limit: 50 })).toEqual({ rows: [], offset: total, total });
  });

  it('is the service every door calls, and refuses a bad request naming the field', async () => {
    const h = services.handlers;
    const viaService = await h['library.seriesPage']({ filter: PAPER_COHORT, sort: { key: 'patientId', dir: 'asc' }, offset: 0, limit: 20 });
    expect(viaService.rows.map((r) => r.id)).toEqual(reference(listSeries(db, PAPER_COHORT), 'patientId', 'asc').slice(0, 20));
    const bad = (req: unknown) => seriesPageRequestSchema.safeParse(req);
    const base = { filter: {}, sort: { key: 'slices', dir: 'asc' }, offset: 0, limit: 10 };
    expect(bad(base).success).toBe(true);
    const why = (req: unknown) => {
      const r = bad(req);
      return r.success ? 'accepted' : r.error.issues.map((i) => i.path.join('.')).join(',');
    };
    expect(why({ ...base, limit: 5000 })).toBe('limit');
    expect(why({ ...base, offset: -1 })).toBe('offset');
    expect(why({ ...base, sort: { key: 'se.id; DROP TABLE series', dir: 'asc' } })).toBe('sort.key');
    expect(why({ ...base, sort: { key: 'slices', dir: 'up' } })).toBe('sort.dir');
    expect(why({ ...base, filter: { modality: "CT' OR 1=1 --" } })).toBe('filter.modality');
  });
});

describe('naturalKey', () => {
  it('orders digit runs by value and ignores case and accents', () => {
    const xs = ['IM-10', 'im-9', 'IM-009a', 'Ïm-2', 'IM-1000', 'IM-'];
    expect([...xs].sort((a, b) => (naturalKey(a) < naturalKey(b) ? -1 : naturalKey(a) > naturalKey(b) ? 1 : 0))).toEqual(['IM-', 'Ïm-2', 'im-9', 'IM-009a', 'IM-10', 'IM-1000']);
  });
});
