/** Names used in options and forms, without the schema library (the CLI loads these at start-up). */
import type { CohortFilter } from './types';
import type { SeriesPageRequest } from './series-page';

export const PRESETS = ['paper', 'standard', 'small', 'tiny'] as const;

/** The paper's pretraining cohort: axial CT with slices no thicker than 3 mm. */
export const PAPER_COHORT: CohortFilter = { modality: 'CT', orientation: 'axial', maxThickness: 3 };

/**
 * The Library page's first request (library.seriesPage): the first 100 rows of the paper cohort by
 * patient, the page's default filter and sort (src/renderer/src/library/library-state.svelte.ts).
 * `ctssl serve` reads what it needs before printing its address (warmSeriesPage in
 * src/library/db/catalog.ts). Here, not in series-page.ts, so that the renderer imports no schema library.
 */
export const FIRST_SERIES_PAGE: SeriesPageRequest = { filter: PAPER_COHORT, sort: { key: 'patientId', dir: 'asc' }, offset: 0, limit: 100 };
