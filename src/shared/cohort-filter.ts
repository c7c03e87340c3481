/**
 * The cohort filter (`CohortFilter` in types.ts) as a strict zod schema: the one rule for every
 * place a filter enters (library channels, run configs, experiment specs, the bias probe, the CLI).
 * Known keys only; strings bounded and limited to what their field can hold. Dependency-free apart
 * from zod, so that the renderer, the trainer and the services share it.
 */
import { z } from 'zod';
import type { CohortFilter } from './types';

/** Characters no filter string may hold: C0/C1 controls (NUL, newlines, escapes). */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

export const cohortFilterSchema = z
  .object({
    /** A DICOM Modality (code string: letters, digits, space, underscore; at most 16). */
    modality: z
      .string()
      .max(16)
      .regex(/^[A-Za-z0-9_ ]*$/, 'a DICOM modality (letters, digits, space or underscore, e.g. CT)')
      .optional(),
    orientation: z.enum(['axial', 'coronal', 'sagittal', 'oblique', 'unknown']).optional(),
    maxThickness: z.number().positive().max(100).optional(),
    minSlices: z.number().int().nonnegative().max(100000).optional(),
    contrast: z.enum(['yes', 'no']).optional(),
    uniformOnly: z.boolean().optional(),
    /** Free text searched (as plain text, never as a pattern) in patient ID, description, manufacturer. */
    text: z
      .string()
      .max(200)
      .refine((s) => !CONTROL.test(s), 'no control characters')
      .optional(),
    labels: z.enum(['nodule', 'segment', 'pe', 'any']).optional(),
  })
  .strict() satisfies z.ZodType<CohortFilter>;

/** Series ids a cohort can name at most (run configs, experiment specs, the probe). */
export const MAX_SERIES_IDS = 100_000;
export const seriesIdsSchema = z.array(z.number().int().nonnegative()).max(MAX_SERIES_IDS);
