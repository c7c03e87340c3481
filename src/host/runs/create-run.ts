/**
 * Creating a run: its configuration (window and scaling inherited from the run it starts from),
 * the manifest split by patient, the folder with config.json, manifest.json and the ledger
 * run.json, and its row in the library.
 *
 * Splits never leak (src/library/runs/lineage.ts): a curriculum stage keeps its parent's manifest
 * (same slices, same split) unless asked for a new cohort; any other run started from others keeps
 * the patients they trained on in its training split and is refused when that leaves validation
 * or held-out without patients (unless allowOverlap). Fine-tuning splits are stratified by
 * patient class and refused when a split lacks positives (splitClassProblems).
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseFinetuneConfig, parsePretrainConfig, type FinetuneConfig, type FinetuneConfigInput, type PretrainConfig, type PretrainConfigInput } from '../../shared/run-config';
import { taskFolderName } from '../../shared/pretext-tasks';
import { appMeta } from '../../platform/app-meta';
import type { Database } from '../../library/db/sqlite';
import { latestCheckpointDir, writeJsonAtomic } from '../../library/runs/checkpoint';
import { buildFinetuneManifest, splitClassProblems } from '../../library/runs/finetune-manifest';
import { buildManifest, type Manifest } from '../../library/runs/manifest';
import { ancestors, checkLineage, trainedPatients, type Ancestor } from '../../library/runs/lineage';
import type { SplitLineage } from '../../shared/types';
import { configHash } from '../../library/runs/run-hash';
import { getRun, type RunRow } from './run-store';

export interface CreateRunOptions {
  /** Run folder; default <dataDir>/runs/<date>-<task>-<short uid>. */
  dir?: string;
  dataDir: string;
  /**
   * More runs whose training patients stay out of validation and held-out, besides the init chain
   * (an experiment grid: every pretrained initialisation, so that all its runs share one split).
   */
  splitParents?: string[];
}

/** An absolute run folder with a checkpoint (for `init`), or an error naming it. */
function checkInit(init: string): string {
  const abs = resolve(init);
  if (!latestCheckpointDir(abs)) throw new Error(`init ${abs}: not a run folder with a checkpoint`);
  return abs;
}

/** A new run folder name under the data folder (or the one asked for), refusing an existing run. */
function newRunDir(o: CreateRunOptions, label: string, uid: string): string {
  const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, '').replace(/-/g, '');
  const dir = resolve(o.dir ?? join(o.dataDir, 'runs', `${stamp}-${label}-${uid.slice(0, 8)}`));
  if (existsSync(join(dir, 'config.json'))) throw new Error(`${dir} already holds a run: use --resume to continue it, or choose another folder`);
  return dir;
}

