/**
 * The fine-tune form and its translation to a fine-tuning run config (src/shared/run-config.ts
 * `finetuneConfigSchema`): task and label, initialisation (random weights, the supervised CNN
 * baseline, or a finished pretraining/imported run, which also decides the model), training
 * fraction, freeze epochs, optimisation, and advanced options. Pure (types only from shared);
 * unit-tested, and checked against the shared schema in the tests.
 */
import type { FinetuneRequest } from '../../../shared/run-config';
import type { CohortFilter, RunSummary } from '../../../shared/types';
import { canInitFrom, runLabel, runWindow, type PresetId } from '../runs/run-form';
import { finite, posInt } from '../lib/form-checks';

export type DownstreamTask = 'classification' | 'segmentation';
export type DownstreamModel = 'encoder-classifier' | 'cnn' | 'unet';

/** The RSNA PE per-image label (what 'pe' means in experiment specs). */
export const PE_LABEL = 'pe_present_on_image';

export const DOWNSTREAM_TASKS: readonly { id: DownstreamTask; label: string; hint: string }[] = [
  { id: 'classification', label: 'Slice classification', hint: 'a per-image binary label (e.g. RSNA pe_present_on_image): encoder + dense head, AUROC' },
  { id: 'segmentation', label: 'Nodule segmentation', hint: 'LIDC/SEG nodule masks: U-Net whose down branch is the encoder, Dice + cross-entropy, Dice/IoU' },
];

export interface FinetuneForm {
  name: string;
  task: DownstreamTask;
  /** Classification: the per-image label to predict. */
  labelName: string;
  /** Segmentation: a nodule counts where at least K readers marked it (null = the default). */
  consensusK: number | null;
  /** 'random' | 'cnn' | the folder of a pretraining or imported run. */
  init: string;
  preset: PresetId;
  /** Input side; null = the preset's. Must match a pretrained init's. */
  size: number | null;
  /** Fraction of the training slices used (the paper's training-set fractions). */
  trainFraction: number;
  /** Epochs during which the pretrained encoder stays frozen. */
  freezeEpochs: number;
  lengthBy: 'steps' | 'epochs';
  steps: number;
  epochs: number;
  batchSize: number;
  lr: number;
  // Advanced
  classWeights: 'balanced' | 'none';
  negativesPerPositive: number;
  optimizer: 'adam' | 'radam';
  seed: number;
  /** Seed of the patient split; null = the run's seed. */
  splitSeed: number | null;
  splitTrain: number;
  splitVal: number;
  splitTest: number;
  /** Let patients the pretrained init trained on into validation and test (recorded as a warning). */
  allowOverlap: boolean;
  wDice: number | null;
  wBce: number | null;
  windowLevel: number;
  windowWidth: number;
  scaling: 'fixed' | 'minmax';
  sliceStride: number;
  checkpointEvery: number;
  evalEvery: number;
  evalBatches: number;
  /** Early stopping: validations without a gain before the run stops and keeps its best weights; null = off. */
  earlyStopPatience: number | null;
  useCache: boolean;
}

export function defaultFinetuneForm(): FinetuneForm {
  return {
    name: '',
    task: 'classification',
    labelName: PE_LABEL,
    consensusK: null,
    init: 'random',
    preset: 'tiny',
    size: null,
    trainFraction: 1,
    freezeEpochs: 0,
    lengthBy: 'steps',
    steps: 200,
    epochs: 1,
    batchSize: 8,
    lr: 1e-3,
    classWeights: 'balanced',
    negativesPerPositive: 1,
    optimizer: 'adam',
    seed: 1,
    splitSeed: null,
    splitTrain: 0.6,
    splitVal: 0.2,
    splitTest: 0.2,
    allowOverlap: false,
    wDice: null,
    wBce: null,
    windowLevel: 50,
    windowWidth: 350,
    scaling: 'fixed',
    sliceStride: 1,
    checkpointEvery: 50,
    evalEvery: 25,
    evalBatches: 0,
    earlyStopPatience: null,
    useCache: true,
  };
}

/** The network an initialisation implies: U-Net for segmentation, the CNN baseline, or encoder + head. */
export function modelFor(task: DownstreamTask, init: string): DownstreamModel {
  if (task === 'segmentation') return 'unet';
  return init === 'cnn' ? 'cnn' : 'encoder-classifier';
}

export interface InitChoice {
  /** 'random', 'cnn' or a run id (as text: the select's value). */
  value: string;
  label: string;
  /** Pretrained runs: their preset and input side (the fine-tuned model must match them). */
  preset?: string;
  size?: number | null;
  runId?: number;
  /** Pretrained runs: the window the encoder was trained on (fine-tuning takes it by default). */
  window?: { level: number; width: number; scaling: 'fixed' | 'minmax' } | null;
}

/** Input side of a run (its config's, or null for the preset's). */
function runSize(r: RunSummary): number | null {
  return r.config.size ?? null;
}

