/** Patient attributes for the bias probe, pure: normalised sex, age in years, 10-year age group. */
export type Sex = 'M' | 'F' | 'O' | '';

export interface PatientAttributes {
  sex: Sex;
  ageYears: number | null;
  /** 10-year bin, e.g. "60-69"; "" when the age is unknown. */
  ageGroup: string;
  ethnicGroup: string;
  /** Where each value came from: 'header' or 'csv:<file>'. */
  provenance: { sex: string; age: string; ethnicGroup: string };
}

export function normaliseSex(v: string): Sex {
  const s = v.trim().toUpperCase();
  if (s === 'M' || s === 'MALE') return 'M';
  if (s === 'F' || s === 'FEMALE') return 'F';
  return s ? 'O' : '';
}

export function ageGroup(age: number | null): string {
  if (age === null || !Number.isFinite(age) || age < 0) return '';
  const lo = Math.floor(age / 10) * 10;
  return `${lo}-${lo + 9}`;
}
