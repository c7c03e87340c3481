/** Columns of the series table and how they sort. Pure; unit-tested. */
import type { SeriesRow } from '../../../shared/types';
import { compact, dicomDate, fixed, matrix, NONE, plural } from '../lib/format';

export type SortKey =
  | 'patientId'
  | 'modality'
  | 'orientation'
  | 'slices'
  | 'matrix'
  | 'sliceThickness'
  | 'spacing'
  | 'pixelSpacing'
  | 'studyDate'
  | 'uniformSpacing'
  | 'gantryTilt'
  | 'description';

export type SortDir = 'asc' | 'desc';

export interface Column {
  key: SortKey;
  label: string;
  /** Header tooltip. */
  title: string;
  numeric: boolean;
  text(r: SeriesRow): string;
  value(r: SeriesRow): string | number | null;
}

export const columns: readonly Column[] = [
  { key: 'patientId', label: 'Patient', title: 'Patient ID', numeric: false, text: (r) => r.patientId, value: (r) => r.patientId },
  { key: 'modality', label: 'Modality', title: 'Modality', numeric: false, text: (r) => r.modality, value: (r) => r.modality },
  { key: 'orientation', label: 'Orientation', title: 'Slice orientation from ImageOrientationPatient', numeric: false, text: (r) => r.orientation, value: (r) => r.orientation },
  { key: 'slices', label: 'Slices', title: 'Image planes (frames count one each)', numeric: true, text: (r) => String(r.slices), value: (r) => r.slices },
  {
    key: 'matrix',
    label: 'Matrix',
    title: 'Columns x rows',
    numeric: true,
    text: (r) => matrix(r.columns, r.rows),
    value: (r) => (r.columns === null || r.rows === null ? null : r.columns * r.rows),
  },
  { key: 'sliceThickness', label: 'Thickness', title: 'Slice thickness, mm', numeric: true, text: (r) => compact(r.sliceThickness, 3), value: (r) => r.sliceThickness },
  { key: 'spacing', label: 'Slice spacing', title: 'Slice spacing: median distance between adjacent slices along the slice normal, mm', numeric: true, text: (r) => compact(r.spacing, 3), value: (r) => r.spacing },
  {
    key: 'pixelSpacing',
    label: 'Pixel spacing',
    title: 'PixelSpacing: row spacing x column spacing within a slice, mm',
    numeric: true,
    text: (r) => pixelSpacing(r.pixelSpacing),
    value: (r) => (r.pixelSpacing ? r.pixelSpacing[0] * r.pixelSpacing[1] : null),
  },
  {
    key: 'uniformSpacing',
    label: 'Uniform',
    title: 'Even spacing along the stack (gaps counted when a step exceeds 1.5 x the median)',
    numeric: false,
    text: (r) => (r.uniformSpacing ? 'yes' : r.gaps > 0 ? `no (${plural(r.gaps, 'gap')})` : 'no'),
    value: (r) => (r.uniformSpacing ? 1 : 0),
  },
  { key: 'gantryTilt', label: 'Tilt', title: 'Gantry tilt, degrees', numeric: true, text: (r) => fixed(r.gantryTilt, 1), value: (r) => r.gantryTilt },
  { key: 'studyDate', label: 'Study date', title: 'StudyDate (YYYY-MM-DD)', numeric: false, text: (r) => dicomDate(r.studyDate), value: (r) => r.studyDate || null },
  { key: 'description', label: 'Description', title: 'Series description', numeric: false, text: (r) => r.description, value: (r) => r.description },
];

/** "0.7 x 0.7" (mm, row x column spacing; one value when both are equal: "0.703"); `—` when unknown. */
export function pixelSpacing(ps: readonly [number, number] | null): string {
  if (!ps) return NONE;
  return ps[0] === ps[1] ? compact(ps[0], 3) : `${compact(ps[0], 3)} x ${compact(ps[1], 3)}`;
}

const byKey = new Map(columns.map((c) => [c.key, c]));

/** A sorted copy: stable, missing values last in both directions, text compared naturally (case-insensitive, numbers in order). */
export function sortSeries(rows: readonly SeriesRow[], key: SortKey, dir: SortDir): SeriesRow[] {
  const col = byKey.get(key);
  if (!col) return rows.slice();
  const sign = dir === 'asc' ? 1 : -1;
  const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });
  return rows
    .map((r, i) => ({ r, i, v: col.value(r) }))
    .sort((a, b) => {
      const am = a.v === null || a.v === '';
      const bm = b.v === null || b.v === '';
      if (am || bm) return am === bm ? a.i - b.i : am ? 1 : -1;
      const c = typeof a.v === 'number' && typeof b.v === 'number' ? a.v - b.v : collator.compare(String(a.v), String(b.v));
      return c !== 0 ? sign * c : a.i - b.i;
    })
    .map((x) => x.r);
}