/** Writes config.json, manifest.json and the ledger run.json, and records the run. */
function recordRun(
  db: Database,
  kind: 'pretrain' | 'finetune',
  uid: string,
  dir: string,
  config: PretrainConfig | FinetuneConfig,
  manifest: { hash: string; counts: unknown; split?: SplitLineage },
  splitSeed: number,
): RunRow {
  // A folder deleted by hand leaves its run in the library: say so, not "UNIQUE constraint failed".
  const listed = getRun(db, dir);
  if (listed) throw new Error(`the library already lists run ${listed.id} in ${dir} (its folder was removed?): move it to the trash (ctssl runs --delete ${listed.id}) or choose another folder`);
  writeJsonAtomic(join(dir, 'config.json'), config);
  writeJsonAtomic(join(dir, 'manifest.json'), manifest);
  const now = new Date().toISOString();
  const ledger = {
    uid,
    app: appMeta().productName,
    appVersion: appMeta().version,
    createdAt: now,
    configHash: configHash(config),
    manifestHash: manifest.hash,
    seeds: { run: config.seed, split: splitSeed, weights: config.seed },
    parent: config.init ?? null,
    counts: manifest.counts,
    // How the split was made (counts only: the patients are listed in manifest.json).
    split: manifest.split
      ? {
          inheritedFrom: manifest.split.inheritedFrom,
          parents: manifest.split.parents.map((p) => ({ dir: p.dir, kind: p.kind, trainPatients: p.trainPatients })),
          keptInTrain: manifest.split.keptInTrain.length,
          overlap: manifest.split.overlap.length,
          stratified: manifest.split.stratified,
          warnings: manifest.split.warnings,
        }
      : null,
  };
  writeJsonAtomic(join(dir, 'run.json'), ledger);
  db.prepare(
    `INSERT INTO runs (uid, name, kind, task, status, dir, config, config_hash, manifest_hash, seed, app_version, parent_dir, created_at, updated_at)
     VALUES (?, ?, ?, ?, 'created', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(uid, config.name, kind, config.task, dir, JSON.stringify(config), ledger.configHash, manifest.hash, config.seed, appMeta().version, config.init ?? '', now, now);
  return getRun(db, dir)!;
}

/**
 * The config and manifest a pretraining run of `input` gets (window inherited from its init, the
 * split clean of its parents', a curriculum stage on its parent's manifest), without writing
 * anything: createRun records them as a run, a cluster job (src/host/cluster-job) exports them.
 */
export function planPretrainRun(db: Database, input: PretrainConfigInput, o: { splitParents?: string[] } = {}): { config: PretrainConfig; manifest: Manifest } {
  // A curriculum stage keeps the previous stage's window, scaling and recipe unless told otherwise.
  const config = parsePretrainConfig(withInitRecipe(withInitPreprocessing(input)));
  if (config.init) config.init = checkInit(config.init);
  const parents = splitParents(config.init, o);
  // A curriculum stage keeps its parent's data and split, and says so in its config.
  const inherited = config.init && !config.newCohort ? pretrainManifestOf(config.init) : null;
  if (inherited) Object.assign(config, inherited.data);
  let manifest: Manifest;
  if (inherited) manifest = { ...inherited.manifest, createdAt: new Date().toISOString() };
  else
    manifest = buildManifest(db, {
      filter: config.filter,
      seriesIds: config.seriesIds,
      seed: config.seed,
      fractions: config.fractions,
      sliceStride: config.sliceStride,
      ...(parents.length && !config.allowOverlap && { keepInTrain: trainedPatients(parents) }),
    });
  if (parents.length) manifest.split = lineageOf(manifest, parents, { allowOverlap: !!config.allowOverlap, inheritedFrom: inherited ? config.init! : null, stratified: false });
  if (manifest.counts.train.slices === 0) throw new Error('the training split is empty: the cohort needs more patients');
  return { config, manifest };
}

/** Builds the manifest and writes the run folder; records the run. */
export function createRun(db: Database, input: PretrainConfigInput, o: CreateRunOptions): RunRow {
  const { config, manifest } = planPretrainRun(db, input, o);
  const uid = randomUUID();
  const dir = newRunDir(o, taskFolderName(config), uid);
  mkdirSync(dir, { recursive: true });
  return recordRun(db, 'pretrain', uid, dir, config, manifest, manifest.seed);
}

/** The runs whose training patients a new run keeps out of validation and held-out: its init chain and the caller's. */
function splitParents(init: string | undefined, o: { splitParents?: string[] }): Ancestor[] {
  return ancestors([...(init ? [init] : []), ...(o.splitParents ?? [])]);
}

/** A pretraining parent's manifest and the config fields that chose its data; null when it has none (an imported encoder). */
function pretrainManifestOf(dir: string): { manifest: Manifest; data: Pick<PretrainConfig, 'filter' | 'seriesIds' | 'fractions' | 'sliceStride'> } | null {
  try {
    const parent = parsePretrainConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
    if (parent.kind !== 'pretrain' || !existsSync(join(dir, 'manifest.json'))) return null;
    const { split: _split, ...manifest } = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
    void _split;
    return { manifest, data: { filter: parent.filter, seriesIds: parent.seriesIds, fractions: parent.fractions, sliceStride: parent.sliceStride } };
  } catch {
    return null;
  }
}

/** The checked record of how a manifest's split follows from its parents (refuses a leaking one: checkLineage). */
function lineageOf(
  manifest: { series: { patientKey: string; split: 'train' | 'val' | 'test' }[]; counts: Record<'val' | 'test', { patients: number }>; fractions: { val: number; test: number }; split?: SplitLineage },
  parents: Ancestor[],
  o: { allowOverlap: boolean; inheritedFrom: string | null; stratified: boolean },
): SplitLineage {
  // Due: what the split without parents gives (the builder's record), or what this one got when nothing was held back.
  const due = manifest.split?.due ?? { val: manifest.counts.val.patients, test: manifest.counts.test.patients };
  return checkLineage({ parents, series: manifest.series, due, fractions: manifest.fractions, ...o });
}

/**
 * The preprocessing (window level and width, scaling) a pretrained run's encoder was trained on,
 * from its config.json; null when the folder has none. Fine-tuning from that encoder takes it
 * unless told otherwise: another window would feed the encoder inputs it has never seen.
 */
export function initPreprocessing(init: string): { windowLevel: number; windowWidth: number; scaling: 'fixed' | 'minmax' } | null {
  try {
    const c = JSON.parse(readFileSync(join(resolve(init), 'config.json'), 'utf8')) as { windowLevel?: unknown; windowWidth?: unknown; scaling?: unknown };
    if (typeof c.windowLevel !== 'number' || typeof c.windowWidth !== 'number') return null;
    return { windowLevel: c.windowLevel, windowWidth: c.windowWidth, scaling: c.scaling === 'minmax' ? 'minmax' : 'fixed' };
  } catch {
    return null;
  }
}

/**
 * The input with each of window level, window width and scaling that it leaves unset taken from
 * its init run (field by field: `--window-level -600` alone keeps the init's width and scaling).
 */
export function withInitPreprocessing<T extends { init?: string; windowLevel?: number; windowWidth?: number; scaling?: 'fixed' | 'minmax' }>(input: T): T {
  const inherited = input.init ? initPreprocessing(input.init) : null;
  if (!inherited) return input;
  return {
    ...input,
    windowLevel: input.windowLevel ?? inherited.windowLevel,
    windowWidth: input.windowWidth ?? inherited.windowWidth,
    scaling: input.scaling ?? inherited.scaling,
  };
}

/**
 * A new pretraining run records its recipe: the one given, else its init run's (a reference run's
 * next stage stays 'reference'), else 'ours'.
 */
function withInitRecipe<T extends { init?: string; recipe?: 'ours' | 'reference' }>(input: T): T {
  if (input.recipe !== undefined) return input;
  let parent: unknown;
  try {
    if (input.init) parent = (JSON.parse(readFileSync(join(resolve(input.init), 'config.json'), 'utf8')) as { recipe?: unknown }).recipe;
  } catch {
    /* no readable config: checkInit names the folder */
  }
  return { ...input, recipe: parent === 'reference' ? 'reference' : 'ours' };
}

/** Builds the labelled-data manifest (and masks) and the run folder of a fine-tuning run; records it. */
export function createFinetuneRun(db: Database, input: FinetuneConfigInput, o: CreateRunOptions): RunRow {
  // Window and scaling not given: a pretrained encoder's own (see initPreprocessing).
  const config = parseFinetuneConfig(withInitPreprocessing(input));
  if (config.init) config.init = checkInit(config.init);
  const uid = randomUUID();
  const dir = newRunDir(o, `finetune-${config.task}`, uid);
  const existed = existsSync(dir);
  mkdirSync(dir, { recursive: true });
  const splitSeed = config.splitSeed ?? config.seed;
  const fail = (err: unknown): never => {
    if (!existed) rmSync(dir, { recursive: true, force: true });
    throw err;
  };
  const parents = splitParents(config.init, o);
  let manifest;
  try {
    manifest = buildFinetuneManifest(db, dir, {
      task: config.task,
      label: config.label,
      filter: config.filter,
      seriesIds: config.seriesIds,
      ...(config.trainSeriesIds && { trainOnlySeriesIds: config.trainSeriesIds }),
      seed: splitSeed,
      fractions: config.fractions,
      negativesPerPositive: config.negativesPerPositive,
      sliceStride: config.sliceStride,
      ...(parents.length && !config.allowOverlap && { keepInTrain: trainedPatients(parents) }),
    });
    if (parents.length) manifest.split = lineageOf(manifest, parents, { allowOverlap: !!config.allowOverlap, inheritedFrom: null, stratified: true });
  } catch (err) {
    return fail(err);
  }
  if (manifest.counts.train.slices === 0) fail(new Error('the training split has no labelled slices: the cohort needs more patients'));
  // Stratified by patient class; a split that still lacks one cannot measure anything: refused now, not after training.
  const problems = splitClassProblems(manifest);
  if (problems.length) fail(new Error(`${problems.join('; ')}: add labelled patients or change the split fractions`));
  return recordRun(db, 'finetune', uid, dir, config, manifest, splitSeed);
}
