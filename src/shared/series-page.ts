/**
 * A page of the series list (`library.seriesPage`): the cohort filter, the column to sort by and its
 * direction, and the window of rows wanted. Sorted and cut in SQL (src/library/db/catalog.ts), so the
 * Library page asks for the screenful it shows instead of every matching series. The sort keys are
 * the series table's columns (src/renderer/src/library/series-columns.ts names the same keys).
 */
import { z } from 'zod';
import { cohortFilterSchema } from './cohort-filter';
import type { SeriesRow } from './types';

export const SERIES_SORT_KEYS = [
  'patientId',
  'modality',
  'orientation',
  'slices',
  'matrix',
  'sliceThickness',
  'spacing',
  'pixelSpacing',
  'studyDate',
  'uniformSpacing',
  'gantryTilt',
  'description',
] as const;

export type SeriesSortKey = (typeof SERIES_SORT_KEYS)[number];
export type SortDir = 'asc' | 'desc';

/** The most rows one page may hold. */
export const MAX_SERIES_PAGE = 1000;

export const seriesPageRequestSchema = z
  .object({
    filter: cohortFilterSchema,
    /**
     * The column and direction. Missing values (no thickness, an empty description) come last in
     * both directions; text is compared naturally (case- and accent-insensitive, digit runs as
     * numbers); ties keep the list's own order (patient, study date, study, series number).
     */
    sort: z.object({ key: z.enum(SERIES_SORT_KEYS), dir: z.enum(['asc', 'desc']) }).strict(),
    /** Index of the first row wanted in the sorted list. */
    offset: z.number().int().nonnegative().max(10_000_000),
    limit: z.number().int().positive().max(MAX_SERIES_PAGE),
  })
  .strict();

export type SeriesPageRequest = z.infer<typeof seriesPageRequestSchema>;

/** Rows `offset` to `offset + rows.length - 1` of the sorted list, and how many series match in all. */
export interface SeriesPage {
  rows: SeriesRow[];
  offset: number;
  total: number;
}

/**
 * A text's natural sort key: accents dropped, lower case, each run of digits as its length (three
 * digits) then its digits without leading zeros, so that 'IM-9' sorts before 'IM-10' by plain
 * comparison of the keys (SQLite compares them with BINARY).
 */
export function naturalKey(s: string): string {
  // eslint-disable-next-line no-control-regex
  const plain = /^[\u0000-\u007f]*$/.test(s) ? s : s.normalize('NFD').replace(/[\u0300-\u036f]/g, '');
  return plain
    .toLowerCase()
    .replace(/\d+/g, (d) => {
      const t = d.replace(/^0+(?=\d)/, '');
      return String(Math.min(t.length, 999)).padStart(3, '0') + t;
    });
}
