/**
 * Columns of the series table: what each shows. They sort in SQL (`library.seriesPage`, by the same
 * keys: src/library/db/catalog.ts holds each column's sort value). Pure; unit-tested.
 */
import type { SeriesRow } from '../../../shared/types';
import type { SeriesSortKey } from '../../../shared/series-page';
import { compact, dicomDate, fixed, matrix, NONE, plural } from '../lib/format';

/**
 * The series table's row height, CSS pixels: fixed in its CSS (one line of 13 px text, the
 * description cut with an ellipsis), so that the virtualised table never measures a row.
 */
export const ROW_HEIGHT = 26;

export interface Column {
  key: SeriesSortKey;
  label: string;
  /** Header tooltip. */
  title: string;
  numeric: boolean;
  text(r: SeriesRow): string;
}

export const columns: readonly Column[] = [
  { key: 'patientId', label: 'Patient', title: 'Patient ID', numeric: false, text: (r) => r.patientId },
  { key: 'modality', label: 'Modality', title: 'Modality', numeric: false, text: (r) => r.modality },
  { key: 'orientation', label: 'Orientation', title: 'Slice orientation from ImageOrientationPatient', numeric: false, text: (r) => r.orientation },
  { key: 'slices', label: 'Slices', title: 'Image planes (frames count one each)', numeric: true, text: (r) => String(r.slices) },
  {
    key: 'matrix',
    label: 'Matrix',
    title: 'Columns x rows',
    numeric: true,
    text: (r) => matrix(r.columns, r.rows),
  },
  { key: 'sliceThickness', label: 'Thickness', title: 'Slice thickness, mm', numeric: true, text: (r) => compact(r.sliceThickness, 3) },
  { key: 'spacing', label: 'Slice spacing', title: 'Slice spacing: median distance between adjacent slices along the slice normal, mm', numeric: true, text: (r) => compact(r.spacing, 3) },
  {
    key: 'pixelSpacing',
    label: 'Pixel spacing',
    title: 'PixelSpacing: row spacing x column spacing within a slice, mm',
    numeric: true,
    text: (r) => pixelSpacing(r.pixelSpacing),
  },
  {
    key: 'uniformSpacing',
    label: 'Uniform',
    title: 'Even spacing along the stack (gaps counted when a step exceeds 1.5 x the median)',
    numeric: false,
    text: (r) => (r.uniformSpacing ? 'yes' : r.gaps > 0 ? `no (${plural(r.gaps, 'gap')})` : 'no'),
  },
  { key: 'gantryTilt', label: 'Tilt', title: 'Gantry tilt, degrees', numeric: true, text: (r) => fixed(r.gantryTilt, 1) },
  { key: 'studyDate', label: 'Study date', title: 'StudyDate (YYYY-MM-DD)', numeric: false, text: (r) => dicomDate(r.studyDate) },
  { key: 'description', label: 'Description', title: 'Series description', numeric: false, text: (r) => r.description },
];

/** "0.7 x 0.7" (mm, row x column spacing; one value when both are equal: "0.703"); `—` when unknown. */
export function pixelSpacing(ps: readonly [number, number] | null): string {
  if (!ps) return NONE;
  return ps[0] === ps[1] ? compact(ps[0], 3) : `${compact(ps[0], 3)} x ${compact(ps[1], 3)}`;
}
