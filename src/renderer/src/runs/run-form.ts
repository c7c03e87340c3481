/**
 * The pretrain form and its translation to a runs.create request (src/shared/run-config.ts
 * `pretrainRequestSchema`: the run to continue from is named by its id), run names,
 * the masked-region curriculum, and batch advice from the doctor. Pure (types only from shared);
 * unit-tested.
 */
import type { CohortFilter, DoctorInfo, RunSummary } from '../../../shared/types';
import type { PretrainRequest } from '../../../shared/run-config';
import {
  allTaskOptions,
  defaultTaskOptions,
  nextCurriculumStage,
  pretextTask,
  taskLabel,
  taskTitle,
  type PretextTaskId,
  type TaskOptionValues,
} from '../../../shared/pretext-tasks';
import { posInt } from '../lib/form-checks';
import { RECIPE_FIELDS, type Recipe } from '../../../shared/recipes';

export type PresetId = 'paper' | 'standard' | 'small' | 'tiny';
export const PRESET_IDS: readonly PresetId[] = ['tiny', 'small', 'standard', 'paper'];

/**
 * The form: the task (one of src/shared/pretext-tasks.ts, which lists them with their options), the
 * option fields of every task (maskPercent, maskDefinition, gap, noiseFraction: the chosen task's
 * are shown and sent), and the rest of a run config.
 */
export interface RunForm extends TaskOptionValues {
  name: string;
  task: PretextTaskId;
  /** 'ours' or 'reference' (the authors' public code: src/shared/recipes.ts); choosing one sets the fields it fixes. */
  recipe: Recipe;
  preset: PresetId;
  /** Input side override; null = the preset's. */
  size: number | null;
  batchSize: number;
  lengthBy: 'steps' | 'epochs';
  steps: number;
  epochs: number;
  lr: number;
  // Advanced
  optimizer: 'adam' | 'radam';
  seed: number;
  wMse: number | null;
  wMaskedMse: number | null;
  wVq: number | null;
  wSsim: number | null;
  windowLevel: number;
  windowWidth: number;
  scaling: 'fixed' | 'minmax';
  sliceStride: number;
  checkpointEvery: number;
  evalEvery: number;
  evalBatches: number;
  useCache: boolean;
  /** Id of the run whose weights start this one, as the select's value ('' = random initialisation). */
  init: string;
}

export function defaultRunForm(): RunForm {
  return {
    name: '',
    task: 'masked',
    recipe: 'ours',
    ...defaultTaskOptions(),
    preset: 'tiny',
    size: null,
    batchSize: 8,
    lengthBy: 'steps',
    steps: 200,
    epochs: 1,
    lr: 1e-3,
    optimizer: 'radam',
    seed: 1,
    wMse: null,
    wMaskedMse: null,
    wVq: null,
    wSsim: null,
    windowLevel: 50,
    windowWidth: 350,
    scaling: 'fixed',
    sliceStride: 1,
    checkpointEvery: 50,
    evalEvery: 50,
    evalBatches: 4,
    useCache: true,
    init: '',
  };
}

