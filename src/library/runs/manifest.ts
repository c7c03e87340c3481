/**
 * Training manifests: from a cohort of the index to the exact list of slices a run uses, split by
 * patient (never one patient on both sides) into train / validation / held-out with a seed. The
 * manifest is saved with the run and hashed into its ledger; the trainer reads files itself from
 * the manifest's paths (it never receives pixels through the host).
 */
import { createHash } from 'node:crypto';
import type { CohortFilter, SplitLineage } from '../../shared/types';
import { displayTransform } from '../../core/dicom/geometry';
import { Rng } from '../../core/random';
import { listSeries, PAPER_COHORT, seriesPlanes } from '../db/catalog';
import type { Database } from '../db/sqlite';

export type Split = 'train' | 'val' | 'test';

export interface ManifestSlice {
  path: string;
  frame: number;
  sopUid: string;
}

export interface ManifestSeries {
  seriesId: number;
  seriesUid: string;
  patientKey: string;
  split: Split;
  rows: number;
  columns: number;
  /** Stored pixels -> radiological display orientation. */
  transform: { transpose: boolean; flipX: boolean; flipY: boolean };
  /** Slices in display order (axial: superior first). */
  slices: ManifestSlice[];
}

export interface SplitCounts {
  patients: number;
  series: number;
  slices: number;
}

export interface Manifest {
  version: 1;
  createdAt: string;
  seed: number;
  filter: CohortFilter;
  fractions: { train: number; val: number; test: number };
  series: ManifestSeries[];
  counts: Record<Split, SplitCounts>;
  /** SHA-256 of the splits and slice lists (not of createdAt): equal data, equal hash. */
  hash: string;
  /** How the split was made when more than the seed decided it (parent runs, classes); absent: the seeded split. */
  split?: SplitLineage;
}

export interface ManifestOptions {
  filter?: CohortFilter;
  /** Explicit series (overrides the filter). */
  seriesIds?: number[];
  seed: number;
  fractions?: { train: number; val: number; test: number };
  /** Keep every k-th slice (1 = all). */
  sliceStride?: number;
  /** Patients that trained a run this one starts from: kept in the training split. */
  keepInTrain?: ReadonlySet<string>;
}

export const DEFAULT_FRACTIONS = { train: 0.8, val: 0.1, test: 0.1 };

/** Assigns patients to splits: shuffled by the seed, held-out and validation cut first. */
export function splitPatients(keys: string[], seed: number, f = DEFAULT_FRACTIONS): Map<string, Split> {
  const sorted = [...new Set(keys)].sort();
  new Rng(seed).shuffle(sorted);
  const { test: nTest, val: nVal } = splitSizes(sorted.length, f);
  const out = new Map<string, Split>();
  sorted.forEach((k, i) => out.set(k, i < nTest ? 'test' : i < nTest + nVal ? 'val' : 'train'));
  return out;
}

/**
 * How many of n patients the held-out and validation splits get: their fractions of n, rounded;
 * from 3 patients on at least one each (when its fraction is not 0), never all of them.
 */
export function splitSizes(n: number, f = DEFAULT_FRACTIONS): { test: number; val: number } {
  const total = f.train + f.val + f.test;
  let nTest = Math.round((f.test / total) * n);
  let nVal = Math.round((f.val / total) * n);
  if (n >= 3) {
    if (f.test > 0) nTest = Math.max(1, nTest);
    if (f.val > 0) nVal = Math.max(1, nVal);
  }
  while (nTest + nVal >= n && n > 0 && f.train > 0) {
    if (nVal >= nTest && nVal > 0) nVal--;
    else if (nTest > 0) nTest--;
    else break;
  }
  return { test: nTest, val: nVal };
}

