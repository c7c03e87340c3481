/**
 * The cohort filter form of the library page and its translation to the contract's CohortFilter.
 * The form keeps every field (so that unticking a filter does not lose its value); only ticked,
 * valid fields reach the services.
 */
import type { CohortFilter } from '../../../shared/types';

export interface FilterForm {
  ctOnly: boolean;
  axialOnly: boolean;
  maxThicknessOn: boolean;
  /** mm; the paper keeps slices no thicker than 3 mm. */
  maxThickness: number | null;
  minSlicesOn: boolean;
  minSlices: number | null;
  contrast: 'any' | 'yes' | 'no';
  uniformOnly: boolean;
  text: string;
  /** Only series with labels of this kind ('off' = no label filter). */
  labels: 'off' | 'any' | 'nodule' | 'segment' | 'pe';
}

/** What the cohort filter panel needs: the library page and the pretrain page each have one. */
export interface CohortSource {
  form: FilterForm;
  counts: import('../../../shared/types').CohortCounts | null;
  /** A query is waiting or running: the counts on screen may be stale. */
  querying: boolean;
  resetToPaperCohort(): void;
  clearFilters(): void;
}

/** The paper's pretraining cohort: axial CT, slices <= 3 mm. */
export function paperCohort(): FilterForm {
  return {
    ctOnly: true,
    axialOnly: true,
    maxThicknessOn: true,
    maxThickness: 3,
    minSlicesOn: false,
    minSlices: 32,
    contrast: 'any',
    uniformOnly: false,
    text: '',
    labels: 'off',
  };
}

/** Every filter off (values kept at their defaults). */
export function noFilters(): FilterForm {
  return { ...paperCohort(), ctOnly: false, axialOnly: false, maxThicknessOn: false, labels: 'off' };
}

/** Problems with ticked fields, by field name; a field with a problem is left out of the filter. */
export function formProblems(f: FilterForm): Partial<Record<'maxThickness' | 'minSlices' | 'text', string>> {
  const p: Partial<Record<'maxThickness' | 'minSlices' | 'text', string>> = {};
  if (f.maxThicknessOn && !(typeof f.maxThickness === 'number' && f.maxThickness > 0 && f.maxThickness <= 100))
    p.maxThickness = 'a thickness above 0 and at most 100 mm';
  if (f.minSlicesOn && !(typeof f.minSlices === 'number' && Number.isInteger(f.minSlices) && f.minSlices >= 0 && f.minSlices <= 100000))
    p.minSlices = 'a whole number of slices from 0 to 100000';
  if (f.text.length > 200) p.text = 'at most 200 characters';
  return p;
}

export function toCohortFilter(f: FilterForm): CohortFilter {
  const problems = formProblems(f);
  const out: CohortFilter = {};
  if (f.ctOnly) out.modality = 'CT';
  if (f.axialOnly) out.orientation = 'axial';
  if (f.maxThicknessOn && !problems.maxThickness) out.maxThickness = f.maxThickness!;
  if (f.minSlicesOn && !problems.minSlices) out.minSlices = f.minSlices!;
  if (f.contrast !== 'any') out.contrast = f.contrast;
  if (f.uniformOnly) out.uniformOnly = true;
  const text = f.text.trim();
  if (text && !problems.text) out.text = text;
  if (f.labels !== 'off') out.labels = f.labels;
  return out;
}

/** Labels of the per-filter counts (`CohortCounts.byFilter` keys). */
export const filterLabels: Record<string, string> = {
  modality: 'CT',
  orientation: 'axial',
  maxThickness: 'thickness',
  minSlices: 'min slices',
  contrast: 'contrast',
  uniformOnly: 'uniform',
  text: 'text',
  labels: 'labels',
};

/** Choices of the "has labels" filter. */
export const labelChoices: readonly { value: FilterForm['labels']; label: string; hint: string }[] = [
  { value: 'off', label: 'any or none', hint: 'no label filter' },
  { value: 'any', label: 'any label', hint: 'series with at least one imported label' },
  { value: 'nodule', label: 'nodules', hint: 'LIDC XML or DICOM SEG nodules' },
  { value: 'segment', label: 'SEG segments', hint: 'DICOM SEG segments' },
  { value: 'pe', label: 'PE-positive images', hint: 'RSNA PE: at least one image with pe_present_on_image = 1' },
];