/**
 * What can initialise a fine-tuning run: random weights, the supervised CNN baseline
 * (classification only), and every finished (or checkpointed) pretraining or imported run.
 */
export function initChoices(runs: readonly RunSummary[], task: DownstreamTask): InitChoice[] {
  const out: InitChoice[] = [{ value: 'random', label: 'random initialisation' }];
  if (task === 'classification') out.push({ value: 'cnn', label: 'supervised CNN baseline (from scratch)' });
  for (const r of runs.filter(canInitFrom))
    out.push({ value: String(r.id), label: `#${r.id} ${runLabel(r)}${r.kind === 'imported' ? ' (imported)' : ''}`, preset: r.preset, size: runSize(r), runId: r.id, window: runWindow(r) });
  return out;
}

/** Whether an init value names a pretrained run (not random weights or the CNN baseline). */
export function isPretrainedInit(init: string): boolean {
  return init !== 'random' && init !== 'cnn' && init !== '';
}

/**
 * Choosing a pretrained run sets the preset and input side to that run's (the encoder's weights
 * only fit the network they were trained in) and the window to the one it was trained on; the CNN
 * baseline is classification only.
 */
export function applyInit(f: FinetuneForm, choice: InitChoice | undefined): FinetuneForm {
  if (!choice) return f;
  const next: FinetuneForm = { ...f, init: choice.value };
  if (choice.preset && isPretrainedInit(choice.value)) {
    next.preset = choice.preset as PresetId;
    next.size = choice.size ?? null;
    if (choice.window) {
      next.windowLevel = choice.window.level;
      next.windowWidth = choice.window.width;
      next.scaling = choice.window.scaling;
    }
  }
  return next;
}

/** A task change: the CNN baseline exists for classification only; segmentation uses nodules. */
export function applyTask(f: FinetuneForm, task: DownstreamTask): FinetuneForm {
  return { ...f, task, init: task === 'segmentation' && f.init === 'cnn' ? 'random' : f.init };
}

/** When a pretrained init's preset or side differs from the form's, the reason in words. */
export function initMismatch(f: FinetuneForm, choice: InitChoice | undefined): string | null {
  if (!choice || !isPretrainedInit(choice.value) || !choice.preset) return null;
  const want = `${choice.preset}${choice.size ? ` at ${choice.size} px` : ''}`;
  if (choice.preset !== f.preset || (choice.size ?? null) !== f.size) return `the encoder was trained as ${want}: use the same preset and size`;
  return null;
}

export type FinetuneProblems = Partial<Record<keyof FinetuneForm | 'split', string>>;

/** Problems with the form, by field; Start is disabled while there are any. */
export function finetuneFormProblems(f: FinetuneForm): FinetuneProblems {
  const p: FinetuneProblems = {};
  if (f.task === 'classification') {
    const name = f.labelName.trim();
    if (name === '' || name.length > 64) p.labelName = 'the name of a per-image label (1 to 64 characters)';
  } else if (f.consensusK !== null && !posInt(f.consensusK, 16)) p.consensusK = 'at least K readers, K from 1 to 16 (or empty)';
  if (f.task === 'segmentation' && f.init === 'cnn') p.init = 'the CNN baseline is for classification';
  if (f.init.trim() === '') p.init = 'choose an initialisation';
  if (f.size !== null && !(posInt(f.size, 1024) && f.size >= 16)) p.size = 'an input side from 16 to 1024 px';
  if (!(finite(f.trainFraction) && f.trainFraction > 0 && f.trainFraction <= 1)) p.trainFraction = 'a fraction above 0 and at most 1';
  if (!(finite(f.freezeEpochs) && f.freezeEpochs >= 0)) p.freezeEpochs = 'epochs ≥ 0';
  if (!posInt(f.batchSize, 256)) p.batchSize = 'a batch of 1 to 256';
  if (f.lengthBy === 'steps' && !posInt(f.steps)) p.steps = 'a whole number of steps above 0';
  if (f.lengthBy === 'epochs' && !(finite(f.epochs) && f.epochs > 0)) p.epochs = 'a number of epochs above 0';
  if (!(finite(f.lr) && f.lr > 0 && f.lr <= 1)) p.lr = 'a learning rate above 0 and at most 1';
  if (!(Number.isInteger(f.seed) && f.seed >= 0)) p.seed = 'a whole number ≥ 0';
  if (f.splitSeed !== null && !(Number.isInteger(f.splitSeed) && f.splitSeed >= 0)) p.splitSeed = 'a whole number ≥ 0, or empty for the seed';
  if (!(finite(f.negativesPerPositive) && f.negativesPerPositive >= 0 && f.negativesPerPositive <= 20)) p.negativesPerPositive = 'from 0 to 20';
  const parts = [f.splitTrain, f.splitVal, f.splitTest];
  if (!parts.every((v) => finite(v) && v >= 0) || !(f.splitTrain > 0 && f.splitTest > 0)) p.split = 'train and test parts above 0, validation ≥ 0';
  for (const k of ['wDice', 'wBce'] as const) {
    const v = f[k];
    if (v !== null && !(finite(v) && v >= 0)) p[k] = 'a weight ≥ 0, or empty for the default';
  }
  if (!(finite(f.windowWidth) && f.windowWidth > 0)) p.windowWidth = 'a width above 0';
  if (!finite(f.windowLevel)) p.windowLevel = 'a level in HU';
  if (!posInt(f.sliceStride)) p.sliceStride = 'every k-th slice, k ≥ 1';
  if (!posInt(f.checkpointEvery)) p.checkpointEvery = 'steps ≥ 1';
  if (!posInt(f.evalEvery)) p.evalEvery = 'steps ≥ 1';
  if (!(Number.isInteger(f.evalBatches) && f.evalBatches >= 0)) p.evalBatches = 'batches ≥ 0 (0 = the whole validation split)';
  if (f.earlyStopPatience !== null && !posInt(f.earlyStopPatience)) p.earlyStopPatience = 'validations ≥ 1, or empty to train every step';
  return p;
}

