/**
 * Splits that never leak: the runs a new run starts from (its `init` chain; for an experiment grid
 * every pretrained initialisation), the patients they trained on, and the rule a new run's split
 * follows. A patient in any parent's training split is never in the child's validation or held-out
 * split: it is kept in training (it has been seen by the encoder already). When that leaves
 * validation or held-out without any patient although the cohort was due some, the run is refused
 * with the patients and counts, unless the caller allows the overlap (then the patients a parent
 * trained on are split like any other, and listed). An imported encoder has no manifest: its
 * training patients cannot be checked, and the run says so.
 *
 * Also the view of a run's split (runs.split, `split` of pretrain/finetune --json): each split's
 * patients with their series.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { RunSplit, SplitLineage, SplitParent, SplitPatient } from '../../shared/types';
import type { Database } from '../db/sqlite';
import type { Split } from './manifest';

/** A parent run as read from its folder, with its training patients (null: unknown). */
export interface Ancestor {
  dir: string;
  name: string;
  kind: SplitParent['kind'];
  trainPatients: Set<string> | null;
  note: string;
}

const readJson = (path: string): Record<string, unknown> | null => {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
};

/** One run folder as a parent: its name, kind and the patient keys of its training split. */
export function readAncestor(dir: string): Ancestor & { init: string | null } {
  const abs = resolve(dir);
  const config = readJson(join(abs, 'config.json')) ?? {};
  const ledger = readJson(join(abs, 'run.json')) ?? {};
  const manifest = readJson(join(abs, 'manifest.json'));
  const name = typeof config.name === 'string' && config.name ? config.name : basename(abs);
  const init = typeof config.init === 'string' && config.init ? resolve(config.init) : null;
  if (typeof ledger.importedFrom === 'string' || !manifest) {
    const imported = typeof ledger.importedFrom === 'string';
    return {
      dir: abs,
      name,
      kind: imported ? 'imported' : 'unknown',
      trainPatients: null,
      note: imported ? `cannot check: the encoder was trained elsewhere (imported from ${ledger.importedFrom}); its training patients are unknown` : 'cannot check: the run folder has no manifest.json; its training patients are unknown',
      init,
    };
  }
  const series = Array.isArray(manifest.series) ? (manifest.series as { patientKey?: unknown; split?: unknown }[]) : [];
  const train = new Set(series.filter((s) => s.split === 'train' && typeof s.patientKey === 'string').map((s) => s.patientKey as string));
  return { dir: abs, name, kind: config.kind === 'finetune' ? 'finetune' : 'pretrain', trainPatients: train, note: '', init };
}

/**
 * The runs a run started from `inits` descends from: each init, its init, and so on, nearest first,
 * each once (a chain that loops, or one deeper than 64 runs, stops there).
 */
export function ancestors(inits: readonly string[]): Ancestor[] {
  const out: Ancestor[] = [];
  const seen = new Set<string>();
  for (const first of inits) {
    let next: string | null = resolve(first);
    for (let depth = 0; next && depth < 64 && !seen.has(next); depth++) {
      seen.add(next);
      const { init, ...a } = readAncestor(next);
      out.push(a);
      next = init;
    }
  }
  return out;
}

/** Patient keys any of these runs trained on. */
export function trainedPatients(parents: readonly Ancestor[]): Set<string> {
  const out = new Set<string>();
  for (const p of parents) for (const k of p.trainPatients ?? []) out.add(k);
  return out;
}

/** Thrown when the library offers no patient a parent did not train on for validation or held-out. */
export class SplitLeakError extends Error {}

const SPLIT_NAMES: Record<'val' | 'test', string> = { val: 'validation', test: 'held-out' };
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** Up to 20 names, then how many more. */
export function listNames(keys: readonly string[], max = 20): string {
  const shown = [...keys].sort().slice(0, max);
  return shown.join(', ') + (keys.length > max ? `, and ${keys.length - max} more` : '');
}

/**
 * The record of how a split was made from its parents, checked: refuses (SplitLeakError, naming
 * the patients and counts) when validation or held-out was due patients and got none because the
 * parents trained on the rest; otherwise what the user should know (an encoder trained elsewhere,
 * fewer patients than due, an overlap the caller allowed).
 */
