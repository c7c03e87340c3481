/**
 * The experiments page's form and its translation to an experiment spec (src/shared/run-config.ts
 * `experimentSpecSchema`): task and label, preset and size, initialisations (random, the CNN
 * baseline, finished pretraining/imported runs) ticked as checkboxes, training fractions and seeds
 * typed as lists, length, batch, LR, split. Pure (types only from shared); unit-tested, and checked
 * against the shared schema in the tests.
 */
import type { ExperimentRequest, ExperimentSpec } from '../../../shared/run-config';
import type { CohortFilter, RunSummary } from '../../../shared/types';
import { canInitFrom, runLabel, type PresetId } from '../runs/run-form';
import type { DownstreamTask } from '../finetune/finetune-form';
import { finite, posInt } from '../lib/form-checks';

export interface ExperimentForm {
  name: string;
  task: DownstreamTask;
  /** Classification: 'pe' (RSNA pe_present_on_image) or another per-image label's name. */
  label: string;
  /** Segmentation: nodules marked by at least K readers (null = the default). */
  consensusK: number | null;
  preset: PresetId;
  size: number | null;
  /** Ticked initialisations: 'random', 'cnn' and run ids (as text), in the order they were ticked. */
  inits: string[];
  /** Training fractions, typed as a list: "0.1, 0.5, 1" or "10%, 50%, 100%". */
  fractions: string;
  /** Seeds, typed as a list: "1, 2, 3" or a range "1-3". */
  seeds: string;
  lengthBy: 'steps' | 'epochs';
  steps: number;
  epochs: number;
  batchSize: number;
  lr: number;
  freezeEpochs: number;
  evalEvery: number;
  splitSeed: number;
  splitTrain: number;
  splitVal: number;
  splitTest: number;
  /** Let patients the pretrained inits trained on into validation and test (recorded as a warning). */
  allowOverlap: boolean;
  /** Segmentation: the Dice level of "iterations to reach". */
  diceLevel: number;
}

export function defaultExperimentForm(): ExperimentForm {
  return {
    name: '',
    task: 'classification',
    label: 'pe',
    consensusK: null,
    preset: 'tiny',
    size: null,
    inits: ['random', 'cnn'],
    fractions: '0.1, 0.25, 0.5, 1',
    seeds: '1, 2, 3',
    lengthBy: 'steps',
    steps: 200,
    epochs: 1,
    batchSize: 8,
    lr: 1e-3,
    freezeEpochs: 0,
    evalEvery: 25,
    splitSeed: 1,
    splitTrain: 0.6,
    splitVal: 0.2,
    splitTest: 0.2,
    allowOverlap: false,
    diceLevel: 0.5,
  };
}

export interface ParsedList {
  values: number[];
  error: string | null;
}

/**
 * Training fractions from text: numbers in (0, 1] or percentages ("5%"), separated by commas or
 * spaces; sorted, duplicates dropped.
 */
export function parseFractions(text: string): ParsedList {
  const parts = text.split(/[\s,;]+/).filter(Boolean);
  if (parts.length === 0) return { values: [], error: 'at least one fraction' };
  const out: number[] = [];
  for (const p of parts) {
    const m = /^(\d*\.?\d+)(%?)$/.exec(p);
    if (!m) return { values: [], error: `"${p}" is not a fraction (0.1 or 10%)` };
    const v = m[2] ? Number(m[1]) / 100 : Number(m[1]);
    if (!(v > 0 && v <= 1)) return { values: [], error: `${p} is outside (0, 1]` };
    out.push(Math.round(v * 1e6) / 1e6);
  }
  return { values: [...new Set(out)].sort((a, b) => a - b), error: null };
}

/** Seeds from text: whole numbers ≥ 0 and ranges "1-3", separated by commas or spaces. */
export function parseSeeds(text: string): ParsedList {
  const parts = text.split(/[\s,;]+/).filter(Boolean);
  if (parts.length === 0) return { values: [], error: 'at least one seed' };
  const out: number[] = [];
  for (const p of parts) {
    const range = /^(\d+)-(\d+)$/.exec(p);
    if (range) {
      const a = Number(range[1]);
      const b = Number(range[2]);
      if (b < a || b - a > 99) return { values: [], error: `"${p}" is not a range of at most 100 seeds` };
      for (let s = a; s <= b; s++) out.push(s);
    } else if (/^\d+$/.test(p) && Number.isSafeInteger(Number(p))) out.push(Number(p));
    else return { values: [], error: `"${p}" is not a seed (a whole number ≥ 0)` };
  }
  return { values: [...new Set(out)], error: null };
}