/** Problems with the form, by field; Start is disabled while there are any. */
export function runFormProblems(f: RunForm): Partial<Record<keyof RunForm, string>> {
  const p: Partial<Record<keyof RunForm, string>> = {};
  if (f.size !== null && !(posInt(f.size, 1024) && f.size >= 16)) p.size = 'an input side from 16 to 1024 px';
  if (!posInt(f.batchSize, 256)) p.batchSize = 'a batch of 1 to 256';
  if (f.lengthBy === 'steps' && !posInt(f.steps)) p.steps = 'a whole number of steps above 0';
  if (f.lengthBy === 'epochs' && !(typeof f.epochs === 'number' && f.epochs > 0)) p.epochs = 'a number of epochs above 0';
  if (!(typeof f.lr === 'number' && f.lr > 0 && f.lr <= 1)) p.lr = 'a learning rate above 0 and at most 1';
  if (!(Number.isInteger(f.seed) && f.seed >= 0)) p.seed = 'a whole number ≥ 0';
  for (const o of pretextTask(f.task).options) {
    const v = f[o.key as keyof TaskOptionValues];
    if (o.type === 'choice' ? !o.values.includes(v) : !(typeof v === 'number' && (o.type === 'number' || Number.isInteger(v)) && v >= o.min && v <= o.max))
      p[o.key as keyof TaskOptionValues] = o.type === 'choice' ? `one of ${o.values.join(', ')}` : o.problem;
  }
  if (!(typeof f.windowWidth === 'number' && f.windowWidth > 0)) p.windowWidth = 'a width above 0';
  if (typeof f.windowLevel !== 'number' || !Number.isFinite(f.windowLevel)) p.windowLevel = 'a level in HU';
  if (!posInt(f.sliceStride)) p.sliceStride = 'every k-th slice, k ≥ 1';
  if (!posInt(f.checkpointEvery)) p.checkpointEvery = 'steps ≥ 1';
  if (!posInt(f.evalEvery)) p.evalEvery = 'steps ≥ 1';
  if (f.recipe === 'reference') {
    // The reference recipe fixes these: a run that says 'reference' is the public code's.
    const r = RECIPE_FIELDS.reference;
    for (const k of ['batchSize', 'maskDefinition', 'scaling', 'optimizer', 'lr'] as const)
      if (f[k] !== r[k]) p[k] = `the reference recipe uses ${k === 'batchSize' ? 'batch' : k} ${r[k]}`;
  }
  if (!(Number.isInteger(f.evalBatches) && f.evalBatches >= 0)) p.evalBatches = 'batches ≥ 0 (0 = the whole validation split)';
  for (const k of ['wMse', 'wMaskedMse', 'wVq', 'wSsim'] as const) {
    const v = f[k];
    if (v !== null && (typeof v !== 'number' || !Number.isFinite(v))) p[k] = 'a number, or empty for the default';
  }
  return p;
}

/** The request for runs.create (the services fill defaults, find the init run's folder and validate again). */
export function toRunConfig(f: RunForm, cohort: { filter?: CohortFilter; seriesIds?: number[] }): PretrainRequest {
  const lossWeights: PretrainRequest['lossWeights'] = {};
  if (f.wMse !== null) lossWeights.mse = f.wMse;
  if (f.wMaskedMse !== null) lossWeights.maskedMse = f.wMaskedMse;
  if (f.wVq !== null) lossWeights.vq = f.wVq;
  if (f.wSsim !== null) lossWeights.ssim = f.wSsim;
  const c: PretrainRequest = {
    kind: 'pretrain',
    name: f.name.trim(),
    task: f.task,
    recipe: f.recipe,
    ...(Object.fromEntries(allTaskOptions().map((o) => [o.key, f[o.key as keyof TaskOptionValues]])) as TaskOptionValues),
    fractions: { train: 0.8, val: 0.1, test: 0.1 },
    preset: f.preset,
    batchSize: f.batchSize,
    optimizer: f.optimizer,
    lr: f.lr,
    seed: f.seed,
    lossWeights,
    codebookInit: RECIPE_FIELDS[f.recipe].codebookInit,
    windowLevel: f.windowLevel,
    windowWidth: f.windowWidth,
    scaling: f.scaling,
    sliceStride: f.sliceStride,
    checkpointEvery: f.checkpointEvery,
    evalEvery: f.evalEvery,
    evalBatches: f.evalBatches,
    useCache: f.useCache,
  };
  if (f.size !== null) c.size = f.size;
  if (f.lengthBy === 'steps') c.steps = f.steps;
  else c.epochs = f.epochs;
  if (cohort.seriesIds) c.seriesIds = cohort.seriesIds;
  else c.filter = cohort.filter ?? {};
  if (f.init) c.init = Number(f.init);
  return c;
}

