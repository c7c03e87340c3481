/**
 * Cohort planning: options with their defaults and validation, and for every patient the
 * attributes (sex, age, birth date, ethnic group, whether the bias trait applies), identities
 * (patient ID, UIDs) and per-study plans (dates, PE status, reader count). Pure and seeded:
 * the same options give the same plan.
 */
import { derivedUid } from '../dicom/header';
import type { Sex, TraitEffect } from './anatomy';
import type { ScanOptions } from './model';
import { Rng } from '../random';

export type TraitAttribute = 'none' | 'sex' | 'ethnic-group' | 'age';

export interface SynthOptions {
  patients: number;
  seed: number;
  slices: number;
  size: number;
  thickness: number;
  pixelSpacing: number | 'auto';
  /** Nodules per patient, inclusive range. */
  nodules: [number, number];
  /**
   * Nodule diameter range in mm, log-uniform (absent: 3-30 mm). Absent rather than defaulted, so
   * that a cohort written without it has the same manifest (options) and files as before it existed.
   */
  noduleSize?: [number, number];
  /**
   * Nodule contrast: the scale of the difference between a nodule's attenuation and the tissue it
   * replaces (absent: 1, solid 10-55 HU, ground glass -690 to -520 HU; 0.5: halfway to the lung).
   */
  noduleContrast?: number;
  /** Fraction of studies with pulmonary emboli. */
  peFraction: number;
  /** Attribute the visual trait is tied to, and which value of it gets the trait. */
  trait: TraitAttribute;
  traitValue: string;
  /** 1 = subtle (fat x1.25, width x1.04); scales linearly. */
  traitStrength: number;
  /** Simulated LIDC readers per series, inclusive range (1..4). */
  readers: [number, number];
  /** Studies per patient (1, or 2 for a follow-up). */
  studies: number;
  /** Ethnic group labels written to EthnicGroup (0010,2160), with their weights. */
  groups: { name: string; weight: number }[];
}

export const DEFAULT_GROUPS = [
  { name: 'GROUP A', weight: 0.5 },
  { name: 'GROUP B', weight: 0.3 },
  { name: 'GROUP C', weight: 0.2 },
];

export function defaultOptions(patients: number, seed: number): SynthOptions {
  return {
    patients,
    seed,
    slices: 64,
    size: 256,
    thickness: 2.5,
    pixelSpacing: 'auto',
    nodules: [0, 3],
    peFraction: 0.5,
    trait: 'none',
    traitValue: '',
    traitStrength: 1,
    readers: [1, 4],
    studies: 1,
    groups: DEFAULT_GROUPS,
  };
}