/** The fine-tuning request for runs.create (the services fill defaults, find the init run's folder and validate again). */
export function toFinetuneConfig(f: FinetuneForm, cohort: { filter?: CohortFilter; seriesIds?: number[] }): FinetuneRequest {
  const lossWeights: FinetuneRequest['lossWeights'] = {};
  if (f.wDice !== null) lossWeights.dice = f.wDice;
  if (f.wBce !== null) lossWeights.bce = f.wBce;
  const model = modelFor(f.task, f.init);
  const c: FinetuneRequest = {
    kind: 'finetune',
    name: f.name.trim(),
    task: f.task,
    model,
    label: f.task === 'classification' ? { kind: 'image-label', name: f.labelName.trim() } : f.consensusK !== null ? { kind: 'nodule', consensusK: f.consensusK } : { kind: 'nodule' },
    preset: f.preset,
    freezeEpochs: isPretrainedInit(f.init) ? f.freezeEpochs : 0,
    classWeights: f.classWeights,
    trainFraction: f.trainFraction,
    negativesPerPositive: f.negativesPerPositive,
    batchSize: f.batchSize,
    optimizer: f.optimizer,
    lr: f.lr,
    lossWeights,
    seed: f.seed,
    windowLevel: f.windowLevel,
    windowWidth: f.windowWidth,
    scaling: f.scaling,
    fractions: { train: f.splitTrain, val: f.splitVal, test: f.splitTest },
    sliceStride: f.sliceStride,
    checkpointEvery: f.checkpointEvery,
    evalEvery: f.evalEvery,
    evalBatches: f.evalBatches,
    useCache: f.useCache,
  };
  if (f.size !== null) c.size = f.size;
  if (isPretrainedInit(f.init) && model !== 'cnn') c.init = Number(f.init);
  if (f.splitSeed !== null) c.splitSeed = f.splitSeed;
  if (f.earlyStopPatience !== null) c.earlyStopPatience = f.earlyStopPatience;
  if (f.allowOverlap && c.init !== undefined) c.allowOverlap = true;
  if (f.lengthBy === 'steps') c.steps = f.steps;
  else c.epochs = f.epochs;
  if (cohort.seriesIds) c.seriesIds = cohort.seriesIds;
  else c.filter = cohort.filter ?? {};
  return c;
}

/** Runs made by an experiment grid live in <data>/experiments/<id>/runs/<cell>. */
export function isExperimentRun(dir: string): boolean {
  return /[\\/]experiments[\\/][^\\/]+[\\/]runs[\\/][^\\/]+[\\/]?$/.test(dir);
}

/** The last part of an init run's folder (its name). */
export function initName(dir: string): string | undefined {
  return dir.split(/[\\/]/).filter(Boolean).pop();
}

/** A fine-tuning run in a few words: its name, or task, label, init and fraction. */
export function finetuneLabel(r: Pick<RunSummary, 'name' | 'task' | 'preset' | 'config'>): string {
  if (r.name) return r.name;
  const c = r.config;
  if (c.kind !== 'finetune') return `${r.task} · ${r.preset}`;
  const label = c.label.kind === 'image-label' ? (c.label.name === PE_LABEL ? 'PE' : c.label.name) : 'slice';
  const what = r.task === 'segmentation' ? 'nodule segmentation' : `${label} classification`;
  const init = c.model === 'cnn' ? 'CNN baseline' : c.init ? `from ${initName(c.init)}` : 'random init';
  const frac = c.trainFraction < 1 ? ` · ${+(c.trainFraction * 100).toFixed(1)}%` : '';
  return `${what} · ${init}${frac} · ${r.preset}`;
}

/**
 * The labels filter that suits a task's cohort: any imported label for classification; for
 * segmentation, nodules (the library's 'nodule' filter counts reader nodules and DICOM SEG
 * segments, the masks segmentation trains on).
 */
export function labelsFilterFor(task: DownstreamTask): 'any' | 'nodule' {
  return task === 'classification' ? 'any' : 'nodule';
}