/** The form with a recipe chosen: the fields the recipe fixes set to its values (batch, mask definition, scaling, optimizer, learning rate). */
export function applyRecipe(f: RunForm, recipe: Recipe): RunForm {
  const r = RECIPE_FIELDS[recipe];
  return { ...f, recipe, batchSize: r.batchSize, maskDefinition: r.maskDefinition, scaling: r.scaling, optimizer: r.optimizer, lr: r.lr };
}

/** Input window and scaling of a run's config. */
export function runWindow(r: Pick<RunSummary, 'config'>): { level: number; width: number; scaling: 'fixed' | 'minmax' } {
  const c = r.config;
  return { level: c.windowLevel, width: c.windowWidth, scaling: c.scaling };
}

/**
 * Choosing the run a pretraining run continues from (a curriculum stage) takes that run's window
 * and scaling (and a reference run's recipe): the encoder goes on seeing inputs windowed as before.
 * Random initialisation keeps what the form has.
 */
export function applyPretrainInit(f: RunForm, init: string, runs: readonly RunSummary[]): RunForm {
  const run = init ? runs.find((r) => String(r.id) === init) : undefined;
  if (!run) return { ...f, init };
  // A reference run's next stage is a reference run too (as `ctssl pretrain --init` does).
  const base = run.config.kind === 'pretrain' && run.config.recipe === 'reference' ? applyRecipe(f, 'reference') : f;
  const w = runWindow(run);
  return { ...base, init, windowLevel: w.level, windowWidth: w.width, scaling: w.scaling };
}

/** True when a run's weights can start another run (finished, or stopped with a checkpoint). */
export function canInitFrom(r: RunSummary): boolean {
  return (r.kind === 'pretrain' || r.kind === 'imported') && (r.status === 'done' || ((r.status === 'stopped' || r.status === 'crashed') && r.step > 0));
}

/**
 * The request for the next stage of a task's curriculum (the masked region's 5 -> 10 -> 20 -> 33 %)
 * started from `run` (by id), or null when there is none.
 */
export function nextCurriculumConfig(run: RunSummary): PretrainRequest | null {
  const c = run.config;
  if (c.kind !== 'pretrain' || run.task !== c.task || run.status !== 'done') return null;
  const next = nextCurriculumStage(c);
  if (next === null) return null;
  // The stage keeps this run's data and patient split (the services copy its manifest): never a new cohort, never an overlap.
  const { name: _name, init: _init, newCohort: _newCohort, allowOverlap: _allowOverlap, ...rest } = c;
  void [_name, _init, _newCohort, _allowOverlap];
  const stage = { ...rest, kind: 'pretrain' as const, [next.key]: next.value };
  return { ...stage, init: run.id, name: `${run.name ? run.name + ' → ' : ''}${taskTitle(stage)}` };
}

/** What a run is, in a few words: its name, or task, mask, preset and size. */
export function runLabel(r: Pick<RunSummary, 'id' | 'name' | 'task' | 'preset' | 'config' | 'kind'>): string {
  if (r.name) return r.name;
  const c = r.config;
  const task = c.kind === 'pretrain' && c.task === r.task ? taskLabel(c) : r.task;
  const size = c.size !== undefined ? ` ${c.size}px` : '';
  return `${task} · ${r.preset}${size}`;
}

/**
 * The largest batch that fits for a preset at an input side, from the doctor's estimate at the
 * preset's own side (activations grow with the area).
 */
export function largestBatch(doctor: DoctorInfo | null, preset: string, size: number | null): number | null {
  const p = doctor?.presets.find((x) => x.preset === preset);
  if (!p) return null;
  if (size === null || size === p.size) return p.largestBatch;
  const scaled = Math.floor(p.largestBatch * (p.size / size) ** 2);
  return Math.max(0, Math.min(256, scaled));
}

/** Parameters as "13.6 k", "9.71 M". */
export function params(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e8 ? 1 : 2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}