/** What a patient split must respect beyond its seed. */
export interface SplitConstraints {
  /** Patients that trained a run this one starts from: kept in the training split, never in validation or held-out. */
  keepInTrain?: ReadonlySet<string>;
  /**
   * Each patient's class (1: it has a positive slice): the classes are split apart, each by the
   * seeded split's sizes, so that every split gets positives once there are 3 positive patients.
   */
  classes?: ReadonlyMap<string, 0 | 1>;
}

/** A patient split and the patients its validation and held-out splits were due. */
export interface PatientSplit {
  splits: Map<string, Split>;
  /** What the seeded split of the whole cohort (class by class when stratified) gives them; fewer went there when parents trained on the rest. */
  due: { val: number; test: number };
}

/**
 * The patient split under constraints. Without any (no classes, no kept patient in the cohort) it
 * is splitPatients exactly, so pretraining manifests of a seed are what they always were. Else,
 * class by class (one class when unlabelled): the split sizes of the class's patients are worked
 * out as splitPatients does, kept patients go to training, and the others, shuffled by the seed,
 * fill held-out, then validation (fewer when there are not enough of them), then training.
 */
export function splitPatientsConstrained(keys: string[], seed: number, f = DEFAULT_FRACTIONS, c: SplitConstraints = {}): PatientSplit {
  const unique = [...new Set(keys)].sort();
  const keep = c.keepInTrain ?? new Set<string>();
  if (!c.classes && !unique.some((k) => keep.has(k))) {
    const splits = splitPatients(unique, seed, f);
    const n = (s: Split) => [...splits.values()].filter((x) => x === s).length;
    return { splits, due: { val: n('val'), test: n('test') } };
  }
  const byClass = new Map<number, string[]>();
  for (const k of unique) {
    const cls = c.classes?.get(k) ?? 0;
    byClass.set(cls, [...(byClass.get(cls) ?? []), k]);
  }
  const splits = new Map<string, Split>();
  const due = { val: 0, test: 0 };
  for (const [cls, members] of [...byClass].sort((a, b) => b[0] - a[0])) {
    const sizes = splitSizes(members.length, f);
    due.val += sizes.val;
    due.test += sizes.test;
    const clean = members.filter((k) => !keep.has(k));
    (c.classes ? Rng.keyed(seed, `patient-split/class-${cls}`) : new Rng(seed)).shuffle(clean);
    let nTest = sizes.test;
    let nVal = sizes.val;
    if (clean.length < nTest + nVal) {
      // Not enough patients no parent trained on: held-out and validation share them by their sizes.
      nTest = nTest > 0 ? Math.min(nTest, clean.length, Math.max(1, Math.round((clean.length * nTest) / (nTest + nVal)))) : 0;
      nVal = Math.min(nVal, clean.length - nTest);
    }
    for (const k of members) if (keep.has(k)) splits.set(k, 'train');
    clean.forEach((k, i) => splits.set(k, i < nTest ? 'test' : i < nTest + nVal ? 'val' : 'train'));
  }
  return { splits, due };
}

/** Each series with its patient's key (from the library), in the order given. */
export function seriesPatientKeys<R extends { id: number }>(db: Database, rows: R[]): { row: R; patientKey: string }[] {
  const keyOf = db
    .prepare('SELECT p.patient_key FROM series se JOIN studies st ON st.id = se.study_ref JOIN patients p ON p.id = st.patient_ref WHERE se.id = ?')
    .pluck();
  return rows.map((row) => ({ row, patientKey: keyOf.get(row.id) as string }));
}

/**
 * The patient split of a cohort, the one way both kinds of manifest make it: each series with its
 * patient's key and that patient's split (splitPatientsConstrained), in the order given, and what
 * validation and held-out were due.
 */
export function splitSeriesByPatient<R extends { id: number }>(
  db: Database,
  rows: R[],
  seed: number,
  fractions = DEFAULT_FRACTIONS,
  constraints: SplitConstraints = {},
): { series: { row: R; patientKey: string; split: Split }[]; due: PatientSplit['due'] } {
  const keyed = seriesPatientKeys(db, rows);
  const { splits, due } = splitPatientsConstrained(
    keyed.map((k) => k.patientKey),
    seed,
    fractions,
    constraints,
  );
  return { series: keyed.map((k) => ({ ...k, split: splits.get(k.patientKey)! })), due };
}

