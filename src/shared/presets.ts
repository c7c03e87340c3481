/** Names used in options and forms, without the schema library (the CLI loads these at start-up). */
import type { CohortFilter } from './types';

export const PRESETS = ['paper', 'standard', 'small', 'tiny'] as const;

/** The paper's pretraining cohort: axial CT with slices no thicker than 3 mm. */
export const PAPER_COHORT: CohortFilter = { modality: 'CT', orientation: 'axial', maxThickness: 3 };