export function checkLineage(o: {
  parents: readonly Ancestor[];
  series: readonly { patientKey: string; split: Split }[];
  due: { val: number; test: number };
  fractions: { val: number; test: number };
  allowOverlap: boolean;
  inheritedFrom: string | null;
  stratified: boolean;
}): SplitLineage {
  const trained = trainedPatients(o.parents);
  const splitOf = new Map(o.series.map((s) => [s.patientKey, s.split]));
  const cohort = [...splitOf.keys()];
  const seen = cohort.filter((k) => trained.has(k));
  const overlap = seen.filter((k) => splitOf.get(k) !== 'train');
  const got = (sp: Split) => cohort.filter((k) => splitOf.get(k) === sp).length;
  const names = o.parents.filter((p) => p.trainPatients).map((p) => `"${p.name}"`);
  const parentsText = names.length ? (names.length === 1 ? `the parent run ${names[0]}` : `the parent runs ${names.join(', ')}`) : 'the parent run';
  const warnings: string[] = [];
  for (const p of o.parents) if (!p.trainPatients) warnings.push(`"${p.name}": ${p.note}: they may be in validation or held-out`);
  if (!o.allowOverlap) {
    for (const sp of ['test', 'val'] as const) {
      if (o.fractions[sp] > 0 && o.due[sp] > 0 && got(sp) === 0) {
        const clean = cohort.length - seen.length;
        throw new SplitLeakError(
          `no clean ${SPLIT_NAMES[sp]} patients: the ${SPLIT_NAMES[sp]} split was due ${plural(o.due[sp], 'patient')}, but ${seen.length} of the cohort's ${plural(cohort.length, 'patient')} trained ${parentsText} ` +
            `and stay in training (${listNames(seen)})${clean ? `, and the ${plural(clean, 'other')} went to ${sp === 'test' ? 'validation' : 'held-out'}` : ''}. ` +
            "Add patients the parent runs never trained on, or allow the overlap ('Allow pretraining patients in validation/test' in the split settings, --allow-overlap in the CLI; recorded with the run as a warning)",
        );
      }
      if (got(sp) < o.due[sp]) warnings.push(`${SPLIT_NAMES[sp]} split: ${plural(got(sp), 'patient')} instead of ${o.due[sp]}: ${plural(seen.length, 'patient')} of the cohort trained ${parentsText} and stay in training`);
    }
  } else if (overlap.length) {
    warnings.push(`${plural(overlap.length, 'patient')} that ${parentsText} trained on ${overlap.length === 1 ? 'is' : 'are'} in validation or held-out (overlap allowed): results there are not independent of pretraining`);
  }
  return {
    inheritedFrom: o.inheritedFrom,
    parents: o.parents.map((p) => ({ dir: p.dir, name: p.name, kind: p.kind, trainPatients: p.trainPatients ? seen.filter((k) => p.trainPatients!.has(k)).length : null, note: p.note })),
    keptInTrain: seen.filter((k) => splitOf.get(k) === 'train').sort(),
    overlap: overlap.sort(),
    stratified: o.stratified,
    due: o.due,
    warnings,
  };
}

/** What a manifest (pretraining or fine-tuning) holds that the split view reads. */
interface SplitManifest {
  hash: string;
  seed: number;
  fractions: { train: number; val: number; test: number };
  series: { seriesId: number; seriesUid: string; patientKey: string; split: Split; slices: { label?: number }[] }[];
  split?: SplitLineage;
}

/** Which patients and series are in each split of a manifest, with each series' description from the library. */
export function describeSplit(db: Database, runId: number, m: SplitManifest): RunSplit {
  const describe = db.prepare('SELECT description FROM series WHERE series_uid = ?').pluck();
  const labelled = m.series.some((s) => s.slices.some((x) => typeof x.label === 'number'));
  const parentTrained = new Set([...(m.split?.keptInTrain ?? []), ...(m.split?.overlap ?? [])]);
  const splits = {} as RunSplit['splits'];
  for (const sp of ['train', 'val', 'test'] as Split[]) {
    const patients = new Map<string, SplitPatient>();
    for (const s of m.series.filter((x) => x.split === sp)) {
      const p = patients.get(s.patientKey) ?? { key: s.patientKey, positive: labelled ? false : null, parentTrained: parentTrained.has(s.patientKey), series: [] };
      const positives = labelled ? s.slices.filter((x) => x.label === 1).length : null;
      if (positives) p.positive = true;
      p.series.push({ id: s.seriesId, uid: s.seriesUid, description: (describe.get(s.seriesUid) as string | undefined) ?? '', slices: s.slices.length, positives });
      patients.set(s.patientKey, p);
    }
    const list = [...patients.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const series = list.flatMap((p) => p.series);
    splits[sp] = {
      patients: list.length,
      series: series.length,
      slices: series.reduce((a, s) => a + s.slices, 0),
      positives: labelled ? series.reduce((a, s) => a + (s.positives ?? 0), 0) : null,
      positivePatients: labelled ? list.filter((p) => p.positive).length : null,
      list,
    };
  }
  return { runId, manifestHash: m.hash, seed: m.seed, fractions: m.fractions, labelled, lineage: m.split ?? null, splits };
}

/** A run folder's split view (its manifest.json); null when it has none (an imported encoder). */
export function runSplit(db: Database, runId: number, dir: string): RunSplit | null {
  const path = join(dir, 'manifest.json');
  if (!existsSync(path)) return null;
  return describeSplit(db, runId, JSON.parse(readFileSync(path, 'utf8')) as SplitManifest);
}