/** Throws an Error naming the offending option. */
export function validateOptions(o: SynthOptions): void {
  const int = (name: string, v: number, lo: number, hi: number) => {
    if (!Number.isInteger(v) || v < lo || v > hi) throw new Error(`${name} must be an integer in ${lo}..${hi}, got ${v}`);
  };
  int('patients', o.patients, 1, 100000);
  int('seed', o.seed, 0, Number.MAX_SAFE_INTEGER);
  int('slices', o.slices, 1, 2000);
  int('size', o.size, 32, 1024);
  if (!(o.thickness > 0 && o.thickness <= 10)) throw new Error(`thickness must be in (0, 10] mm, got ${o.thickness}`);
  if (o.pixelSpacing !== 'auto' && !(o.pixelSpacing > 0.1 && o.pixelSpacing <= 5)) throw new Error(`pixel-spacing must be 'auto' or in (0.1, 5] mm, got ${o.pixelSpacing}`);
  if (o.pixelSpacing !== 'auto' && o.pixelSpacing * o.size < 250) throw new Error(`pixel-spacing x size must cover a chest (>= 250 mm), got ${o.pixelSpacing * o.size} mm`);
  int('nodules (min)', o.nodules[0], 0, 20);
  int('nodules (max)', o.nodules[1], o.nodules[0], 20);
  if (o.noduleSize !== undefined) {
    const [lo, hi] = o.noduleSize;
    if (!(lo >= 1 && hi <= 60 && lo <= hi)) throw new Error(`nodule-size must be a range of diameters within 1-60 mm, got ${lo}-${hi}`);
  }
  if (o.noduleContrast !== undefined && !(o.noduleContrast > 0 && o.noduleContrast <= 2)) throw new Error(`nodule-contrast must be in (0, 2], got ${o.noduleContrast}`);
  if (!(o.peFraction >= 0 && o.peFraction <= 1)) throw new Error(`pe-fraction must be in [0, 1], got ${o.peFraction}`);
  int('readers (min)', o.readers[0], 1, 4);
  int('readers (max)', o.readers[1], o.readers[0], 4);
  int('studies', o.studies, 1, 2);
  if (!['none', 'sex', 'ethnic-group', 'age'].includes(o.trait)) throw new Error(`trait must be none, sex, ethnic-group or age, got ${o.trait}`);
  if (!(o.traitStrength >= 0 && o.traitStrength <= 5)) throw new Error(`trait-strength must be in [0, 5], got ${o.traitStrength}`);
  if (o.groups.length === 0) throw new Error('groups must name at least one ethnic group');
  for (const g of o.groups) {
    if (!/^[\x20-\x7e]{1,16}$/.test(g.name) || g.name.includes('\\')) throw new Error(`group name "${g.name}" must be 1-16 printable ASCII characters without a backslash (DICOM SH)`);
    if (!(g.weight > 0)) throw new Error(`group "${g.name}" needs a positive weight`);
  }
  if (o.trait === 'ethnic-group' && o.traitValue && !o.groups.some((g) => g.name === o.traitValue))
    throw new Error(`trait-value "${o.traitValue}" is not one of the groups: ${o.groups.map((g) => g.name).join(', ')}`);
  if (o.trait === 'sex' && o.traitValue && !['M', 'F'].includes(o.traitValue)) throw new Error(`trait-value for sex must be M or F, got ${o.traitValue}`);
  if (o.trait === 'age' && o.traitValue && !(Number(o.traitValue) > 0)) throw new Error(`trait-value for age must be an age in years (the trait applies from it), got ${o.traitValue}`);
}

/** The trait value used when none is given: F, the second group, age 60. */
export function effectiveTraitValue(o: SynthOptions): string {
  if (o.traitValue) return o.traitValue;
  if (o.trait === 'sex') return 'F';
  if (o.trait === 'ethnic-group') return o.groups[Math.min(1, o.groups.length - 1)].name;
  if (o.trait === 'age') return '60';
  return '';
}

export function traitEffect(strength: number): TraitEffect {
  return { fatScale: 1 + 0.25 * strength, widthScale: 1 + 0.04 * strength };
}

export interface PeStatus {
  present: boolean;
  chronic: boolean;
  acuteAndChronic: boolean;
  rvStrain: boolean;
}

export interface StudyPlan {
  /** 1-based. */
  index: number;
  studyUid: string;
  seriesUid: string;
  frameOfReferenceUid: string;
  segSeriesUid: string;
  segInstanceUid: string;
  /** YYYYMMDD and HHMMSS. */
  studyDate: string;
  studyTime: string;
  accession: string;
  studyId: string;
  /** Age in whole years at this study. */
  age: number;
  pe: PeStatus;
  readers: number;
}

export interface PatientPlan {
  /** 1-based. */
  index: number;
  patientId: string;
  patientName: string;
  sex: Sex;
  birthDate: string;
  ethnicGroup: string;
  traitApplied: boolean;
  nodules: number;
  studies: StudyPlan[];
}

const DAY = 86400000;
const ymd = (t: number) => new Date(t).toISOString().slice(0, 10).replace(/-/g, '');

/** Whole years between two YYYYMMDD dates. */
export function yearsBetween(birth: string, date: string): number {
  const [by, bm, bd] = [Number(birth.slice(0, 4)), Number(birth.slice(4, 6)), Number(birth.slice(6, 8))];
  const [y, m, d] = [Number(date.slice(0, 4)), Number(date.slice(4, 6)), Number(date.slice(6, 8))];
  return y - by - (m < bm || (m === bm && d < bd) ? 1 : 0);
}

/** A UID under 2.25 derived from the seed and a key: stable for a seed, distinct across keys. */
export function synthUid(seed: number, key: string): string {
  return derivedUid(`ctssl-synth/${seed}/${key}`);
}

/** Exactly round(fraction * n) of n items chosen by a seeded permutation. */
function chooseFraction(rng: Rng, n: number, fraction: number): Set<number> {
  const k = Math.round(fraction * n);
  return new Set(rng.shuffle(Array.from({ length: n }, (_, i) => i)).slice(0, k));
}