/** Patients, series and slices of each split. */
export function countSplits(series: readonly { split: Split; patientKey: string; slices: readonly unknown[] }[]): Record<Split, SplitCounts> {
  const counts = {} as Record<Split, SplitCounts>;
  for (const s of ['train', 'val', 'test'] as Split[]) {
    const of = series.filter((x) => x.split === s);
    counts[s] = { patients: new Set(of.map((x) => x.patientKey)).size, series: of.length, slices: of.reduce((a, x) => a + x.slices.length, 0) };
  }
  return counts;
}

export function buildManifest(db: Database, o: ManifestOptions): Manifest {
  const filter = o.filter ?? PAPER_COHORT;
  const fractions = o.fractions ?? DEFAULT_FRACTIONS;
  const stride = Math.max(1, o.sliceStride ?? 1);
  const rows = o.seriesIds ? listSeries(db).filter((s) => o.seriesIds!.includes(s.id)) : listSeries(db, filter);
  if (o.seriesIds) {
    const missing = o.seriesIds.filter((id) => !rows.some((r) => r.id === id));
    if (missing.length) throw new Error(`series not in the index: ${missing.join(', ')}`);
  }
  const usable = rows.filter((r) => r.slices > 0 && r.rows && r.columns);
  if (usable.length === 0) throw new Error('the cohort is empty: no indexed series with image slices match the filter');
  const { series: assigned, due } = splitSeriesByPatient(db, usable, o.seed, fractions, { keepInTrain: o.keepInTrain });
  const iopOf = db.prepare('SELECT image_orientation FROM instances WHERE id = ?').pluck();
  const series: ManifestSeries[] = assigned.map(({ row: r, patientKey, split }) => {
    const { geometry, planes } = seriesPlanes(db, r.id);
    const iop = planes.length ? (iopOf.get(planes[0].instanceId) as string | null) : null;
    const t = displayTransform(iop ? (JSON.parse(iop) as number[]) : null, geometry.orientation);
    const sopOf = db.prepare('SELECT sop_uid FROM instances WHERE id = ?').pluck();
    return {
      seriesId: r.id,
      seriesUid: r.seriesInstanceUid,
      patientKey,
      split,
      rows: r.rows!,
      columns: r.columns!,
      transform: { transpose: t.transpose, flipX: t.flipX, flipY: t.flipY },
      slices: planes
        .filter((_, i) => i % stride === 0)
        .map((p) => ({ path: p.path, frame: p.frame, sopUid: sopOf.get(p.instanceId) as string })),
    };
  });
  const counts = countSplits(series);
  const hash = createHash('sha256')
    .update(JSON.stringify({ seed: o.seed, fractions, series: series.map((s) => [s.seriesUid, s.split, s.slices.map((x) => [x.sopUid, x.frame])]) }))
    .digest('hex');
  const manifest: Manifest = { version: 1, createdAt: new Date().toISOString(), seed: o.seed, filter, fractions, series, counts, hash };
  // Kept patients: the caller (create-run) completes the record of how the split was made.
  if (o.keepInTrain) manifest.split = { inheritedFrom: null, parents: [], keptInTrain: [], overlap: [], stratified: false, due, warnings: [] };
  return manifest;
}

/** A reference to one slice of the manifest. */
export interface SliceRef {
  series: number;
  slice: number;
}

/** Every slice of a split (for next-slice, only slices that have a partner `gap` further on). */
export function sliceRefs(m: Manifest, split: Split, gap = 0): SliceRef[] {
  const out: SliceRef[] = [];
  m.series.forEach((s, si) => {
    if (s.split !== split) return;
    for (let i = 0; i + gap < s.slices.length; i++) out.push({ series: si, slice: i });
  });
  return out;
}