export interface ExperimentInitChoice {
  value: string;
  label: string;
  hint: string;
  preset?: string;
  size?: number | null;
  runId?: number;
}

/** Initialisations offered: random, the CNN baseline (classification), and every usable pretraining/imported run. */
export function experimentInitChoices(runs: readonly RunSummary[], task: DownstreamTask): ExperimentInitChoice[] {
  const out: ExperimentInitChoice[] = [{ value: 'random', label: 'random', hint: 'the same network from random weights' }];
  if (task === 'classification') out.push({ value: 'cnn', label: 'supervised CNN', hint: 'a standard supervised CNN trained from scratch (the paper’s baseline)' });
  for (const r of runs.filter(canInitFrom))
    out.push({
      value: String(r.id),
      label: `#${r.id} ${runLabel(r)}${r.kind === 'imported' ? ' (imported)' : ''}`,
      hint: r.dir,
      preset: r.preset,
      size: r.config.size ?? null,
      runId: r.id,
    });
  return out;
}

/** Ticks or unticks an initialisation, keeping the order of ticking. */
export function toggleInit(inits: readonly string[], value: string, on: boolean): string[] {
  return on ? (inits.includes(value) ? [...inits] : [...inits, value]) : inits.filter((v) => v !== value);
}

export type ExperimentProblems = Partial<Record<keyof ExperimentForm | 'split', string>>;

/** Problems with the form, by field; `choices` are the initialisations on offer (to check ticked runs still exist and fit). */
export function experimentFormProblems(f: ExperimentForm, choices: readonly ExperimentInitChoice[]): ExperimentProblems {
  const p: ExperimentProblems = {};
  if (f.name.length > 200) p.name = 'at most 200 characters';
  if (f.task === 'classification') {
    const l = f.label.trim();
    if (l === '' || l.length > 64) p.label = "'pe' or a per-image label name (1 to 64 characters)";
  } else if (f.consensusK !== null && !posInt(f.consensusK, 16)) p.consensusK = 'K from 1 to 16, or empty';
  if (f.inits.length === 0) p.inits = 'tick at least one initialisation';
  else {
    const missing = f.inits.filter((i) => !choices.some((c) => c.value === i));
    if (missing.length) p.inits = f.task === 'segmentation' && missing.includes('cnn') ? 'the CNN baseline is for classification' : `not available: ${missing.join(', ')}`;
    else {
      const wrong = choices.filter((c) => f.inits.includes(c.value) && c.preset && (c.preset !== f.preset || (c.size ?? null) !== f.size));
      if (wrong.length) p.inits = `${wrong.map((c) => c.label).join(', ')}: trained as ${wrong[0].preset}${wrong[0].size ? ` at ${wrong[0].size} px` : ''}; use the same preset and size`;
    }
  }
  const fr = parseFractions(f.fractions);
  if (fr.error) p.fractions = fr.error;
  const sd = parseSeeds(f.seeds);
  if (sd.error) p.seeds = sd.error;
  if (f.size !== null && !(posInt(f.size, 1024) && f.size >= 16)) p.size = 'an input side from 16 to 1024 px';
  if (f.lengthBy === 'steps' && !posInt(f.steps)) p.steps = 'a whole number of steps above 0';
  if (f.lengthBy === 'epochs' && !(finite(f.epochs) && f.epochs > 0)) p.epochs = 'a number of epochs above 0';
  if (!posInt(f.batchSize, 256)) p.batchSize = 'a batch of 1 to 256';
  if (!(finite(f.lr) && f.lr > 0 && f.lr <= 1)) p.lr = 'a learning rate above 0 and at most 1';
  if (!(finite(f.freezeEpochs) && f.freezeEpochs >= 0)) p.freezeEpochs = 'epochs ≥ 0';
  if (!posInt(f.evalEvery)) p.evalEvery = 'steps ≥ 1';
  if (!(Number.isInteger(f.splitSeed) && f.splitSeed >= 0)) p.splitSeed = 'a whole number ≥ 0';
  if (![f.splitTrain, f.splitVal, f.splitTest].every((v) => finite(v) && v >= 0) || !(f.splitTrain > 0 && f.splitTest > 0)) p.split = 'train and test parts above 0, validation ≥ 0';
  if (f.task === 'segmentation' && !(finite(f.diceLevel) && f.diceLevel > 0 && f.diceLevel < 1)) p.diceLevel = 'a Dice level between 0 and 1';
  return p;
}