export function planCohort(o: SynthOptions): PatientPlan[] {
  validateOptions(o);
  const seed = o.seed;
  const traitValue = effectiveTraitValue(o);
  const pePlans = Array.from({ length: o.studies }, (_, s) => chooseFraction(Rng.keyed(seed, `pe-assign/s${s + 1}`), o.patients, o.peFraction));
  const weights = o.groups.map((g) => g.weight);
  const out: PatientPlan[] = [];
  for (let i = 0; i < o.patients; i++) {
    const n = i + 1;
    const rng = Rng.keyed(seed, `p${n}/attributes`);
    const sex: Sex = rng.chance(0.5) ? 'F' : 'M';
    const age = Math.round(Math.max(22, Math.min(89, rng.gauss(60, 13))));
    const ethnicGroup = o.groups[rng.weighted(weights)].name;
    const first = Date.UTC(2008, 0, 1) + rng.intBetween(0, 3650) * DAY;
    // Birth date: `age` years and some days before the first study.
    const fd = new Date(first);
    const birth = Date.UTC(fd.getUTCFullYear() - age, fd.getUTCMonth(), fd.getUTCDate()) - rng.intBetween(0, 360) * DAY;
    const birthDate = ymd(birth);
    const nodules = rng.intBetween(o.nodules[0], o.nodules[1]);
    let traitApplied = false;
    if (o.trait === 'sex') traitApplied = sex === traitValue;
    else if (o.trait === 'ethnic-group') traitApplied = ethnicGroup === traitValue;
    else if (o.trait === 'age') traitApplied = age >= Number(traitValue);
    const pid = `SYN${seed}-${String(n).padStart(4, '0')}`;
    const studies: StudyPlan[] = [];
    for (let s = 1; s <= o.studies; s++) {
      const srng = Rng.keyed(seed, `p${n}/s${s}/plan`);
      const date = s === 1 ? first : first + srng.intBetween(90, 400) * DAY;
      const present = pePlans[s - 1].has(i);
      const chronicDraw = srng.next();
      const studyDate = ymd(date);
      const key = `p${n}/s${s}`;
      studies.push({
        index: s,
        studyUid: synthUid(seed, `${key}/study`),
        seriesUid: synthUid(seed, `${key}/series`),
        frameOfReferenceUid: synthUid(seed, `${key}/for`),
        segSeriesUid: synthUid(seed, `${key}/seg-series`),
        segInstanceUid: synthUid(seed, `${key}/seg`),
        studyDate,
        studyTime: `${String(srng.intBetween(7, 18)).padStart(2, '0')}${String(srng.intBetween(0, 59)).padStart(2, '0')}${String(srng.intBetween(0, 59)).padStart(2, '0')}`,
        accession: `A${seed % 100000}${String(n).padStart(5, '0')}${s}`.slice(0, 16),
        studyId: String(s),
        age: yearsBetween(birthDate, studyDate),
        pe: {
          present,
          chronic: present && chronicDraw < 0.1,
          acuteAndChronic: present && chronicDraw >= 0.1 && chronicDraw < 0.15,
          rvStrain: present && srng.chance(0.35),
        },
        readers: srng.intBetween(o.readers[0], o.readers[1]),
      });
    }
    out.push({ index: n, patientId: pid, patientName: `SYNTHETIC^${String(n).padStart(4, '0')}`, sex, birthDate, ethnicGroup, traitApplied, nodules, studies });
  }
  return out;
}

/** The model inputs for one study of a planned patient. */
export function modelInput(o: SynthOptions, p: PatientPlan, s: StudyPlan): import('./model').ModelInput {
  const scan: ScanOptions = { slices: o.slices, size: o.size, thickness: o.thickness, pixelSpacing: o.pixelSpacing };
  return {
    seed: o.seed,
    patient: p.index,
    study: s.index,
    sex: p.sex,
    age: p.studies[0].age,
    trait: p.traitApplied && o.traitStrength > 0 ? traitEffect(o.traitStrength) : null,
    scan,
    nodules: p.nodules,
    ...(o.noduleSize !== undefined && { noduleSize: o.noduleSize }),
    ...(o.noduleContrast !== undefined && { noduleContrast: o.noduleContrast }),
    pe: { present: s.pe.present, chronic: s.pe.chronic || s.pe.acuteAndChronic, rvStrain: s.pe.rvStrain },
  };
}