/** Number of runs the grid will train: inits x fractions x seeds (0 while the lists are invalid). */
export function gridSize(f: ExperimentForm): number {
  const fr = parseFractions(f.fractions);
  const sd = parseSeeds(f.seeds);
  if (fr.error || sd.error) return 0;
  return f.inits.length * fr.values.length * sd.values.length;
}

/** A default name from what is compared: "PE classification: random vs cnn vs #3, 4 fractions". */
export function defaultExperimentName(f: ExperimentForm, choices: readonly ExperimentInitChoice[]): string {
  const what = f.task === 'classification' ? `${f.label.trim() === 'pe' ? 'PE' : f.label.trim()} classification` : 'nodule segmentation';
  const inits = f.inits.map((i) => (i === 'random' || i === 'cnn' ? i : (choices.find((c) => c.value === i)?.runId !== undefined ? `#${choices.find((c) => c.value === i)!.runId}` : 'pretrained')));
  return `${what}: ${inits.join(' vs ')}`.slice(0, 200);
}

/** A ticked initialisation as experiments.start names it: 'random', 'cnn' or a run id. */
export function initRef(value: string): 'random' | 'cnn' | number {
  return value === 'random' || value === 'cnn' ? value : Number(value);
}

/** The request for experiments.start: pretrained inits by run id (the services find their folders and validate again). */
export function toExperimentSpec(f: ExperimentForm, cohort: { filter?: CohortFilter; seriesIds?: number[] }, choices: readonly ExperimentInitChoice[] = []): ExperimentRequest {
  const spec: ExperimentRequest = {
    name: f.name.trim() || defaultExperimentName(f, choices),
    task: f.task,
    label: f.task === 'segmentation' ? 'nodule' : f.label.trim(),
    preset: f.preset,
    inits: f.inits.map(initRef),
    fractions: parseFractions(f.fractions).values,
    seeds: parseSeeds(f.seeds).values,
    splitSeed: f.splitSeed,
    batchSize: f.batchSize,
    lr: f.lr,
    freezeEpochs: f.freezeEpochs,
    evalEvery: f.evalEvery,
    splitFractions: { train: f.splitTrain, val: f.splitVal, test: f.splitTest },
    diceLevel: f.diceLevel,
  };
  if (f.task === 'segmentation' && f.consensusK !== null) spec.consensusK = f.consensusK;
  if (f.allowOverlap) spec.allowOverlap = true;
  if (f.size !== null) spec.size = f.size;
  if (f.lengthBy === 'steps') spec.steps = f.steps;
  else spec.epochs = f.epochs;
  if (cohort.seriesIds) spec.seriesIds = cohort.seriesIds;
  else spec.filter = cohort.filter ?? {};
  return spec;
}

/**
 * The initialisation, fraction and seed of cell `index` of a grid, in the order the services run
 * them (inits, then fractions, then seeds, as in src/host/experiment.ts); null past the end.
 */
export function cellAt(spec: Pick<ExperimentSpec, 'inits' | 'fractions' | 'seeds'>, index: number): { init: string; fraction: number; seed: number } | null {
  const nf = spec.fractions.length;
  const ns = spec.seeds.length;
  if (!(index >= 0) || index >= spec.inits.length * nf * ns) return null;
  return { init: spec.inits[Math.floor(index / (nf * ns))], fraction: spec.fractions[Math.floor(index / ns) % nf], seed: spec.seeds[index % ns] };
}
